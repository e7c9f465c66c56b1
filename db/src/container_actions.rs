//! The history of containers (Zun's container actions and their events): an action row when
//! the API accepts an action (with the container's task state and the message to its host, in
//! one transaction), finished by the host's report with the same request id; what the runtime
//! did by itself (an exit, an OOM kill, a restart by policy) becomes an action of its own.
//! A report is kept once (`host`, `seq`), and each container keeps its newest
//! [`ACTIONS_KEPT`] actions.

use capsule_types::rpc::{ContainerEvent, ContainerEventKind};
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use crate::entity::{capsule, capsule_container, container_action, container_action_event};
use crate::ground::{now, touch_project};
use crate::outbox::{enqueue, NewOutbox};
use crate::{Database, DbError};

/// Actions kept per container; older ones (and their events) are dropped.
pub const ACTIONS_KEPT: u64 = 100;

/// Zun's action names (`zun/compute/container_actions.py`) for what the API accepts.
pub mod names {
    /// Stop.
    pub const STOP: &str = "stop";
    /// Start.
    pub const START: &str = "start";
    /// Restart (Zun's `reboot`).
    pub const REBOOT: &str = "reboot";
    /// Kill.
    pub const KILL: &str = "kill";
    /// Pause.
    pub const PAUSE: &str = "pause";
    /// Unpause.
    pub const UNPAUSE: &str = "unpause";
    /// A command run in the container.
    pub const EXEC: &str = "exec_cmd";
    /// An archive extracted into the container.
    pub const PUT_ARCHIVE: &str = "put_archive";
    /// A create (reported by the host with the create's request id).
    pub const CREATE: &str = "create";
}

/// The task state (Zun's `consts.TASK_STATES`) a lifecycle action sets on its container until
/// its host reports it done, and the event that reports it done.
pub fn lifecycle(action: &str) -> Option<(&'static str, ContainerEventKind)> {
    use ContainerEventKind as K;
    Some(match action {
        names::STOP => ("container_stopping", K::Stopped),
        names::START => ("container_starting", K::Started),
        names::REBOOT => ("container_rebooting", K::Started),
        names::KILL => ("container_killing", K::Killed),
        names::PAUSE => ("container_pausing", K::Paused),
        names::UNPAUSE => ("container_unpausing", K::Unpaused),
        _ => return None,
    })
}

/// The action name of what a host reports without an action of the API behind it.
fn action_of(kind: ContainerEventKind) -> &'static str {
    use ContainerEventKind as K;
    match kind {
        K::Created => names::CREATE,
        K::Started => names::START,
        K::Stopped => names::STOP,
        K::Killed => names::KILL,
        K::Paused => names::PAUSE,
        K::Unpaused => names::UNPAUSE,
        K::Exec => names::EXEC,
        K::Exited => "exited",
        K::OomKilled => "oom_killed",
        K::Restarted => "restarted",
        K::Unhealthy => "unhealthy",
    }
}

/// The event name, as Zun names the events of its compute manager (`compute__do_container_*`);
/// what the runtime did by itself is `runtime_container_*`.
pub fn event_name(kind: ContainerEventKind) -> &'static str {
    use ContainerEventKind as K;
    match kind {
        K::Created => "compute__do_container_create",
        K::Started => "compute__do_container_start",
        K::Stopped => "compute__do_container_stop",
        K::Killed => "compute__do_container_kill",
        K::Paused => "compute__do_container_pause",
        K::Unpaused => "compute__do_container_unpause",
        K::Exec => "compute__do_container_exec",
        K::Exited => "runtime_container_exited",
        K::OomKilled => "runtime_container_oom_killed",
        K::Restarted => "runtime_container_restarted",
        K::Unhealthy => "runtime_container_unhealthy",
    }
}

/// An action the API accepted.
#[derive(Clone, Debug)]
pub struct NewAction {
    /// Its name (see [`names`]).
    pub action: String,
    /// The API request's id (what the host's report carries back).
    pub request_id: String,
    /// Who asked.
    pub user_id: Option<String>,
    /// The containers' project.
    pub project_id: String,
}

