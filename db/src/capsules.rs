//! Capsule datastore: create a capsule with its containers, volume mappings and security-group
//! bindings in one transaction; look it up by uuid or name; list pages; update; delete.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};
use serde_json::Value as Json;

use crate::entity::{
    capsule, capsule_container, capsule_security_group, capsule_template, project_generation,
    volume_mapping,
};
use crate::ground::{now, touch_project};
use crate::outbox::{enqueue, NewOutbox};
use crate::pagination::{after_marker, order_terms};
use crate::placement::{claim_ports, claim_resources, release_claim, Claim};
use crate::reports::remove_rows;
use crate::volumes::{release_volumes, take_volumes, CapsuleVolume, VolumeLimits};
use crate::{Database, DbError, ListParams};

/// Which capsules a caller may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every project (admin with `all_projects`, or an admin looking one up).
    All,
    /// One project (the token's project).
    Project(String),
    /// One user (a token without a project, as Zun scopes it).
    User(String),
}

impl Scope {
    pub(crate) fn condition(&self) -> Condition {
        match self {
            Scope::All => Condition::all(),
            Scope::Project(p) => Condition::all().add(capsule::Column::ProjectId.eq(p.clone())),
            Scope::User(u) => Condition::all().add(capsule::Column::UserId.eq(u.clone())),
        }
    }
}

/// A container to create with its capsule.
#[derive(Clone, Debug)]
pub struct NewContainer {
    /// Public id.
    pub uuid: String,
    /// Init container?
    pub is_init: bool,
    /// Order within its kind.
    pub position: i32,
    /// Name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Command as shown (list of strings).
    pub command: Json,
    /// Environment (object).
    pub environment: Json,
    /// Working directory.
    pub workdir: Option<String>,
    /// Container ports (list of integers).
    pub ports: Json,
    /// Image pull policy (`always`, `ifnotpresent`, `never`).
    pub image_pull_policy: String,
    /// CPU request.
    pub cpu: Option<f64>,
    /// Memory request in MiB.
    pub memory: Option<i64>,
    /// Initial status.
    pub status: String,
    /// Restart policy name.
    pub restart_policy: String,
    /// Restart retry limit.
    pub restart_max_retries: i32,
    /// stdin.
    pub interactive: bool,
    /// tty.
    pub tty: bool,
    /// Zun's `healthcheck`, from the liveness probe (`None`: it has none).
    pub healthcheck: Option<Json>,
}

/// A volume mount to record with its capsule.
#[derive(Clone, Debug)]
pub struct NewVolumeMapping {
    /// Container that mounts it.
    pub container_uuid: String,
    /// Volume name in the template.
    pub volume_name: String,
    /// Mount path.
    pub mount_path: String,
    /// Read-only mount.
    pub read_only: bool,
    /// Remove the volume with the capsule.
    pub auto_remove: bool,
    /// The volume's id.
    pub volume_id: Option<String>,
}

/// A capsule to create.
#[derive(Clone, Debug)]
pub struct NewCapsule {
    /// Public id.
    pub uuid: String,
    /// Name.
    pub name: Option<String>,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Initial status.
    pub status: String,
    /// Initial status reason.
    pub status_reason: Option<String>,
    /// Host chosen by the scheduler, if any.
    pub host: Option<String>,
    /// Requested availability zone.
    pub availability_zone: Option<String>,
    /// Summed CPU.
    pub cpu: f64,
    /// Summed memory, MiB.
    pub memory: i64,
    /// Restart policy name.
    pub restart_policy: String,
    /// Restart retry limit.
    pub restart_max_retries: i32,
    /// Labels (object of strings).
    pub labels: Json,
    /// Annotations.
    pub annotations: Option<Json>,
    /// The validated template.
    pub template: Json,
    /// Security groups as named in the template, each with the id it resolved to.
    pub security_groups: Vec<SecurityGroupBinding>,
    /// Containers, init and app.
    pub containers: Vec<NewContainer>,
    /// Volume mounts.
    pub volume_mappings: Vec<NewVolumeMapping>,
    /// Volumes the capsule takes on `claim`'s host (none without a claim).
    pub volumes: Vec<CapsuleVolume>,
    /// The limits its new volumes must fit.
    pub volume_limits: VolumeLimits,
    /// Resources and ports to claim on `host`, atomically with the insert.
    pub claim: Option<Claim>,
    /// Messages to publish once this is committed.
    pub outbox: Vec<NewOutbox>,
}

/// A capsule's security group: as the template names it, and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroupBinding {
    /// The name or id as given.
    pub reference: String,
    /// The group's id.
    pub security_group_id: String,
}

