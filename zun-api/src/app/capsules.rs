//! Capsule operations: create (validate, name, schedule, store), show, list, delete.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::http::{header, HeaderMap};
use capsule_types::template::{parse_create_body, ContainerSpec, RestartPolicy, VolumeSource};
use capsule_types::CapsuleStatus;
use db::{CapsuleRecord, NewCapsule, NewContainer, NewVolumeMapping, Scope};
use http_body_util::{BodyExt, Limited};
use policy::Target;
use serde_json::{json, Value};

pub use super::query::ListQuery;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// Zun's reason for a capsule no host can take.
pub const NO_VALID_HOST: &str = "There are not enough hosts available.";

/// Reads a JSON request body: `Content-Type: application/json` (parameters ignored) or 415, at
/// most `limit` bytes or 413, valid JSON or 400.
pub async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Value, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(ctype.to_owned()));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::schema("The request body could not be read.")
            }
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::schema(format!("The request body is not valid JSON: {e}")))
}

/// Whether `ident` is a UUID (Zun's `is_uuid_like`); gives its canonical form.
fn as_uuid(ident: &str) -> Option<String> {
    uuid::Uuid::try_parse(ident)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// The scope a caller sees without asking for all projects.
fn own_scope(ctx: &RequestContext) -> Scope {
    match &ctx.identity.project_id {
        Some(p) => Scope::Project(p.clone()),
        None => Scope::User(ctx.identity.user_id.clone()),
    }
}

fn capsule_target(rec: &CapsuleRecord) -> Target {
    Target::new()
        .with("project_id", rec.capsule.project_id.clone())
        .with("user_id", rec.capsule.user_id.clone())
}

/// Looks a capsule up by uuid or name as Zun does: 404 when missing, 409 when a name is
/// ambiguous. Admins (`capsule:get_one_all_projects`) see every project.
async fn lookup(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    all: bool,
) -> Result<CapsuleRecord, ApiError> {
    let scope = if all
        || state.policy.check(
            "capsule:get_one_all_projects",
            &Target::owned_by(&ctx.creds),
            &ctx.creds,
        ) {
        Scope::All
    } else {
        own_scope(ctx)
    };
    if let Some(uuid) = as_uuid(ident) {
        return state
            .db
            .capsule_by_uuid(&scope, &uuid)
            .await?
            .ok_or_else(|| ApiError::capsule_not_found(ident));
    }
    let mut found = state.db.capsules_by_name(&scope, ident).await?;
    match found.len() {
        0 => Err(ApiError::capsule_not_found(ident)),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::Conflict(
            "Multiple containers exist with same name. Please use the container uuid instead."
                .into(),
        )),
    }
}

/// `GET /v1/capsules/{ident}`.
pub async fn show(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
) -> Result<CapsuleRecord, ApiError> {
    let rec = lookup(state, ctx, ident, false).await?;
    state
        .policy
        .enforce("capsule:get", &capsule_target(&rec), &ctx.creds)?;
    Ok(rec)
}

/// One page of a list, and the query of the next page when this one is full.
#[derive(Debug)]
pub struct Page {
    /// The capsules.
    pub records: Vec<CapsuleRecord>,
    /// The query string of the next page (`sort_key=…&sort_dir=…&limit=…&marker=…`).
    pub next_query: Option<String>,
}

/// The scope `GET /v1/capsules` lists for this caller, after the policy checks.
pub fn list_scope(
    state: &AppState,
    ctx: &RequestContext,
    q: &ListQuery,
) -> Result<Scope, ApiError> {
    let own = Target::owned_by(&ctx.creds);
    state.policy.enforce("capsule:get_all", &own, &ctx.creds)?;
    if q.all_projects {
        // Zun silently ignores a non-admin's all_projects; we refuse it.
        state
            .policy
            .enforce("capsule:get_all_all_projects", &own, &ctx.creds)?;
        return Ok(Scope::All);
    }
    Ok(own_scope(ctx))
}

/// One page of `scope`.
pub async fn list(state: &AppState, scope: &Scope, q: &ListQuery) -> Result<Page, ApiError> {
    let records = state.db.list_capsules(scope, &q.params).await?;
    let next_query = (records.len() as u64 == q.params.limit && q.params.limit > 0)
        .then(|| records.last())
        .flatten()
        .map(|last| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            s.append_pair("sort_key", q.params.sort_key.as_str())
                .append_pair("sort_dir", q.params.sort_dir.as_str())
                .append_pair("limit", &q.params.limit.to_string())
                .append_pair("marker", &last.capsule.uuid);
            if q.all_projects {
                // Zun drops it, so its next page silently shrinks to the admin's own project.
                s.append_pair("all_projects", "True");
            }
            s.finish()
        });
    Ok(Page {
        records,
        next_query,
    })
}

/// `all_projects` of a query string.
pub fn all_projects_flag(query: Option<&str>) -> Result<bool, ApiError> {
    super::query::all_projects(&super::query::pairs(query))
}

/// `DELETE /v1/capsules/{ident}`.
pub async fn delete(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    all_projects: bool,
) -> Result<(), ApiError> {
    if all_projects {
        state.policy.enforce(
            "capsule:delete_all_projects",
            &Target::owned_by(&ctx.creds),
            &ctx.creds,
        )?;
    }
    let rec = lookup(state, ctx, ident, all_projects).await?;
    state
        .policy
        .enforce("capsule:delete", &capsule_target(&rec), &ctx.creds)?;
    tracing::info!(capsule = %rec.capsule.uuid, "deleting capsule");
    // No compute host holds it (none was ever chosen), so the rows are all there is.
    state.db.delete_capsule(rec.capsule.id).await?;
    Ok(())
}