/// What became of a host's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Kept; `settled` when it ended an action's task state.
    Applied {
        /// The container's task state was cleared.
        settled: bool,
    },
    /// Kept before (a redelivery): nothing changed.
    Duplicate,
    /// No such container (deleted since): ignored.
    UnknownContainer,
    /// The container's capsule is not on the reporting host: ignored.
    OtherHost,
}

/// An action with its events, newest first.
#[derive(Clone, Debug)]
pub struct ActionRecord {
    /// The action.
    pub action: container_action::Model,
    /// Its events.
    pub events: Vec<container_action_event::Model>,
}

/// Drops the actions of `container` beyond the newest [`ACTIONS_KEPT`] (their events go with
/// them), in the caller's transaction.
async fn prune<C: ConnectionTrait>(db: &C, container: &str) -> Result<(), DbErr> {
    use container_action::Column as A;
    let old: Vec<i32> = container_action::Entity::find()
        .select_only()
        .column(A::Id)
        .filter(A::ContainerUuid.eq(container))
        .order_by_desc(A::StartTime)
        .order_by_desc(A::Id)
        .offset(ACTIONS_KEPT)
        // SQLite takes an OFFSET only after a LIMIT.
        .limit(i64::MAX.unsigned_abs())
        .into_tuple()
        .all(db)
        .await?;
    if !old.is_empty() {
        container_action_event::Entity::delete_many()
            .filter(container_action_event::Column::ActionId.is_in(old.clone()))
            .exec(db)
            .await?;
        container_action::Entity::delete_many()
            .filter(A::Id.is_in(old))
            .exec(db)
            .await?;
    }
    Ok(())
}

