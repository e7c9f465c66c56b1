//! Volume datastore: volumes created (within the project's gigabytes quota and the size
//! limit), listed, shown, renamed and deleted; taken by a capsule at its create, atomically
//! with it (one attacher at a time), and given back or removed with it.

use std::collections::HashMap;

use capsule_types::rpc::VolumeHostState;
use capsule_types::VolumeStatus;
use sea_orm::sea_query::{Alias, Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::Value as Json;

use crate::entity::{capsule, volume, volume_mapping};
use crate::ground::{now, touch_project};
use crate::outbox::{enqueue, NewOutbox};
use crate::{Database, DbError};

/// Whose volumes: one project's, or everyone's (admin).
#[derive(Clone, Copy, Debug)]
pub enum VolumeScope<'a> {
    /// Only this project's.
    Project(&'a str),
    /// Every project's.
    All,
}

impl VolumeScope<'_> {
    fn condition(self) -> Condition {
        match self {
            VolumeScope::Project(p) => {
                Condition::all().add(volume::Column::ProjectId.eq(p.to_owned()))
            }
            VolumeScope::All => Condition::all(),
        }
    }
}

/// The limits a new volume must fit, from the API's configuration. The default is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeLimits {
    /// Largest size of one volume, GiB.
    pub max_size_gib: i64,
    /// Gigabytes a project's volumes may add up to; negative: unlimited (Cinder's `-1`).
    pub project_gigabytes: i64,
    /// Volumes a project may have; negative: unlimited.
    pub project_volumes: i64,
}

impl Default for VolumeLimits {
    fn default() -> Self {
        Self {
            max_size_gib: i64::MAX,
            project_gigabytes: -1,
            project_volumes: -1,
        }
    }
}

/// Why a volume (or a capsule's new volumes) cannot be made; nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VolumeRefused {
    /// Larger than `max_size_gib`.
    #[error("Volume size {size}G exceeds the largest allowed volume size of {max}G.")]
    TooLarge {
        /// Asked for.
        size: i64,
        /// The limit.
        max: i64,
    },
    /// The project's gigabytes quota would be passed (Cinder's wording).
    #[error(
        "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed \
         gigabytes quota. Requested {requested}G, quota is {quota}G and {used}G has been consumed."
    )]
    OverQuota {
        /// Asked for.
        requested: i64,
        /// The quota.
        quota: i64,
        /// Already used.
        used: i64,
    },
    /// The project's volume count quota would be passed (Cinder's wording).
    #[error("VolumeLimitExceeded: Maximum number of volumes allowed ({quota}) exceeded for quota 'volumes'.")]
    TooMany {
        /// The quota.
        quota: i64,
    },
    /// An existing volume a capsule asked for cannot be attached (it changed since it was
    /// checked: taken by another capsule, or being deleted).
    #[error("Volume {id} is not available to attach: it is {status}.")]
    NotAttachable {
        /// The volume.
        id: String,
        /// Its status now.
        status: String,
    },
}

/// A volume to create on its own (`POST /volumes`).
#[derive(Clone, Debug)]
pub struct NewVolume {
    /// Its uuid.
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Size, GiB.
    pub size_gib: i64,
    /// Zone.
    pub availability_zone: String,
    /// Metadata (object of strings).
    pub metadata: Json,
    /// The compute host that will hold it; none when no host can: the volume is recorded in
    /// `error` (Cinder's "No valid backend").
    pub host: Option<String>,
}

/// A volume a capsule takes at its create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapsuleVolume {
    /// An existing volume (`cinder: {volumeID}`): attached, never removed with the capsule.
    Existing {
        /// Its id.
        id: String,
    },
    /// A volume made for the capsule (`cinder: {size, autoRemove}`) on the capsule's host.
    New {
        /// Its id.
        id: String,
        /// Size, GiB.
        size_gib: i64,
        /// Removed with the capsule.
        auto_remove: bool,
    },
}

/// A volume with the mounts of its capsule that use it.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeRecord {
    /// The volume.
    pub volume: volume::Model,
    /// Where its capsule's containers mount it (empty when not attached).
    pub mounts: Vec<volume_mapping::Model>,
}

/// What a delete request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeDeleted {
    /// Marked `deleting`; its host was told (the outbox ids).
    Deleting(Vec<i32>),
    /// It had no host: removed at once.
    Removed,
    /// No such volume in the scope.
    NotFound,
    /// Its status does not allow a delete (Cinder: only `available` or `error`).
    NotDeletable {
        /// The status.
        status: String,
        /// The capsule it is attached to.
        capsule: Option<String>,
    },
}

