//! Volumes (the Cinder API's `/volumes`): list, summary, show, create, update, delete and the
//! metadata sub-resource. A project sees and changes its own volumes, an admin any; changes
//! need the `member` role or admin (Cinder's `project_member_api`). A new volume is placed on a
//! compute host ([`Placement::volume_host`]) and the host told through the outbox; a volume no
//! host can take is stored in `error`.
//!
//! Operations answer [`VolumeError`]; the Cinder API renders it. Those that Cinder checks only
//! after policy take the parsed request as a `Result` in the API's own error type `E`, and
//! report its refusal at that point.

use db::volumes::{
    NewVolume, VolumeDeleted, VolumeQuery, VolumeRecord, VolumeRefused, VolumeScope,
};
use db::DbError;
use serde_json::{Map, Value};

use super::volume_type;
use super::zone;
use crate::compute::{ComputeError, Placement};
use crate::context::RequestContext;
use crate::state::AppState;

/// Why a volume operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// Policy does not allow the caller `action` (Cinder's rule name).
    #[error("policy does not allow {action}")]
    Denied {
        /// The refused action.
        action: &'static str,
    },
    /// No volume `id` the caller may see.
    #[error("volume {id} not found")]
    NotFound {
        /// As asked.
        id: String,
    },
    /// A create names a volume type other than the one there is.
    #[error("volume type {name} not found")]
    UnknownType {
        /// As asked.
        name: String,
    },
    /// `GET /types/{id}` names another type than the one there is.
    #[error("volume type {id} not found")]
    TypeNotFound {
        /// As asked.
        id: String,
    },
    /// A create asks for a zone no compute host is in.
    #[error("availability zone {zone} is invalid")]
    InvalidZone {
        /// As asked.
        zone: String,
    },
    /// Its status does not allow a delete (only `available` and `error` volumes that no
    /// capsule uses).
    #[error("volume cannot be deleted now")]
    NotDeletable {
        /// The capsule it is attached to.
        capsule: Option<String>,
    },
    /// The volume has no metadata `key`.
    #[error("volume {id} has no metadata key {key}")]
    NoMetadataKey {
        /// The volume, as asked.
        id: String,
        /// The key.
        key: String,
    },
    /// A volume action (extend, attach, ...): none is supported.
    #[error("volume action {name} is not supported")]
    UnsupportedAction {
        /// The action's name.
        name: String,
    },
    /// Quotas come from the configuration; an admin asked to change them.
    #[error("quotas cannot be changed through the API")]
    QuotasFixed,
    /// The limits or quotas refuse it.
    #[error(transparent)]
    Refused(#[from] VolumeRefused),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The host's message could not be built.
    #[error(transparent)]
    Compute(Box<ComputeError>),
}

impl From<ComputeError> for VolumeError {
    fn from(e: ComputeError) -> Self {
        Self::Compute(Box::new(e))
    }
}

/// The caller's project; a token without one may not do `action`.
pub fn project<'a>(ctx: &'a RequestContext, action: &'static str) -> Result<&'a str, VolumeError> {
    ctx.identity
        .project_id
        .as_deref()
        .ok_or(VolumeError::Denied { action })
}

/// The volumes the caller may see or change by id: an admin any, anyone else their project's.
pub fn scope<'a>(
    ctx: &'a RequestContext,
    action: &'static str,
) -> Result<VolumeScope<'a>, VolumeError> {
    if ctx.is_admin {
        return Ok(VolumeScope::All);
    }
    project(ctx, action).map(VolumeScope::Project)
}

/// Changes need the `member` role on a project, or admin; `reader`s only read (Cinder's
/// `project_member_api`).
pub fn may_change(ctx: &RequestContext, action: &'static str) -> Result<(), VolumeError> {
    if ctx.is_admin || ctx.identity.is_project_member() {
        Ok(())
    } else {
        Err(VolumeError::Denied { action })
    }
}

/// What a list asks for, besides paging (in `query`).
#[derive(Clone, Debug, Default)]
pub struct ListRequest {
    /// Filters and paging.
    pub query: VolumeQuery,
    /// `all_tenants` (admins: every project's).
    pub all_tenants: bool,
    /// `project_id` (admins: that project's).
    pub project: Option<String>,
    /// `with_count`: count what the filters match beyond the page.
    pub with_count: bool,
}

/// A page of volumes.
#[derive(Clone, Debug)]
pub struct VolumePage {
    /// The volumes, newest first.
    pub records: Vec<VolumeRecord>,
    /// How many match the filters in all, when asked.
    pub count: Option<usize>,
}

