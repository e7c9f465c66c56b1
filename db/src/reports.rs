//! What compute hosts report, applied to the database: capsule and container states (newer
//! reports only), deletions, and the failure of capsules a dead host was creating.

use std::collections::HashSet;

use capsule_types::rpc::CapsuleState;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};

use crate::entity::{capsule, capsule_container, capsule_security_group, capsule_template};
use crate::entity::{host_port, volume_mapping};
use crate::ground::{now, touch_project};
use crate::placement::release_claim;
use crate::volumes::{release_failed_volumes, release_volumes, volumes_made};
use crate::{Database, DbError};

/// What became of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Written.
    Applied,
    /// Older than one already applied: ignored.
    Stale,
    /// No such capsule: the host holds an orphan.
    UnknownCapsule,
    /// The capsule lives on another host (or none): the reporting host holds an orphan.
    OtherHost,
}

/// The status a capsule keeps while a delete is pending, whatever a late report says.
const DELETING: &str = "Deleting";
const TASK_DELETING: &str = "container_deleting";

impl Database {
    /// Applies `state` reported by `host` with order `seq`, with the containers' states, in one
    /// transaction; a report older than the last one applied changes nothing.
    pub async fn apply_capsule_state(
        &self,
        host: &str,
        seq: u64,
        state: &CapsuleState,
    ) -> Result<ReportOutcome, DbError> {
        Ok(self.apply_capsule_state_with(host, seq, state).await?.0)
    }

    /// [`Database::apply_capsule_state`], also saying which project's capsule changed its
    /// addresses (its security groups' members changed).
    pub async fn apply_capsule_state_with(
        &self,
        host: &str,
        seq: u64,
        state: &CapsuleState,
    ) -> Result<(ReportOutcome, Option<String>), DbError> {
        let uuid = state.capsule.to_string();
        let ctx = || format!("applying the state of capsule {uuid} from {host}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let Some(row) = take_report(&txn, &uuid, host, seq)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            // End the transaction first: its update, though it matched nothing, holds SQLite's
            // write lock and a pooled connection, and `why_not` needs another connection. A
            // burst of stale reports (redelivered after a broker restart) would otherwise hold
            // every connection, each waiting for the lock another holds.
            txn.rollback().await.map_err(DbError::query(ctx()))?;
            return Ok((self.why_not(&uuid, host).await?, None));
        };
        // While a delete is pending, a late report (a create that finished meanwhile) does not
        // bring the capsule back; but a failed delete (Error) ends the pending delete, so the
        // user sees why and can delete again.
        let deleting = row.task_state.as_deref() == Some(TASK_DELETING);
        let failed = state.status == capsule_types::CapsuleStatus::Error;
        let (status, reason, task_state) = if deleting && !failed {
            (DELETING, row.status_reason.clone(), row.task_state.clone())
        } else {
            (state.status.as_str(), state.status_reason.clone(), None)
        };
        let t = now();
        let addresses = if state.addresses.is_null() {
            serde_json::json!({})
        } else {
            state.addresses.clone()
        };
        let readdressed = (row.addresses != addresses).then(|| row.project_id.clone());
        capsule::Entity::update_many()
            .col_expr(capsule::Column::Status, Expr::value(status))
            .col_expr(capsule::Column::StatusReason, Expr::value(reason))
            .col_expr(capsule::Column::TaskState, Expr::value(task_state))
            .col_expr(capsule::Column::Addresses, Expr::value(addresses))
            .col_expr(capsule::Column::UpdatedAt, Expr::value(t))
            .filter(capsule::Column::Id.eq(row.id))
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        if state.volumes_released {
            let reason = state
                .status_reason
                .as_deref()
                .unwrap_or("its create failed");
            release_failed_volumes(&txn, &uuid, reason)
                .await
                .map_err(DbError::query(ctx()))?;
        } else if state.status != capsule_types::CapsuleStatus::Creating {
            volumes_made(&txn, &uuid)
                .await
                .map_err(DbError::query(ctx()))?;
        }
        for c in &state.containers {
            capsule_container::Entity::update_many()
                .col_expr(
                    capsule_container::Column::Status,
                    Expr::value(c.status.as_str()),
                )
                .col_expr(
                    capsule_container::Column::StatusReason,
                    Expr::value(c.status_reason.clone()),
                )
                .col_expr(
                    capsule_container::Column::ExitCode,
                    Expr::value(c.exit_code),
                )
                .col_expr(
                    capsule_container::Column::RestartCount,
                    Expr::value(i32::try_from(c.restart_count).unwrap_or(i32::MAX)),
                )
                .col_expr(
                    capsule_container::Column::ContainerId,
                    Expr::value(c.container_id.clone()),
                )
                .col_expr(capsule_container::Column::Ready, Expr::value(c.ready))
                .col_expr(capsule_container::Column::UpdatedAt, Expr::value(t))
                .filter(capsule_container::Column::CapsuleId.eq(row.id))
                .filter(capsule_container::Column::Uuid.eq(c.uuid.to_string()))
                .exec(&txn)
                .await
                .map_err(DbError::query(ctx()))?;
        }
        touch_project(&txn, &row.project_id)
            .await
            .map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok((ReportOutcome::Applied, readdressed))
    }