/// Filters and paging of a volume list.
#[derive(Clone, Debug, Default)]
pub struct VolumeQuery {
    /// Only volumes of this name.
    pub name: Option<String>,
    /// Only volumes in this status.
    pub status: Option<String>,
    /// Only volumes after this id (in the list's order: newest first).
    pub marker: Option<String>,
    /// At most this many.
    pub limit: Option<u64>,
}

/// Gigabytes the project's volumes take now, in the caller's transaction.
async fn used_gigabytes<C: ConnectionTrait>(db: &C, project: &str) -> Result<i64, DbErr> {
    let sum: Option<Option<i64>> = volume::Entity::find()
        .select_only()
        // PostgreSQL sums BIGINT into NUMERIC: back to BIGINT for every backend.
        .expr(Func::cast_as(
            Func::coalesce([Expr::col(volume::Column::SizeGib).sum(), Expr::value(0i64)]),
            Alias::new("BIGINT"),
        ))
        .filter(volume::Column::ProjectId.eq(project))
        .into_tuple()
        .one(db)
        .await?;
    Ok(sum.flatten().unwrap_or(0))
}

/// Checks that `sizes` fit `limits` for `project`, in the caller's transaction (which holds the
/// project's row lock, taken by `touch_project`, so concurrent creates are counted).
async fn check_limits<C: ConnectionTrait>(
    db: &C,
    project: &str,
    sizes: &[i64],
    limits: VolumeLimits,
) -> Result<Result<(), VolumeRefused>, DbErr> {
    if let Some(&size) = sizes.iter().find(|&&s| s > limits.max_size_gib) {
        return Ok(Err(VolumeRefused::TooLarge {
            size,
            max: limits.max_size_gib,
        }));
    }
    if sizes.is_empty() {
        return Ok(Ok(()));
    }
    if limits.project_volumes >= 0 {
        let n = volume::Entity::find()
            .filter(volume::Column::ProjectId.eq(project))
            .count(db)
            .await?;
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        if n + i64::try_from(sizes.len()).unwrap_or(i64::MAX) > limits.project_volumes {
            return Ok(Err(VolumeRefused::TooMany {
                quota: limits.project_volumes,
            }));
        }
    }
    if limits.project_gigabytes < 0 {
        return Ok(Ok(()));
    }
    let used = used_gigabytes(db, project).await?;
    let requested: i64 = sizes.iter().sum();
    Ok(if used + requested > limits.project_gigabytes {
        Err(VolumeRefused::OverQuota {
            requested,
            quota: limits.project_gigabytes,
            used,
        })
    } else {
        Ok(())
    })
}