/// A capsule with everything its view shows.
#[derive(Clone, Debug, PartialEq)]
pub struct CapsuleRecord {
    /// The capsule row.
    pub capsule: capsule::Model,
    /// Init containers in order.
    pub init_containers: Vec<capsule_container::Model>,
    /// Application containers in order.
    pub containers: Vec<capsule_container::Model>,
    /// Security groups as named in the template, in order.
    pub security_groups: Vec<String>,
}

impl Database {
    /// Creates a capsule and everything that belongs to it, atomically: its claim on its host
    /// (resources and ports; [`DbError::ClaimFailed`] if the host has not enough left, and
    /// then nothing is written), its rows, and the messages to publish. Returns the record and
    /// the ids of the outbox entries.
    pub async fn create_capsule(
        &self,
        new: NewCapsule,
    ) -> Result<(CapsuleRecord, Vec<i32>), DbError> {
        let uuid = new.uuid.clone();
        let ctx = || format!("creating capsule {uuid}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        // The claim goes first: its conditional update locks the host's row, so concurrent
        // claims on one host are serialized and none can overcommit it.
        if let Some(claim) = &new.claim {
            claim_resources(&txn, claim)
                .await
                .map_err(DbError::query(ctx()))?
                .map_err(|reason| DbError::ClaimFailed {
                    host: claim.host.clone(),
                    reason,
                })?;
        }
        let created_at = now();
        let row = capsule::ActiveModel {
            uuid: Set(new.uuid.clone()),
            name: Set(new.name),
            project_id: Set(new.project_id),
            user_id: Set(new.user_id),
            status: Set(new.status),
            status_reason: Set(new.status_reason),
            task_state: Set(None),
            host: Set(new.host),
            availability_zone: Set(new.availability_zone),
            cpu: Set(new.cpu),
            memory: Set(new.memory),
            restart_policy: Set(new.restart_policy),
            restart_max_retries: Set(new.restart_max_retries),
            labels: Set(new.labels),
            annotations: Set(new.annotations),
            addresses: Set(Json::Object(Default::default())),
            created_at: Set(created_at),
            updated_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(DbError::query(ctx()))?;

        if let Some(claim) = &new.claim {
            claim_ports(&txn, claim, row.id)
                .await
                .map_err(DbError::query(ctx()))?
                .map_err(|reason| DbError::ClaimFailed {
                    host: claim.host.clone(),
                    reason,
                })?;
        }
        if let Some(claim) = &new.claim {
            take_volumes(&txn, &row, &claim.host, &new.volumes, new.volume_limits)
                .await
                .map_err(DbError::query(ctx()))??;
        }
        capsule_template::ActiveModel {
            capsule_id: Set(row.id),
            template: Set(new.template),
        }
        .insert(&txn)
        .await
        .map_err(DbError::query(ctx()))?;
        touch_project(&txn, &row.project_id)
            .await
            .map_err(DbError::query(ctx()))?;

        let mut init_containers = Vec::new();
        let mut containers = Vec::new();
        for c in new.containers {
            let is_init = c.is_init;
            let model = capsule_container::ActiveModel {
                uuid: Set(c.uuid),
                capsule_id: Set(row.id),
                is_init: Set(c.is_init),
                position: Set(c.position),
                name: Set(c.name),
                image: Set(c.image),
                command: Set(c.command),
                environment: Set(c.environment),
                workdir: Set(c.workdir),
                ports: Set(c.ports),
                image_pull_policy: Set(c.image_pull_policy),
                cpu: Set(c.cpu),
                memory: Set(c.memory),
                status: Set(c.status),
                status_reason: Set(None),
                task_state: Set(None),
                restart_policy: Set(c.restart_policy),
                restart_max_retries: Set(c.restart_max_retries),
                interactive: Set(c.interactive),
                tty: Set(c.tty),
                container_id: Set(None),
                exit_code: Set(None),
                restart_count: Set(0),
                ready: Set(None),
                healthcheck: Set(c.healthcheck),
                created_at: Set(created_at),
                updated_at: Set(None),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
            if is_init {
                init_containers.push(model);
            } else {
                containers.push(model);
            }
        }
        for m in new.volume_mappings {
            volume_mapping::ActiveModel {
                capsule_id: Set(row.id),
                container_uuid: Set(m.container_uuid),
                volume_name: Set(m.volume_name),
                mount_path: Set(m.mount_path),
                read_only: Set(m.read_only),
                volume_id: Set(m.volume_id),
                auto_remove: Set(m.auto_remove),
                created_at: Set(created_at),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        }
        for (i, b) in new.security_groups.iter().enumerate() {
            capsule_security_group::ActiveModel {
                capsule_id: Set(row.id),
                position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
                reference: Set(b.reference.clone()),
                security_group_id: Set(Some(b.security_group_id.clone())),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        }
        let mut outbox_ids = Vec::with_capacity(new.outbox.len());
        for msg in new.outbox {
            outbox_ids.push(enqueue(&txn, msg).await.map_err(DbError::query(ctx()))?);
        }
        txn.commit().await.map_err(DbError::query(ctx()))?;
        init_containers.sort_by_key(|c| c.position);
        containers.sort_by_key(|c| c.position);
        let rec = CapsuleRecord {
            capsule: row,
            init_containers,
            containers,
            security_groups: new
                .security_groups
                .into_iter()
                .map(|b| b.reference)
                .collect(),
        };
        Ok((rec, outbox_ids))
    }

    /// The capsule with this uuid, if the scope can see it.
    pub async fn capsule_by_uuid(
        &self,
        scope: &Scope,
        uuid: &str,
    ) -> Result<Option<CapsuleRecord>, DbError> {
        let row = capsule::Entity::find()
            .filter(scope.condition())
            .filter(capsule::Column::Uuid.eq(uuid))
            .one(&self.conn)
            .await
            .map_err(DbError::query(format!("looking up capsule {uuid}")))?;
        match row {
            Some(row) => Ok(self.with_children(vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    /// Capsules with this exact name visible in the scope (more than one is a conflict for the
    /// caller to report).
    pub async fn capsules_by_name(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<CapsuleRecord>, DbError> {
        let rows = capsule::Entity::find()
            .filter(scope.condition())
            .filter(capsule::Column::Name.eq(name))
            .order_by_asc(capsule::Column::Id)
            .limit(2)
            .all(&self.conn)
            .await
            .map_err(DbError::query(format!("looking up capsule named {name}")))?;
        self.with_children(rows).await
    }

    /// One page of capsules in the scope.
    pub async fn list_capsules(
        &self,
        scope: &Scope,
        params: &ListParams,
    ) -> Result<Vec<CapsuleRecord>, DbError> {
        let mut q = capsule::Entity::find().filter(scope.condition());
        if let Some(marker) = &params.marker {
            let m = capsule::Entity::find()
                .filter(scope.condition())
                .filter(capsule::Column::Uuid.eq(marker.as_str()))
                .one(&self.conn)
                .await
                .map_err(DbError::query(format!("looking up marker {marker}")))?
                .ok_or_else(|| DbError::MarkerNotFound {
                    marker: marker.clone(),
                })?;
            q = q.filter(after_marker(params, &m));
        }
        for (col, order, nulls) in order_terms(params) {
            q = q.order_by_with_nulls(col, order, nulls);
        }
        let rows = q
            .limit(params.limit)
            .all(&self.conn)
            .await
            .map_err(DbError::query("listing capsules"))?;
        self.with_children(rows).await
    }

    /// Loads the containers and security groups of `rows` with one query each.
    pub(crate) async fn with_children(
        &self,
        rows: Vec<capsule::Model>,
    ) -> Result<Vec<CapsuleRecord>, DbError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
        let children = capsule_container::Entity::find()
            .filter(capsule_container::Column::CapsuleId.is_in(ids.clone()))
            .order_by_asc(capsule_container::Column::CapsuleId)
            .order_by_asc(capsule_container::Column::Position)
            .all(&self.conn)
            .await
            .map_err(DbError::query("loading capsule containers"))?;
        let groups = capsule_security_group::Entity::find()
            .filter(capsule_security_group::Column::CapsuleId.is_in(ids))
            .order_by_asc(capsule_security_group::Column::CapsuleId)
            .order_by_asc(capsule_security_group::Column::Position)
            .all(&self.conn)
            .await
            .map_err(DbError::query("loading capsule security groups"))?;
        let mut by_capsule: HashMap<i32, CapsuleRecord> = HashMap::with_capacity(rows.len());
        let order: Vec<i32> = rows.iter().map(|r| r.id).collect();
        for r in rows {
            by_capsule.insert(
                r.id,
                CapsuleRecord {
                    capsule: r,
                    init_containers: Vec::new(),
                    containers: Vec::new(),
                    security_groups: Vec::new(),
                },
            );
        }
        for c in children {
            if let Some(rec) = by_capsule.get_mut(&c.capsule_id) {
                if c.is_init {
                    rec.init_containers.push(c);
                } else {
                    rec.containers.push(c);
                }
            }
        }
        for g in groups {
            if let Some(rec) = by_capsule.get_mut(&g.capsule_id) {
                rec.security_groups.push(g.reference);
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|id| by_capsule.remove(&id))
            .collect())
    }

    /// Sets (or clears) the task state of a capsule.
    pub async fn set_capsule_task_state(
        &self,
        id: i32,
        task_state: Option<&str>,
    ) -> Result<(), DbError> {
        self.update_capsule(id, "setting the task state", |u| {
            u.col_expr(capsule::Column::TaskState, Expr::value(task_state))
        })
        .await
    }

    /// Sets the status and reason of a capsule.
    pub async fn set_capsule_status(
        &self,
        id: i32,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), DbError> {
        self.update_capsule(id, "setting the status", |u| {
            u.col_expr(capsule::Column::Status, Expr::value(status))
                .col_expr(capsule::Column::StatusReason, Expr::value(reason))
        })
        .await
    }

    /// Applies `set` to capsule `id`, stamps `updated_at` and bumps its project's generation, in
    /// one transaction. A capsule that no longer exists is left alone.
    async fn update_capsule<F>(&self, id: i32, what: &str, set: F) -> Result<(), DbError>
    where
        F: FnOnce(sea_orm::UpdateMany<capsule::Entity>) -> sea_orm::UpdateMany<capsule::Entity>,
    {
        let ctx = || format!("{what} of capsule {id}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let Some(row) = capsule::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            return Ok(());
        };
        set(capsule::Entity::update_many())
            .col_expr(capsule::Column::UpdatedAt, Expr::value(now()))
            .filter(capsule::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        touch_project(&txn, &row.project_id)
            .await
            .map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))
    }

    /// Deletes a capsule and everything that belongs to it, and releases what it held on its
    /// host. Returns whether a row was deleted (a repeated delete is harmless) and the ids of
    /// `outbox` entries written with it.
    pub async fn delete_capsule(
        &self,
        id: i32,
        outbox: Option<NewOutbox>,
    ) -> Result<(bool, Vec<i32>), DbError> {
        let ctx = || format!("deleting capsule {id}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let Some(row) = capsule::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            return Ok((false, Vec::new()));
        };
        release_claim(&txn, &row)
            .await
            .map_err(DbError::query(ctx()))?;
        release_volumes(&txn, &row.uuid)
            .await
            .map_err(DbError::query(ctx()))?;
        remove_rows(&txn, id).await.map_err(DbError::query(ctx()))?;
        touch_project(&txn, &row.project_id)
            .await
            .map_err(DbError::query(ctx()))?;
        let mut ids = Vec::new();
        if let Some(msg) = outbox {
            ids.push(enqueue(&txn, msg).await.map_err(DbError::query(ctx()))?);
        }
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok((true, ids))
    }

    /// Marks capsule `id` as being deleted (status `Deleting`, task state
    /// `container_deleting`) and queues `outbox` (the delete for its host), atomically.
    /// Returns the outbox ids; none when the capsule is already gone.
    pub async fn request_capsule_delete(
        &self,
        id: i32,
        outbox: NewOutbox,
    ) -> Result<Vec<i32>, DbError> {
        let ctx = || format!("requesting the delete of capsule {id}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let res = capsule::Entity::update_many()
            .col_expr(capsule::Column::Status, Expr::value("Deleting"))
            .col_expr(
                capsule::Column::TaskState,
                Expr::value("container_deleting"),
            )
            .col_expr(capsule::Column::UpdatedAt, Expr::value(now()))
            .filter(capsule::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        if res.rows_affected == 0 {
            return Ok(Vec::new());
        }
        let project = capsule::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?
            .map(|c| c.project_id);
        if let Some(p) = project {
            touch_project(&txn, &p)
                .await
                .map_err(DbError::query(ctx()))?;
        }
        let oid = enqueue(&txn, outbox).await.map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok(vec![oid])
    }

    /// The validated template capsule `id` was created from.
    pub async fn capsule_template(&self, id: i32) -> Result<Option<Json>, DbError> {
        Ok(capsule_template::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(DbError::query(format!(
                "reading the template of capsule {id}"
            )))?
            .map(|t| t.template))
    }

    /// The generation of `project`: it changes whenever one of its capsules changes, so a
    /// reader that cached something with generation `g` knows it is current while this is `g`.
    pub async fn project_generation(&self, project: &str) -> Result<i64, DbError> {
        Ok(project_generation::Entity::find_by_id(project.to_owned())
            .one(&self.conn)
            .await
            .map_err(DbError::query(format!(
                "reading the generation of project {project}"
            )))?
            .map_or(0, |g| g.generation))
    }

    /// Number of capsules in the scope.
    pub async fn count_capsules(&self, scope: &Scope) -> Result<u64, DbError> {
        use sea_orm::PaginatorTrait;
        capsule::Entity::find()
            .filter(scope.condition())
            .count(&self.conn)
            .await
            .map_err(DbError::query("counting capsules"))
    }
}