    /// Applies `host`'s report that capsule `uuid` is gone from it. A capsule being deleted is
    /// removed with everything it holds; one nobody asked to delete is kept and marked `Error`
    /// (its record is the user's, and it says what happened).
    pub async fn apply_capsule_deleted(
        &self,
        host: &str,
        seq: u64,
        uuid: &str,
    ) -> Result<ReportOutcome, DbError> {
        Ok(self.apply_capsule_deleted_with(host, seq, uuid).await?.0)
    }

    /// [`Database::apply_capsule_deleted`], also saying the capsule's project when it applied
    /// (its security groups lost a member).
    pub async fn apply_capsule_deleted_with(
        &self,
        host: &str,
        seq: u64,
        uuid: &str,
    ) -> Result<(ReportOutcome, Option<String>), DbError> {
        let ctx = || format!("applying the deletion of capsule {uuid} from {host}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let Some(row) = take_report(&txn, uuid, host, seq)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            // As above: never wait for a second connection while holding the write lock.
            txn.rollback().await.map_err(DbError::query(ctx()))?;
            return Ok((self.why_not(uuid, host).await?, None));
        };
        if row.task_state.as_deref() == Some(TASK_DELETING) {
            release_claim(&txn, &row)
                .await
                .map_err(DbError::query(ctx()))?;
            release_volumes(&txn, &row.uuid)
                .await
                .map_err(DbError::query(ctx()))?;
            remove_rows(&txn, row.id)
                .await
                .map_err(DbError::query(ctx()))?;
        } else {
            mark_lost(&txn, row.id, host)
                .await
                .map_err(DbError::query(ctx()))?;
        }
        touch_project(&txn, &row.project_id)
            .await
            .map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok((ReportOutcome::Applied, Some(row.project_id)))
    }

    /// Why a report did not apply: the capsule is unknown, on another host, or the report is
    /// stale.
    async fn why_not(&self, uuid: &str, host: &str) -> Result<ReportOutcome, DbError> {
        let row = capsule::Entity::find()
            .filter(capsule::Column::Uuid.eq(uuid))
            .one(&self.conn)
            .await
            .map_err(DbError::query(format!("looking up capsule {uuid}")))?;
        Ok(match row {
            None => ReportOutcome::UnknownCapsule,
            Some(c) if c.host.as_deref() != Some(host) => ReportOutcome::OtherHost,
            Some(_) => ReportOutcome::Stale,
        })
    }

    /// Fails the capsules still `Creating` on `hosts` (hosts that stopped reporting), with
    /// `reason(host)`. Returns how many. A host that comes back and builds them after all
    /// reports them again, and its newer report wins.
    pub async fn fail_creating_on_hosts(
        &self,
        hosts: &[String],
        reason: impl Fn(&str) -> String,
    ) -> Result<u64, DbError> {
        let mut failed = 0;
        for host in hosts {
            let ctx = || format!("failing capsules creating on {host}");
            let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
            let stuck = capsule::Entity::find()
                .filter(capsule::Column::Host.eq(host.as_str()))
                .filter(capsule::Column::Status.eq("Creating"))
                .all(&txn)
                .await
                .map_err(DbError::query(ctx()))?;
            if stuck.is_empty() {
                continue;
            }
            capsule::Entity::update_many()
                .col_expr(capsule::Column::Status, Expr::value("Error"))
                .col_expr(capsule::Column::StatusReason, Expr::value(reason(host)))
                .col_expr(capsule::Column::UpdatedAt, Expr::value(now()))
                .filter(capsule::Column::Id.is_in(stuck.iter().map(|c| c.id)))
                .filter(capsule::Column::Status.eq("Creating"))
                .exec(&txn)
                .await
                .map_err(DbError::query(ctx()))?;
            let projects: HashSet<&str> = stuck.iter().map(|c| c.project_id.as_str()).collect();
            for p in projects {
                touch_project(&txn, p)
                    .await
                    .map_err(DbError::query(ctx()))?;
            }
            txn.commit().await.map_err(DbError::query(ctx()))?;
            failed += stuck.len() as u64;
        }
        Ok(failed)
    }