async fn insert_action<C: ConnectionTrait>(
    db: &C,
    container: &str,
    a: &NewAction,
    start: DateTime<Utc>,
) -> Result<container_action::Model, DbErr> {
    // One transaction at a time adds actions to a container: its row is locked first (an
    // update that changes nothing), so the prune below sees every action committed before it.
    // Without it, PostgreSQL runs concurrent reports side by side, each prune misses the
    // others' rows, and the history stays above its bound.
    capsule_container::Entity::update_many()
        .col_expr(
            capsule_container::Column::Uuid,
            Expr::col(capsule_container::Column::Uuid).into(),
        )
        .filter(capsule_container::Column::Uuid.eq(container))
        .exec(db)
        .await?;
    let row = container_action::ActiveModel {
        action: Set(a.action.clone()),
        container_uuid: Set(container.to_owned()),
        request_id: Set(a.request_id.clone()),
        user_id: Set(a.user_id.clone()),
        project_id: Set(a.project_id.clone()),
        start_time: Set(start),
        finish_time: Set(None),
        message: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    prune(db, container).await?;
    Ok(row)
}

impl Database {
    /// Records `action` on each of `containers`, sets their `task_state` (if given), and writes
    /// `outbox` (the message to their host), in one transaction; returns the outbox entry's
    /// id, to publish at once.
    pub async fn start_container_action(
        &self,
        containers: &[String],
        action: &NewAction,
        task_state: Option<&str>,
        outbox: Option<NewOutbox>,
    ) -> Result<Vec<i32>, DbError> {
        let ctx = || {
            format!(
                "recording action {} {} on {containers:?}",
                action.action, action.request_id
            )
        };
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let t = now();
        for c in containers {
            insert_action(&txn, c, action, t)
                .await
                .map_err(DbError::query(ctx()))?;
        }
        if let Some(ts) = task_state {
            capsule_container::Entity::update_many()
                .col_expr(capsule_container::Column::TaskState, Expr::value(ts))
                .col_expr(capsule_container::Column::UpdatedAt, Expr::value(t))
                .filter(capsule_container::Column::Uuid.is_in(containers.to_vec()))
                .exec(&txn)
                .await
                .map_err(DbError::query(ctx()))?;
            // Capsule lists show their containers' task states.
            touch_project(&txn, &action.project_id)
                .await
                .map_err(DbError::query(ctx()))?;
        }
        let mut ids = Vec::new();
        if let Some(msg) = outbox {
            ids.push(enqueue(&txn, msg).await.map_err(DbError::query(ctx()))?);
        }
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok(ids)
    }

    /// Ends action `request_id` of `container` as the API saw it end (a call's answer), unless
    /// it has ended already; `error` for users when it failed.
    pub async fn finish_container_action(
        &self,
        container: &str,
        request_id: &str,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        use container_action::Column as A;
        container_action::Entity::update_many()
            .col_expr(A::FinishTime, Expr::value(now()))
            .col_expr(A::Message, Expr::value(error.map(str::to_owned)))
            .filter(A::ContainerUuid.eq(container))
            .filter(A::RequestId.eq(request_id))
            .filter(A::FinishTime.is_null())
            .exec(&self.conn)
            .await
            .map_err(DbError::query(format!(
                "finishing action {request_id} of container {container}"
            )))?;
        Ok(())
    }

    /// Applies `host`'s report `seq` of what happened to a container: an event of the action
    /// with its request id (made if the API has none, as for a create), which it ends when it
    /// is the action's last (or failed), clearing the task state the action set; or, without
    /// a request id, an action of its own. A report already kept changes nothing.
    pub async fn apply_container_event(
        &self,
        host: &str,
        seq: u64,
        ev: &ContainerEvent,
    ) -> Result<EventOutcome, DbError> {
        let container = ev.container.to_string();
        let ctx = || format!("applying event {seq} of {host} for container {container}");
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        // Microseconds, as every time the database keeps, so both backends return the same.
        let ev = &ContainerEvent {
            started_at: ev.started_at.trunc_subsecs(6),
            finished_at: ev.finished_at.trunc_subsecs(6),
            ..ev.clone()
        };
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let outcome = apply_event_in(&txn, host, seq, ev, &container)
            .await
            .map_err(DbError::query(ctx()))?;
        if matches!(outcome, EventOutcome::Applied { .. }) {
            txn.commit().await.map_err(DbError::query(ctx()))?;
        } else {
            txn.rollback().await.map_err(DbError::query(ctx()))?;
        }
        Ok(outcome)
    }

    /// The actions of `container`, newest first.
    pub async fn container_actions(
        &self,
        container: &str,
    ) -> Result<Vec<container_action::Model>, DbError> {
        use container_action::Column as A;
        container_action::Entity::find()
            .filter(A::ContainerUuid.eq(container))
            .order_by_desc(A::StartTime)
            .order_by_desc(A::Id)
            .all(&self.conn)
            .await
            .map_err(DbError::query(format!(
                "listing the actions of container {container}"
            )))
    }

    /// Action `request_id` of `container` with its events (newest first).
    pub async fn container_action(
        &self,
        container: &str,
        request_id: &str,
    ) -> Result<Option<ActionRecord>, DbError> {
        use container_action::Column as A;
        let ctx = || format!("reading action {request_id} of container {container}");
        let Some(action) = container_action::Entity::find()
            .filter(A::ContainerUuid.eq(container))
            .filter(A::RequestId.eq(request_id))
            .one(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            return Ok(None);
        };
        let events = container_action_event::Entity::find()
            .filter(container_action_event::Column::ActionId.eq(action.id))
            .order_by_desc(container_action_event::Column::StartTime)
            .order_by_desc(container_action_event::Column::Id)
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        Ok(Some(ActionRecord { action, events }))
    }
}

async fn apply_event_in<C: ConnectionTrait>(
    db: &C,
    host: &str,
    seq: i64,
    ev: &ContainerEvent,
    container: &str,
) -> Result<EventOutcome, DbErr> {
    use container_action::Column as A;
    let kept = container_action_event::Entity::find()
        .filter(container_action_event::Column::Host.eq(host))
        .filter(container_action_event::Column::Seq.eq(seq))
        .count(db)
        .await?;
    if kept > 0 {
        return Ok(EventOutcome::Duplicate);
    }
    let Some((row, Some(cap))) = capsule_container::Entity::find()
        .find_also_related(capsule::Entity)
        .filter(capsule_container::Column::Uuid.eq(container))
        .one(db)
        .await?
    else {
        return Ok(EventOutcome::UnknownContainer);
    };
    if cap.host.as_deref() != Some(host) {
        return Ok(EventOutcome::OtherHost);
    }
    let existing = match &ev.request_id {
        Some(r) => {
            container_action::Entity::find()
                .filter(A::ContainerUuid.eq(container))
                .filter(A::RequestId.eq(r.as_str()))
                .one(db)
                .await?
        }
        None => None,
    };
    let action = match existing {
        Some(a) => a,
        None => {
            let new = NewAction {
                action: action_of(ev.kind).to_owned(),
                request_id: ev
                    .request_id
                    .clone()
                    .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4())),
                user_id: None,
                project_id: cap.project_id.clone(),
            };
            insert_action(db, container, &new, ev.started_at).await?
        }
    };
    let traceback = ev.error.as_ref().map(|e| match ev.exit_code {
        Some(code) => format!("{e} (exit code {code})"),
        None => e.clone(),
    });
    container_action_event::ActiveModel {
        action_id: Set(action.id),
        event: Set(event_name(ev.kind).to_owned()),
        start_time: Set(ev.started_at),
        finish_time: Set(Some(ev.finished_at)),
        result: Set(Some(
            if ev.error.is_some() {
                "Error"
            } else {
                "Success"
            }
            .to_owned(),
        )),
        traceback: Set(traceback),
        host: Set(host.to_owned()),
        seq: Set(seq),
        ..Default::default()
    }
    .insert(db)
    .await?;
    // The action ends with its last event (a restart's start, not its stop), or its first
    // failure; an action of no lifecycle ends with each event.
    let life = lifecycle(&action.action);
    let last = match life {
        Some((_, done)) => done == ev.kind || ev.error.is_some(),
        None => true,
    };
    let mut settled = false;
    if last && action.finish_time.is_none() {
        container_action::Entity::update_many()
            .col_expr(A::FinishTime, Expr::value(ev.finished_at))
            .col_expr(A::Message, Expr::value(ev.error.clone()))
            .filter(A::Id.eq(action.id))
            .exec(db)
            .await?;
        if let Some((task_state, _)) = life {
            // Only the task state this action set: a newer action's stays.
            if row.task_state.as_deref() == Some(task_state) {
                capsule_container::Entity::update_many()
                    .col_expr(
                        capsule_container::Column::TaskState,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(capsule_container::Column::UpdatedAt, Expr::value(now()))
                    .filter(capsule_container::Column::Id.eq(row.id))
                    .exec(db)
                    .await?;
                touch_project(db, &cap.project_id).await?;
                settled = true;
            }
        }
    }
    Ok(EventOutcome::Applied { settled })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lifecycle_action_has_a_zun_task_state_and_an_end() {
        for (name, ts) in [
            (names::STOP, "container_stopping"),
            (names::START, "container_starting"),
            (names::REBOOT, "container_rebooting"),
            (names::KILL, "container_killing"),
            (names::PAUSE, "container_pausing"),
            (names::UNPAUSE, "container_unpausing"),
        ] {
            assert_eq!(lifecycle(name).map(|l| l.0), Some(ts), "{name}");
        }
        assert!(lifecycle(names::EXEC).is_none());
        assert_eq!(action_of(ContainerEventKind::OomKilled), "oom_killed");
        assert_eq!(
            event_name(ContainerEventKind::Stopped),
            "compute__do_container_stop"
        );
    }
}