/// Takes `volumes` for `capsule` on `host`, in the caller's
/// transaction: existing ones go `in-use` if they are still `available` on that host, new
/// ones are recorded `creating`, attached. `Ok(Err(_))`: the caller must roll back.
pub(crate) async fn take_volumes<C: ConnectionTrait>(
    db: &C,
    capsule: &capsule::Model,
    host: &str,
    volumes: &[CapsuleVolume],
    limits: VolumeLimits,
) -> Result<Result<(), VolumeRefused>, DbErr> {
    let (capsule_uuid, project, user) = (
        capsule.uuid.as_str(),
        capsule.project_id.as_str(),
        capsule.user_id.as_str(),
    );
    let zone = capsule.availability_zone.as_deref().unwrap_or_default();
    let sizes: Vec<i64> = volumes
        .iter()
        .filter_map(|v| match v {
            CapsuleVolume::New { size_gib, .. } => Some(*size_gib),
            CapsuleVolume::Existing { .. } => None,
        })
        .collect();
    if let Err(refused) = check_limits(db, project, &sizes, limits).await? {
        return Ok(Err(refused));
    }
    let t = now();
    for v in volumes {
        match v {
            CapsuleVolume::Existing { id } => {
                let res = volume::Entity::update_many()
                    .col_expr(
                        volume::Column::Status,
                        Expr::value(VolumeStatus::InUse.as_str()),
                    )
                    .col_expr(volume::Column::CapsuleUuid, Expr::value(capsule_uuid))
                    .col_expr(volume::Column::AttachedAt, Expr::value(t))
                    .col_expr(volume::Column::UpdatedAt, Expr::value(t))
                    .filter(volume::Column::Id.eq(id.as_str()))
                    .filter(volume::Column::ProjectId.eq(project))
                    .filter(volume::Column::Host.eq(host))
                    .filter(volume::Column::Status.eq(VolumeStatus::Available.as_str()))
                    .filter(volume::Column::CapsuleUuid.is_null())
                    .exec(db)
                    .await?;
                if res.rows_affected != 1 {
                    let status = volume::Entity::find_by_id(id.as_str())
                        .one(db)
                        .await?
                        .map_or_else(|| "gone".to_owned(), |v| v.status);
                    return Ok(Err(VolumeRefused::NotAttachable {
                        id: id.clone(),
                        status,
                    }));
                }
            }
            CapsuleVolume::New {
                id,
                size_gib,
                auto_remove,
            } => {
                volume::ActiveModel {
                    id: Set(id.clone()),
                    project_id: Set(project.to_owned()),
                    user_id: Set(user.to_owned()),
                    name: Set(None),
                    description: Set(Some(format!("Made for capsule {capsule_uuid}"))),
                    size_gib: Set(*size_gib),
                    status: Set(VolumeStatus::Creating.as_str().to_owned()),
                    status_reason: Set(None),
                    host: Set(Some(host.to_owned())),
                    availability_zone: Set(zone.to_owned()),
                    capsule_uuid: Set(Some(capsule_uuid.to_owned())),
                    attached_at: Set(Some(t)),
                    auto_remove: Set(*auto_remove),
                    metadata: Set(Json::Object(Default::default())),
                    created_at: Set(t),
                    updated_at: Set(None),
                }
                .insert(db)
                .await?;
            }
        }
    }
    Ok(Ok(()))
}