    /// The capsules placed on `host`: uuid, status, creation time and the `seq` of the last
    /// report applied.
    pub async fn capsules_on_host(
        &self,
        host: &str,
    ) -> Result<Vec<(String, String, DateTime<Utc>, i64)>, DbError> {
        capsule::Entity::find()
            .select_only()
            .column(capsule::Column::Uuid)
            .column(capsule::Column::Status)
            .column(capsule::Column::CreatedAt)
            .column(capsule::Column::ReportSeq)
            .filter(capsule::Column::Host.eq(host))
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(DbError::query(format!("listing capsules on {host}")))
    }

    /// Marks capsules of `host` that a heartbeat numbered `seq` did not list as `Error` (their
    /// record stays). Each is checked again under its row lock: only a settled capsule
    /// (`Running` and the like) whose last applied report is older than the heartbeat is lost; a
    /// newer report, or another conductor that got there first, leaves it alone.
    pub async fn mark_missing_on_host(
        &self,
        host: &str,
        seq: u64,
        uuids: &[String],
    ) -> Result<u64, DbError> {
        let mut lost = 0;
        for uuid in uuids {
            let ctx = || format!("marking capsule {uuid} missing from {host}");
            let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
            let Some(row) = take_report(&txn, uuid, host, seq)
                .await
                .map_err(DbError::query(ctx()))?
            else {
                continue;
            };
            if matches!(row.status.as_str(), "Creating" | "Deleting" | "Error") {
                // Dropping the transaction undoes the report number it took.
                continue;
            }
            mark_lost(&txn, row.id, host)
                .await
                .map_err(DbError::query(ctx()))?;
            touch_project(&txn, &row.project_id)
                .await
                .map_err(DbError::query(ctx()))?;
            txn.commit().await.map_err(DbError::query(ctx()))?;
            lost += 1;
        }
        Ok(lost)
    }
}

/// Takes report `seq` of `host` for capsule `uuid`: advances the capsule's `report_seq` if the
/// capsule is on `host` and the report is newer, and returns the row. This first write also
/// locks the row for the rest of the transaction. `None`: not applicable (see `why_not`).
async fn take_report(
    txn: &DatabaseTransaction,
    uuid: &str,
    host: &str,
    seq: u64,
) -> Result<Option<capsule::Model>, sea_orm::DbErr> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    let res = capsule::Entity::update_many()
        .col_expr(capsule::Column::ReportSeq, Expr::value(seq))
        .filter(capsule::Column::Uuid.eq(uuid))
        .filter(capsule::Column::Host.eq(host))
        .filter(capsule::Column::ReportSeq.lt(seq))
        .exec(txn)
        .await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    capsule::Entity::find()
        .filter(capsule::Column::Uuid.eq(uuid))
        .one(txn)
        .await
}

/// Marks capsule `id` `Error`: its host `host` no longer has it (the record stays the user's).
async fn mark_lost<C: ConnectionTrait>(db: &C, id: i32, host: &str) -> Result<(), sea_orm::DbErr> {
    capsule::Entity::update_many()
        .col_expr(capsule::Column::Status, Expr::value("Error"))
        .col_expr(
            capsule::Column::StatusReason,
            Expr::value(format!("The capsule is no longer on host {host}.")),
        )
        // Its address is free on the host again: it must not stay in anyone's rules.
        .col_expr(
            capsule::Column::Addresses,
            Expr::value(serde_json::json!({})),
        )
        .col_expr(capsule::Column::UpdatedAt, Expr::value(now()))
        .filter(capsule::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes capsule `id`'s rows (children first).
pub(crate) async fn remove_rows<C: ConnectionTrait>(db: &C, id: i32) -> Result<(), sea_orm::DbErr> {
    capsule_container::Entity::delete_many()
        .filter(capsule_container::Column::CapsuleId.eq(id))
        .exec(db)
        .await?;
    volume_mapping::Entity::delete_many()
        .filter(volume_mapping::Column::CapsuleId.eq(id))
        .exec(db)
        .await?;
    capsule_security_group::Entity::delete_many()
        .filter(capsule_security_group::Column::CapsuleId.eq(id))
        .exec(db)
        .await?;
    capsule_template::Entity::delete_by_id(id).exec(db).await?;
    host_port::Entity::delete_many()
        .filter(host_port::Column::CapsuleId.eq(id))
        .exec(db)
        .await?;
    capsule::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}