/// The volumes a list shows: an admin's own project's, everyone's with `all_tenants`, or one
/// project's with `project_id`; anyone else's own (their `all_tenants` is ignored, as Cinder
/// does).
fn list_scope<'a>(
    ctx: &'a RequestContext,
    all_tenants: bool,
    project_asked: Option<&'a str>,
) -> Result<VolumeScope<'a>, VolumeError> {
    const ACTION: &str = "volume:get_all";
    if ctx.is_admin {
        if let Some(project) = project_asked {
            return Ok(VolumeScope::Project(project));
        }
        if all_tenants {
            return Ok(VolumeScope::All);
        }
    }
    project(ctx, ACTION).map(VolumeScope::Project)
}

/// A page of the volumes the caller may list.
pub async fn list(
    state: &AppState,
    ctx: &RequestContext,
    req: &ListRequest,
) -> Result<VolumePage, VolumeError> {
    let scope = list_scope(ctx, req.all_tenants, req.project.as_deref())?;
    let records = match state.db.volumes(scope, &req.query).await {
        Err(DbError::MarkerNotFound { marker }) => {
            return Err(VolumeError::NotFound { id: marker })
        }
        other => other?,
    };
    let count = if req.with_count {
        let all = VolumeQuery {
            name: req.query.name.clone(),
            status: req.query.status.clone(),
            ..Default::default()
        };
        Some(state.db.volumes(scope, &all).await?.len())
    } else {
        None
    };
    Ok(VolumePage { records, count })
}

/// Every volume a summary counts (`all_tenants` for an admin).
pub async fn summary(
    state: &AppState,
    ctx: &RequestContext,
    all_tenants: bool,
) -> Result<Vec<VolumeRecord>, VolumeError> {
    let scope = list_scope(ctx, all_tenants, None)?;
    Ok(state.db.volumes(scope, &VolumeQuery::default()).await?)
}

/// Volume `id`, if the caller may see it (`action` names the refusal otherwise).
pub async fn show(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    action: &'static str,
) -> Result<VolumeRecord, VolumeError> {
    state
        .db
        .volume(scope(ctx, action)?, id)
        .await?
        .ok_or_else(|| VolumeError::NotFound { id: id.to_owned() })
}

/// A `POST /volumes` body, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateRequest {
    /// Size, GiB (>= 1).
    pub size: i64,
    /// Name (trimmed).
    pub name: Option<String>,
    /// Description (trimmed).
    pub description: Option<String>,
    /// Requested zone.
    pub availability_zone: Option<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// Requested type (name or id), if any.
    pub volume_type: Option<String>,
}

/// A `PUT /volumes/{id}` body, checked: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateRequest {
    /// New name (`Some(None)`: none).
    pub name: Option<Option<String>>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New metadata (replaces the old).
    pub metadata: Option<Map<String, Value>>,
}

/// Creates a volume, `creating` on the host placement chose (told at once, durably), or in
/// `error` when no host can take it. `req` is the parsed body, or the API's refusal of it.
pub async fn create<E: From<VolumeError>>(
    state: &AppState,
    ctx: &RequestContext,
    req: Result<CreateRequest, E>,
) -> Result<VolumeRecord, E> {
    const ACTION: &str = "volume:create";
    may_change(ctx, ACTION)?;
    let project = project(ctx, ACTION)?.to_owned();
    let req = req?;
    Ok(create_checked(state, ctx, project, req).await?)
}

async fn create_checked(
    state: &AppState,
    ctx: &RequestContext,
    project: String,
    req: CreateRequest,
) -> Result<VolumeRecord, VolumeError> {
    if let Some(t) = req.volume_type.as_deref() {
        if !volume_type::names_the_type(t) {
            return Err(VolumeError::UnknownType { name: t.to_owned() });
        }
    }
    let zone = req
        .availability_zone
        .clone()
        .unwrap_or_else(|| state.config.scheduler.default_availability_zone.clone());
    if !zone::names(state).await?.contains(&zone) {
        return Err(VolumeError::InvalidZone { zone });
    }
    let id = uuid::Uuid::new_v4();
    // Without a bus no host can take it: it is stored in error.
    let host = if state.compute.is_connected() {
        Placement::new(&state.db, &state.config)
            .volume_host(&zone)
            .await?
    } else {
        None
    };
    let outbox = match &host {
        Some(h) => {
            let size = u64::try_from(req.size).unwrap_or_default();
            Some(
                state
                    .compute
                    .create_volume(h, id, size, &ctx.request_id.0)?,
            )
        }
        None => None,
    };
    let new = NewVolume {
        id: id.to_string(),
        project_id: project.clone(),
        user_id: ctx.identity.user_id.clone(),
        name: req.name,
        description: req.description,
        size_gib: req.size,
        availability_zone: zone,
        metadata: Value::Object(req.metadata),
        host: host.clone(),
    };
    let (row, ids) = state
        .db
        .create_volume(new, state.config.volume.limits(), outbox)
        .await??;
    match &host {
        Some(h) => {
            tracing::info!(volume = %row.id, %project, host = %h, size = row.size_gib, "volume scheduled")
        }
        None => tracing::info!(volume = %row.id, %project, "no host can take the volume"),
    }
    state.publish_now(&ids).await;
    Ok(VolumeRecord {
        volume: row,
        mounts: Vec::new(),
    })
}