/// The volumes of capsule `capsule_uuid` that its host has made (it reported the capsule
/// built, or failed after making them) become `in-use`, in the caller's transaction.
pub(crate) async fn volumes_made<C: ConnectionTrait>(
    db: &C,
    capsule_uuid: &str,
) -> Result<(), DbErr> {
    volume::Entity::update_many()
        .col_expr(
            volume::Column::Status,
            Expr::value(VolumeStatus::InUse.as_str()),
        )
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::CapsuleUuid.eq(capsule_uuid))
        .filter(volume::Column::Status.eq(VolumeStatus::Creating.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives back the volumes of a capsule that is gone, in the caller's transaction: those made
/// for it with `autoRemove` are removed (its host removed their files with the capsule), the
/// others are `available` again, their data kept.
pub(crate) async fn release_volumes<C: ConnectionTrait>(
    db: &C,
    capsule_uuid: &str,
) -> Result<(), DbErr> {
    remove_auto_removed(db, capsule_uuid).await?;
    detach(capsule_uuid, VolumeStatus::Available)
        .exec(db)
        .await?;
    Ok(())
}

/// Gives back the volumes of a capsule whose create failed and was undone on its host, in the
/// caller's transaction: `autoRemove` ones are removed (the host removed them), the other new
/// ones, which the host may not have made, go to `error` with `reason` (the user deletes
/// them), existing ones are `available` again.
pub(crate) async fn release_failed_volumes<C: ConnectionTrait>(
    db: &C,
    capsule_uuid: &str,
    reason: &str,
) -> Result<(), DbErr> {
    remove_auto_removed(db, capsule_uuid).await?;
    detach(capsule_uuid, VolumeStatus::Error)
        .col_expr(
            volume::Column::StatusReason,
            Expr::value(format!("The capsule it was made for failed: {reason}")),
        )
        .filter(volume::Column::Status.eq(VolumeStatus::Creating.as_str()))
        .exec(db)
        .await?;
    detach(capsule_uuid, VolumeStatus::Available)
        .exec(db)
        .await?;
    Ok(())
}

async fn remove_auto_removed<C: ConnectionTrait>(db: &C, capsule_uuid: &str) -> Result<(), DbErr> {
    volume::Entity::delete_many()
        .filter(volume::Column::CapsuleUuid.eq(capsule_uuid))
        .filter(volume::Column::AutoRemove.eq(true))
        .exec(db)
        .await?;
    Ok(())
}

/// The update that detaches the capsule's volumes, leaving them in `status`.
fn detach(capsule_uuid: &str, status: VolumeStatus) -> sea_orm::UpdateMany<volume::Entity> {
    volume::Entity::update_many()
        .col_expr(volume::Column::Status, Expr::value(status.as_str()))
        .col_expr(volume::Column::CapsuleUuid, Expr::value(None::<String>))
        .col_expr(
            volume::Column::AttachedAt,
            Expr::value(None::<chrono::DateTime<chrono::Utc>>),
        )
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::CapsuleUuid.eq(capsule_uuid))
}

impl Database {
    /// Records a new volume `creating` on `new.host` and queues `outbox` (the create for that
    /// host), atomically, if it fits `limits`; without a host it is recorded in `error`.
    /// Returns the row and the outbox ids.
    pub async fn create_volume(
        &self,
        new: NewVolume,
        limits: VolumeLimits,
        outbox: Option<NewOutbox>,
    ) -> Result<Result<(volume::Model, Vec<i32>), VolumeRefused>, DbError> {
        let ctx = || format!("creating volume {}", new.id);
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        // The project's row lock first: concurrent creates of one project are counted.
        touch_project(&txn, &new.project_id)
            .await
            .map_err(DbError::query(ctx()))?;
        if let Err(refused) = check_limits(&txn, &new.project_id, &[new.size_gib], limits)
            .await
            .map_err(DbError::query(ctx()))?
        {
            return Ok(Err(refused));
        }
        let t = now();
        let (status, reason) = if new.host.is_some() {
            (VolumeStatus::Creating, None)
        } else {
            (
                VolumeStatus::Error,
                Some("No valid backend was found: no compute host can take the volume.".to_owned()),
            )
        };
        let row = volume::ActiveModel {
            id: Set(new.id.clone()),
            project_id: Set(new.project_id),
            user_id: Set(new.user_id),
            name: Set(new.name),
            description: Set(new.description),
            size_gib: Set(new.size_gib),
            status: Set(status.as_str().to_owned()),
            status_reason: Set(reason),
            host: Set(new.host),
            availability_zone: Set(new.availability_zone),
            capsule_uuid: Set(None),
            attached_at: Set(None),
            auto_remove: Set(false),
            metadata: Set(new.metadata),
            created_at: Set(t),
            updated_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(DbError::query(ctx()))?;
        let mut ids = Vec::new();
        if let Some(msg) = outbox.filter(|_| row.host.is_some()) {
            ids.push(enqueue(&txn, msg).await.map_err(DbError::query(ctx()))?);
        }
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok(Ok((row, ids)))
    }

    /// Gigabytes and number of volumes of `project`.
    pub async fn volume_usage(&self, project: &str) -> Result<(i64, u64), DbError> {
        let ctx = || format!("counting the volumes of project {project}");
        let gib = used_gigabytes(&self.conn, project)
            .await
            .map_err(DbError::query(ctx()))?;
        let n = volume::Entity::find()
            .filter(volume::Column::ProjectId.eq(project))
            .count(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        Ok((gib, n))
    }

    /// Volume `id`, if the scope can see it, with its mounts.
    pub async fn volume(
        &self,
        scope: VolumeScope<'_>,
        id: &str,
    ) -> Result<Option<VolumeRecord>, DbError> {
        let ctx = || format!("looking up volume {id}");
        let Some(v) = volume::Entity::find_by_id(id)
            .filter(scope.condition())
            .one(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            return Ok(None);
        };
        let mut out = self.with_mounts(vec![v]).await?;
        Ok(out.pop())
    }

    /// The volumes the scope can see, newest first, filtered and paged.
    pub async fn volumes(
        &self,
        scope: VolumeScope<'_>,
        q: &VolumeQuery,
    ) -> Result<Vec<VolumeRecord>, DbError> {
        let ctx = || "listing volumes".to_owned();
        let mut cond = scope.condition();
        if let Some(n) = &q.name {
            cond = cond.add(volume::Column::Name.eq(n.as_str()));
        }
        if let Some(s) = &q.status {
            cond = cond.add(volume::Column::Status.eq(s.as_str()));
        }
        if let Some(m) = &q.marker {
            let Some(marker) = volume::Entity::find_by_id(m.as_str())
                .filter(scope.condition())
                .one(&self.conn)
                .await
                .map_err(DbError::query(ctx()))?
            else {
                return Err(DbError::MarkerNotFound { marker: m.clone() });
            };
            cond = cond.add(
                Condition::any()
                    .add(volume::Column::CreatedAt.lt(marker.created_at))
                    .add(
                        Condition::all()
                            .add(volume::Column::CreatedAt.eq(marker.created_at))
                            .add(volume::Column::Id.lt(marker.id.as_str())),
                    ),
            );
        }
        let mut sel = volume::Entity::find()
            .filter(cond)
            .order_by_desc(volume::Column::CreatedAt)
            .order_by_desc(volume::Column::Id);
        if let Some(l) = q.limit {
            sel = sel.limit(l);
        }
        let rows = sel.all(&self.conn).await.map_err(DbError::query(ctx()))?;
        self.with_mounts(rows).await
    }

    /// The volumes with the mounts of the capsules they are attached to (not those of a
    /// capsule that had them before and still exists, in `Error`).
    async fn with_mounts(&self, rows: Vec<volume::Model>) -> Result<Vec<VolumeRecord>, DbError> {
        let ctx = || "listing volume mounts".to_owned();
        let holders: Vec<String> = rows.iter().filter_map(|v| v.capsule_uuid.clone()).collect();
        if holders.is_empty() {
            return Ok(rows
                .into_iter()
                .map(|volume| VolumeRecord {
                    volume,
                    mounts: Vec::new(),
                })
                .collect());
        }
        let capsule_ids: HashMap<String, i32> = capsule::Entity::find()
            .filter(capsule::Column::Uuid.is_in(holders))
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?
            .into_iter()
            .map(|c| (c.uuid, c.id))
            .collect();
        let mounts = volume_mapping::Entity::find()
            .filter(volume_mapping::Column::CapsuleId.is_in(capsule_ids.values().copied()))
            .order_by_asc(volume_mapping::Column::Id)
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        Ok(rows
            .into_iter()
            .map(|volume| {
                let holder = volume
                    .capsule_uuid
                    .as_ref()
                    .and_then(|u| capsule_ids.get(u));
                let mounts = mounts
                    .iter()
                    .filter(|m| {
                        Some(&m.capsule_id) == holder
                            && m.volume_id.as_deref() == Some(volume.id.as_str())
                    })
                    .cloned()
                    .collect();
                VolumeRecord { volume, mounts }
            })
            .collect())
    }

    /// Changes the name, description and metadata of volume `id` (`None`: unchanged).
    pub async fn update_volume(
        &self,
        scope: VolumeScope<'_>,
        id: &str,
        name: Option<Option<String>>,
        description: Option<Option<String>>,
        metadata: Option<Json>,
    ) -> Result<Option<VolumeRecord>, DbError> {
        let ctx = || format!("updating volume {id}");
        let Some(row) = volume::Entity::find_by_id(id)
            .filter(scope.condition())
            .one(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            return Ok(None);
        };
        let mut am: volume::ActiveModel = row.into();
        if let Some(n) = name {
            am.name = Set(n);
        }
        if let Some(d) = description {
            am.description = Set(d);
        }
        if let Some(m) = metadata {
            am.metadata = Set(m);
        }
        am.updated_at = Set(Some(now()));
        am.update(&self.conn).await.map_err(DbError::query(ctx()))?;
        self.volume(scope, id).await
    }

    /// Changes volume `id`'s metadata atomically: `change` gets what is stored and returns
    /// what to store, or refuses (its error comes back inside `Ok`, and nothing changes).
    /// Concurrent changes serialize on the volume's row (it is written first in the
    /// transaction, which locks it on PostgreSQL and takes the write lock on SQLite before
    /// the read), so none is lost. `Ok(Ok(None))`: no such volume in `scope`.
    pub async fn change_volume_metadata<E>(
        &self,
        scope: VolumeScope<'_>,
        id: &str,
        change: impl FnOnce(&Json) -> Result<Json, E> + Send,
    ) -> Result<Result<Option<VolumeRecord>, E>, DbError> {
        let ctx = || format!("changing the metadata of volume {id}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let touched = volume::Entity::update_many()
            .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
            .filter(scope.condition())
            .filter(volume::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        if touched.rows_affected != 1 {
            return Ok(Ok(None));
        }
        let row = volume::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        let Some(row) = row else {
            return Ok(Ok(None));
        };
        let metadata = match change(&row.metadata) {
            Ok(m) => m,
            // Dropped without a commit: the transaction rolls back.
            Err(refused) => return Ok(Err(refused)),
        };
        let mut am: volume::ActiveModel = row.into();
        am.metadata = Set(metadata);
        am.update(&txn).await.map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))?;
        self.volume(scope, id).await.map(Ok)
    }

    /// Deletes volume `id` if its status allows: it goes `deleting` and its host is told
    /// (durably: `message` of the host is written to the outbox in the same transaction); the
    /// host's report removes the row. A volume without a host is removed at once.
    pub async fn request_volume_delete(
        &self,
        scope: VolumeScope<'_>,
        id: &str,
        message: impl FnOnce(&str) -> NewOutbox + Send,
    ) -> Result<VolumeDeleted, DbError> {
        let ctx = || format!("deleting volume {id}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        // The conditional write comes first: a capsule that takes the volume meanwhile keeps
        // it, and (on SQLite) the transaction never has to turn from reader into writer.
        let deletable = [VolumeStatus::Available, VolumeStatus::Error].map(VolumeStatus::as_str);
        let res = volume::Entity::update_many()
            .col_expr(
                volume::Column::Status,
                Expr::value(VolumeStatus::Deleting.as_str()),
            )
            .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
            .filter(scope.condition())
            .filter(volume::Column::Id.eq(id))
            .filter(volume::Column::Status.is_in(deletable))
            .filter(volume::Column::CapsuleUuid.is_null())
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        let row = volume::Entity::find_by_id(id)
            .filter(scope.condition())
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        let Some(row) = row else {
            return Ok(VolumeDeleted::NotFound);
        };
        if res.rows_affected != 1 {
            return Ok(VolumeDeleted::NotDeletable {
                status: row.status,
                capsule: row.capsule_uuid,
            });
        }
        let Some(host) = row.host.clone() else {
            volume::Entity::delete_by_id(id)
                .exec(&txn)
                .await
                .map_err(DbError::query(ctx()))?;
            txn.commit().await.map_err(DbError::query(ctx()))?;
            return Ok(VolumeDeleted::Removed);
        };
        let oid = enqueue(&txn, message(&host))
            .await
            .map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok(VolumeDeleted::Deleting(vec![oid]))
    }

    /// Applies `host`'s report on volume `id`: `creating` becomes `available` or `error`,
    /// `deleting` becomes gone (or `error` when the host could not remove it). Anything else
    /// (a repeated or late report, another host's volume) changes nothing. Returns whether it
    /// applied.
    pub async fn apply_volume_state(
        &self,
        host: &str,
        id: &str,
        state: VolumeHostState,
        reason: Option<&str>,
    ) -> Result<bool, DbError> {
        let ctx = || format!("applying the state of volume {id} from {host}");
        let mine = Condition::all()
            .add(volume::Column::Id.eq(id))
            .add(volume::Column::Host.eq(host));
        let res = match state {
            VolumeHostState::Deleted => {
                volume::Entity::delete_many()
                    .filter(mine)
                    .filter(volume::Column::Status.eq(VolumeStatus::Deleting.as_str()))
                    .exec(&self.conn)
                    .await
                    .map_err(DbError::query(ctx()))?
                    .rows_affected
            }
            VolumeHostState::Available | VolumeHostState::Error => {
                let (status, reason) = if state == VolumeHostState::Available {
                    (VolumeStatus::Available, None)
                } else {
                    (VolumeStatus::Error, reason.map(str::to_owned))
                };
                // A failed remove leaves the volume in `error` (Cinder's `error_deleting`
                // folded in), so the user sees why and can delete it again.
                let from: &[&str] = if state == VolumeHostState::Available {
                    &[VolumeStatus::Creating.as_str()]
                } else {
                    &[
                        VolumeStatus::Creating.as_str(),
                        VolumeStatus::Deleting.as_str(),
                    ]
                };
                volume::Entity::update_many()
                    .col_expr(volume::Column::Status, Expr::value(status.as_str()))
                    .col_expr(volume::Column::StatusReason, Expr::value(reason))
                    .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
                    .filter(mine)
                    .filter(volume::Column::Status.is_in(from.iter().copied()))
                    .filter(volume::Column::CapsuleUuid.is_null())
                    .exec(&self.conn)
                    .await
                    .map_err(DbError::query(ctx()))?
                    .rows_affected
            }
        };
        Ok(res == 1)
    }

    /// Volumes placed on `host`, any status (for the host's reconcile and for tests).
    pub async fn volumes_on_host(&self, host: &str) -> Result<Vec<volume::Model>, DbError> {
        volume::Entity::find()
            .filter(volume::Column::Host.eq(host))
            .order_by_asc(volume::Column::CreatedAt)
            .all(&self.conn)
            .await
            .map_err(DbError::query(format!("listing the volumes on {host}")))
    }
}