/// `POST /v1/capsules`: validates the template, then stores the capsule with its containers.
pub async fn create(
    state: &AppState,
    ctx: &RequestContext,
    mut body: Value,
    query: Option<&str>,
) -> Result<CapsuleRecord, ApiError> {
    state
        .policy
        .enforce("capsule:create", &Target::owned_by(&ctx.creds), &ctx.creds)?;
    let Some(project_id) = ctx.identity.project_id.clone() else {
        // A capsule belongs to a project; a domain- or system-scoped token has none.
        return Err(ApiError::Forbidden {
            rule: "capsule:create".into(),
        });
    };
    // Pecan merges query parameters into a JSON object body; the schema then refuses them.
    if let Value::Object(map) = &mut body {
        for (k, v) in super::query::pairs(query) {
            map.insert(k, Value::String(v));
        }
    }
    let mut template = parse_create_body(&body, &state.limits)
        .map_err(|errors| ApiError::schema(errors.to_string()))?;

    // Zun drops imagePullPolicy for callers the policy does not allow to choose it.
    let may_pull_policy = state.policy.check(
        "container:create:image_pull_policy",
        &Target::owned_by(&ctx.creds),
        &ctx.creds,
    );
    let uuid = uuid::Uuid::new_v4().to_string();
    let name_base = template.name.clone().unwrap_or_else(|| uuid.clone());
    let mut taken: HashSet<String> = template
        .all_containers()
        .filter_map(|c| c.name.clone())
        .collect();
    let auto_remove: HashMap<String, bool> = template
        .volumes
        .iter()
        .map(|v| {
            let remove = matches!(
                v.source,
                VolumeSource::New {
                    auto_remove: true,
                    ..
                }
            );
            (v.name.clone(), remove)
        })
        .collect();
    let mut containers = Vec::new();
    let mut mappings = Vec::new();
    let capsule_policy = template.restart_policy;
    let init_count = template.init_containers.len();
    for (i, spec) in template
        .init_containers
        .iter_mut()
        .chain(template.containers.iter_mut())
        .enumerate()
    {
        let is_init = i < init_count;
        let position = if is_init { i } else { i - init_count };
        if !may_pull_policy {
            spec.image_pull_policy = None;
        }
        if spec.name.is_none() {
            spec.name = Some(super::names::generate(&name_base, &mut taken));
        }
        let c = new_container(spec, is_init, position, capsule_policy);
        for m in &spec.volume_mounts {
            let auto_remove = auto_remove.get(m.name.as_str()).copied().unwrap_or(false);
            mappings.push(NewVolumeMapping {
                container_uuid: c.uuid.clone(),
                volume_name: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only,
                auto_remove,
            });
        }
        containers.push(c);
    }

    // No compute host can take capsules yet: Zun's answer is 202 with the capsule in Error.
    let (status, reason) = (CapsuleStatus::Error, Some(NO_VALID_HOST.to_owned()));
    let (policy_name, retries) = zun_restart_policy(capsule_policy, false);
    let new = NewCapsule {
        uuid: uuid.clone(),
        name: template.name.clone(),
        project_id,
        user_id: ctx.identity.user_id.clone(),
        status: status.as_str().into(),
        status_reason: reason,
        host: None,
        availability_zone: template.availability_zone.clone(),
        cpu: template.total_cpu(),
        memory: i64::try_from(template.total_memory_mib()).unwrap_or(i64::MAX),
        restart_policy: policy_name.into(),
        restart_max_retries: retries,
        labels: json!(template.labels),
        annotations: template.annotations.clone(),
        template: serde_json::to_value(&template).map_err(ApiError::internal)?,
        security_groups: template.security_groups.clone(),
        containers,
        volume_mappings: mappings,
    };
    let rec = state.db.create_capsule(new).await?;
    tracing::info!(capsule = %uuid, status = %rec.capsule.status, "capsule created");
    Ok(rec)
}

/// Zun's restart policy `(Name, MaximumRetryCount)` of a container. Init containers of an
/// `Always` capsule retry on failure up to 10 times, as in Zun (without Zun's bug of passing
/// that policy on to the application containers).
fn zun_restart_policy(p: RestartPolicy, init: bool) -> (&'static str, i32) {
    match (p, init) {
        (RestartPolicy::Always, true) => ("on-failure", 10),
        (p, _) => (p.zun_name(), 0),
    }
}

fn new_container(
    spec: &ContainerSpec,
    is_init: bool,
    position: usize,
    policy: RestartPolicy,
) -> NewContainer {
    let (restart_policy, restart_max_retries) = zun_restart_policy(policy, is_init);
    NewContainer {
        uuid: uuid::Uuid::new_v4().to_string(),
        is_init,
        position: i32::try_from(position).unwrap_or(i32::MAX),
        name: spec.name.clone().unwrap_or_default(),
        image: spec.image.clone(),
        command: json!(spec.zun_command()),
        environment: json!(spec.env),
        workdir: spec.work_dir.clone(),
        ports: json!(spec
            .ports
            .iter()
            .map(|p| p.container_port)
            .collect::<Vec<_>>()),
        image_pull_policy: spec
            .image_pull_policy
            .map(|p| p.as_zun_str())
            .unwrap_or("always")
            .into(),
        cpu: spec.cpu,
        memory: spec.memory_mib.and_then(|m| i64::try_from(m).ok()),
        status: CapsuleStatus::Creating.as_str().into(),
        restart_policy: restart_policy.into(),
        restart_max_retries,
        interactive: spec.stdin,
        tty: spec.tty,
    }
}