/// Changes name, description and metadata of volume `id`. `req` is the parsed body, or the
/// API's refusal of it.
pub async fn update<E: From<VolumeError>>(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    req: Result<UpdateRequest, E>,
) -> Result<VolumeRecord, E> {
    const ACTION: &str = "volume:update";
    may_change(ctx, ACTION)?;
    let req = req?;
    let rec = state
        .db
        .update_volume(
            scope(ctx, ACTION)?,
            id,
            req.name,
            req.description,
            req.metadata.map(Value::Object),
        )
        .await
        .map_err(VolumeError::from)?
        .ok_or_else(|| VolumeError::NotFound { id: id.to_owned() })?;
    Ok(rec)
}

/// Deletes volume `id`: it goes `deleting` and its host removes its data (told durably), then
/// it is gone; one without a host goes at once. Only `available` and `error` volumes that no
/// capsule uses.
pub async fn delete(state: &AppState, ctx: &RequestContext, id: &str) -> Result<(), VolumeError> {
    const ACTION: &str = "volume:delete";
    may_change(ctx, ACTION)?;
    // Not a uuid: no such volume (the lookup below says so).
    let uuid = id.parse().unwrap_or(uuid::Uuid::nil());
    let message = state.compute.delete_volume(uuid, &ctx.request_id.0)?;
    match state
        .db
        .request_volume_delete(scope(ctx, ACTION)?, id, |host| message.to(host))
        .await?
    {
        VolumeDeleted::Deleting(ids) => {
            tracing::info!(volume = %id, "volume deleting");
            state.publish_now(&ids).await;
            Ok(())
        }
        VolumeDeleted::Removed => {
            tracing::info!(volume = %id, "volume removed");
            Ok(())
        }
        VolumeDeleted::NotFound => Err(VolumeError::NotFound { id: id.to_owned() }),
        VolumeDeleted::NotDeletable { capsule, .. } => Err(VolumeError::NotDeletable { capsule }),
    }
}

/// `POST /volumes/{id}/action`: no volume action is supported; the refusal, by `name` once
/// the volume is found.
pub async fn action(state: &AppState, ctx: &RequestContext, id: &str, name: String) -> VolumeError {
    match show(state, ctx, id, "volume:get").await {
        Ok(_) => VolumeError::UnsupportedAction { name },
        Err(e) => e,
    }
}

/// The stored metadata as an object of strings (anything else stored shows as text, a
/// non-object as `{}`), so a `GET` never fails on data.
pub fn metadata_of(stored: &Value) -> Map<String, Value> {
    match stored {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(_) => v.clone(),
                    other => Value::String(other.to_string()),
                };
                (k.clone(), v)
            })
            .collect(),
        _ => Map::new(),
    }
}

/// The metadata of volume `id`.
pub async fn metadata(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
) -> Result<Map<String, Value>, VolumeError> {
    let rec = show(state, ctx, id, "volume:get_volume_metadata").await?;
    Ok(metadata_of(&rec.volume.metadata))
}

/// The value of metadata `key` of volume `id`.
pub async fn metadata_item(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    key: &str,
) -> Result<Value, VolumeError> {
    metadata(state, ctx, id)
        .await?
        .remove(key)
        .ok_or_else(|| VolumeError::NoMetadataKey {
            id: id.to_owned(),
            key: key.to_owned(),
        })
}

/// The metadata of volume `id` after `change`, stored. Atomic: concurrent changes of one
/// volume's metadata serialize in the database, none is lost.
pub async fn change_metadata(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<(), VolumeError> + Send,
) -> Result<Map<String, Value>, VolumeError> {
    const ACTION: &str = "volume:update_volume_metadata";
    may_change(ctx, ACTION)?;
    // Found and visible first, so that refusals read as before (404 for another project's).
    let rec = show(state, ctx, id, ACTION).await?;
    let id = &rec.volume.id;
    let rec = state
        .db
        .change_volume_metadata(scope(ctx, ACTION)?, id, |stored| {
            let mut meta = metadata_of(stored);
            change(&mut meta).map(|()| Value::Object(meta))
        })
        .await??
        .ok_or_else(|| VolumeError::NotFound { id: id.to_owned() })?;
    Ok(metadata_of(&rec.volume.metadata))
}

/// Removes metadata `key` of volume `id`.
pub async fn delete_metadata_item(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    key: &str,
) -> Result<(), VolumeError> {
    let missing = VolumeError::NoMetadataKey {
        id: id.to_owned(),
        key: key.to_owned(),
    };
    change_metadata(state, ctx, id, |m| m.remove(key).map(|_| ()).ok_or(missing)).await?;
    Ok(())
}
