//! `/v3/{project_id}/volumes`: list (summary, detail, summary totals), show, create, update,
//! delete, actions (all refused by name) and the metadata sub-resource. List queries are
//! checked strictly: a filter, sort or paging parameter this service does not implement is a
//! 400, never silently ignored.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use db::volumes::{NewVolume, VolumeDeleted, VolumeQuery, VolumeRecord, VolumeScope};
use serde_json::{json, Map, Value};

use super::error::CinderError;
use super::view::{self, parse_create, parse_metadata, parse_update, wrapped};
use super::view::{DEFAULT_TYPE_ID, DEFAULT_TYPE_NAME};
use super::{json_body, parse_bool, zone_names, Call};
use crate::compute::Placement;
use crate::http::query::pairs;
use crate::state::AppState;

/// Most volumes in one page (Cinder's `osapi_max_limit`).
pub const MAX_LIMIT: u64 = 1000;
/// Cinder's refusal to delete a volume in the wrong state.
pub const NOT_DELETABLE: &str = "Invalid volume: Volume status must be available or error or \
    error_restoring or error_extending or error_managing and must not be migrating, attached, \
    belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots \
    after volume transfer.";

/// A parsed list query.
#[derive(Debug, Default)]
struct ListParams {
    query: VolumeQuery,
    /// Page size in force (asked, or the maximum).
    limit: u64,
    all_tenants: bool,
    project: Option<String>,
    with_count: bool,
    /// The query without `marker`, for the next link.
    rest: Vec<(String, String)>,
}

/// Whether `sort` (Cinder's `key[:dir],...`) asks for the one order served: newest first.
fn default_sort(sort: &str) -> bool {
    let keys: Vec<(&str, &str)> = sort
        .split(',')
        .map(|k| {
            let (key, dir) = k.split_once(':').unwrap_or((k, "desc"));
            (key.trim(), dir.trim())
        })
        .collect();
    matches!(
        keys.as_slice(),
        [("created_at", "desc")] | [("created_at", "desc"), ("id", "desc")]
    )
}

fn parse_list(query: Option<&str>, call: &Call) -> Result<ListParams, CinderError> {
    let mut p = ListParams {
        limit: MAX_LIMIT,
        ..Default::default()
    };
    let mut invalid = Vec::new();
    let all = pairs(query);
    let has = |k: &str| all.iter().any(|(key, _)| key == k);
    if has("sort") && (has("sort_key") || has("sort_dir")) {
        return Err(CinderError::bad_request(
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with \
             the 'sort' parameter.",
        ));
    }
    let unsorted = || {
        CinderError::bad_request(
            "Volumes are listed newest first only: the sort may only be created_at:desc.",
        )
    };
    for (k, v) in all {
        match k.as_str() {
            "marker" => {
                p.query.marker = Some(v);
                continue;
            }
            "name" => p.query.name = Some(v.clone()),
            "status" => p.query.status = Some(v.clone()),
            "limit" => {
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| CinderError::bad_request("limit param must be an integer"))?;
                let n = u64::try_from(n)
                    .map_err(|_| CinderError::bad_request("limit param must be positive"))?;
                p.limit = n.min(MAX_LIMIT);
            }
            "offset" => match v.trim().parse::<i64>() {
                Ok(0) => {}
                _ => {
                    return Err(CinderError::bad_request(
                        "offset is not supported: page with marker and limit.",
                    ))
                }
            },
            "sort" if default_sort(&v) => {}
            "sort_key" if v == "created_at" => {}
            "sort_dir" if v == "desc" => {}
            "sort" | "sort_key" | "sort_dir" => return Err(unsorted()),
            "all_tenants" => p.all_tenants = parse_bool(&k, &v)?,
            "project_id" if call.ctx.is_admin => p.project = Some(v.clone()),
            "with_count" if call.version.at_least(45) => p.with_count = parse_bool(&k, &v)?,
            _ => invalid.push(k.clone()),
        }
        p.rest.push((k, v));
    }
    if !invalid.is_empty() {
        return Err(CinderError::bad_request(format!(
            "Invalid filters {} are found in query options.",
            invalid.join(",")
        )));
    }
    p.query.limit = Some(p.limit);
    Ok(p)
}

/// The volumes a list shows: an admin's own project's, everyone's with `all_tenants`, or one
/// project's with `project_id`; anyone else's own (their `all_tenants` is ignored, as
/// Cinder does).
fn list_scope<'a>(call: &'a Call, p: &'a ListParams) -> Result<VolumeScope<'a>, CinderError> {
    const ACTION: &str = "volume:get_all";
    if call.ctx.is_admin {
        if let Some(project) = &p.project {
            return Ok(VolumeScope::Project(project));
        }
        if p.all_tenants {
            return Ok(VolumeScope::All);
        }
    }
    call.project(ACTION).map(VolumeScope::Project)
}

async fn list_page(
    state: &AppState,
    call: &Call,
    query: Option<&str>,
    detail: bool,
) -> Result<Json<Value>, CinderError> {
    let p = parse_list(query, call)?;
    let scope = list_scope(call, &p)?;
    let recs = match state.db.volumes(scope, &p.query).await {
        Err(db::DbError::MarkerNotFound { marker }) => {
            return Err(CinderError::volume_not_found(&marker))
        }
        other => other?,
    };
    let viewer = call.viewer();
    let items: Vec<Value> = recs
        .iter()
        .map(|r| {
            if detail {
                view::detail(r, r.volume.status_reason.as_deref(), &viewer)
            } else {
                view::summary(r, &viewer)
            }
        })
        .collect();
    let mut out = Map::new();
    let full = p.limit > 0 && u64::try_from(recs.len()).unwrap_or(u64::MAX) == p.limit;
    if let (true, Some(last)) = (full, recs.last()) {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &p.rest {
            q.append_pair(k, v);
        }
        q.append_pair("marker", &last.volume.id);
        let path = if detail {
            "/volumes/detail"
        } else {
            "/volumes"
        };
        let href = format!("{}?{}", call.url(path), q.finish());
        out.insert(
            "volumes_links".into(),
            json!([{"href": href, "rel": "next"}]),
        );
    }
    out.insert("volumes".into(), Value::Array(items));
    if p.with_count {
        let all = VolumeQuery {
            name: p.query.name.clone(),
            status: p.query.status.clone(),
            ..Default::default()
        };
        out.insert(
            "count".into(),
            json!(state.db.volumes(scope, &all).await?.len()),
        );
    }
    Ok(Json(Value::Object(out)))
}

/// `GET /volumes`: id, name and links of each volume.
pub async fn list(
    State(state): State<AppState>,
    call: Call,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, CinderError> {
    list_page(&state, &call, q.as_deref(), false).await
}

/// `GET /volumes/detail`: each volume in full.
pub async fn list_detail(
    State(state): State<AppState>,
    call: Call,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, CinderError> {
    list_page(&state, &call, q.as_deref(), true).await
}

/// `GET /volumes/summary` (3.12): how many volumes and GiB the caller sees (`all_tenants`
/// for an admin), with their distinct metadata from 3.36.
pub async fn summary(
    State(state): State<AppState>,
    call: Call,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, CinderError> {
    if !call.version.at_least(12) {
        return Err(CinderError::not_found(format!(
            "API version {} is not supported on this method.",
            call.version
        )));
    }
    let mut p = ListParams::default();
    for (k, v) in pairs(q.as_deref()) {
        match k.as_str() {
            "all_tenants" => p.all_tenants = parse_bool(&k, &v)?,
            _ => {
                return Err(CinderError::bad_request(format!(
                    "Invalid filters {k} are found in query options."
                )))
            }
        }
    }
    let scope = list_scope(&call, &p)?;
    let recs = state.db.volumes(scope, &VolumeQuery::default()).await?;
    let total = recs
        .iter()
        .fold(0i64, |t, r| t.saturating_add(r.volume.size_gib));
    let mut s = json!({"total_count": recs.len(), "total_size": total});
    if call.version.at_least(36) {
        let mut meta: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        for r in &recs {
            for (k, v) in view::metadata(&r.volume.metadata) {
                let vals = meta.entry(k).or_default();
                if !vals.contains(&v) {
                    vals.push(v);
                }
            }
        }
        s["metadata"] = json!(meta);
    }
    Ok(Json(json!({ "volume-summary": s })))
}

/// The volume the path names, if the caller may see it.
async fn find(state: &AppState, call: &Call, action: &str) -> Result<VolumeRecord, CinderError> {
    let id = call.param("id");
    state
        .db
        .volume(call.scope(action)?, id)
        .await?
        .ok_or_else(|| CinderError::volume_not_found(id))
}

fn volume_body(rec: &VolumeRecord, call: &Call) -> Value {
    json!({"volume": view::detail(rec, rec.volume.status_reason.as_deref(), &call.viewer())})
}

/// `GET /volumes/{id}`.
pub async fn show(State(state): State<AppState>, call: Call) -> Result<Json<Value>, CinderError> {
    let rec = find(&state, &call, "volume:get").await?;
    Ok(Json(volume_body(&rec, &call)))
}

/// `POST /volumes`: 202 with the volume, `creating` on the chosen host (which is told at
/// once), or `error` when no host can take it.
pub async fn create(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CinderError> {
    const ACTION: &str = "volume:create";
    call.may_change(ACTION)?;
    let project = call.project(ACTION)?.to_owned();
    let body = json_body(&headers, &body, state.config.api.max_body_bytes)?;
    let req = parse_create(&body)?;
    if let Some(t) = req.volume_type.as_deref() {
        if t != DEFAULT_TYPE_NAME && t != DEFAULT_TYPE_ID {
            return Err(CinderError::not_found(format!(
                "Volume type with name {t} could not be found."
            )));
        }
    }
    let zone = req
        .availability_zone
        .clone()
        .unwrap_or_else(|| state.config.scheduler.default_availability_zone.clone());
    if !zone_names(&state).await?.contains(&zone) {
        return Err(CinderError::bad_request(format!(
            "Availability zone '{zone}' is invalid."
        )));
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
            let entry = state
                .compute
                .create_volume(h, id, size, &call.ctx.request_id.0)
                .map_err(CinderError::internal)?;
            Some(entry)
        }
        None => None,
    };
    let new = NewVolume {
        id: id.to_string(),
        project_id: project.clone(),
        user_id: call.ctx.identity.user_id.clone(),
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
    let rec = VolumeRecord {
        volume: row,
        mounts: Vec::new(),
    };
    Ok((StatusCode::ACCEPTED, Json(volume_body(&rec, &call))).into_response())
}

/// `PUT /volumes/{id}`: name, description and metadata.
pub async fn update(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, CinderError> {
    const ACTION: &str = "volume:update";
    call.may_change(ACTION)?;
    let body = json_body(&headers, &body, state.config.api.max_body_bytes)?;
    let req = parse_update(&body, call.version)?;
    let id = call.param("id");
    let rec = state
        .db
        .update_volume(
            call.scope(ACTION)?,
            id,
            req.name,
            req.description,
            req.metadata.map(Value::Object),
        )
        .await?
        .ok_or_else(|| CinderError::volume_not_found(id))?;
    Ok(Json(volume_body(&rec, &call)))
}

/// `DELETE /volumes/{id}[?cascade=&force=]`: 202; the host removes the volume's data, then the
/// volume is gone. Only `available` and `error` volumes that no capsule uses.
pub async fn delete(
    State(state): State<AppState>,
    call: Call,
    RawQuery(q): RawQuery,
) -> Result<Response, CinderError> {
    const ACTION: &str = "volume:delete";
    for (k, v) in pairs(q.as_deref()) {
        // No snapshots exist, so cascading changes nothing.
        if k == "cascade" {
            parse_bool(&k, &v)?;
        }
        if k == "force" && parse_bool(&k, &v)? {
            return Err(CinderError::bad_request(
                "Force-deleting a volume is not supported by this service: delete it when it \
                 is available or in error, after the capsule using it is deleted.",
            ));
        }
    }
    call.may_change(ACTION)?;
    let id = call.param("id");
    match state
        .db
        .request_volume_delete(call.scope(ACTION)?, id)
        .await?
    {
        VolumeDeleted::Deleting(ids) => {
            tracing::info!(volume = %id, "volume deleting");
            state.publish_now(&ids).await;
        }
        VolumeDeleted::Removed => tracing::info!(volume = %id, "volume removed"),
        VolumeDeleted::NotFound => return Err(CinderError::volume_not_found(id)),
        VolumeDeleted::NotDeletable { capsule, .. } => {
            let mut msg = NOT_DELETABLE.to_owned();
            if let Some(c) = capsule {
                msg.push_str(&format!(" It is attached to capsule {c}."));
            }
            return Err(CinderError::bad_request(msg));
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /volumes/{id}/action`: no volume action is supported (extend, attach, bootable,
/// read-only, ...); a 400 naming it, after the volume is found.
pub async fn action(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CinderError> {
    let body = json_body(&headers, &body, state.config.api.max_body_bytes)?;
    let name = match &body {
        Value::Object(m) if m.len() == 1 => m.keys().next().cloned().unwrap_or_default(),
        _ => return Err(CinderError::bad_request("Malformed request body")),
    };
    find(&state, &call, "volume:get").await?;
    Err(CinderError::bad_request(format!(
        "Volume action {name} is not supported by this service."
    )))
}

/// The volume's metadata after `change`, stored.
async fn change_metadata(
    state: &AppState,
    call: &Call,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<(), CinderError>,
) -> Result<Map<String, Value>, CinderError> {
    const ACTION: &str = "volume:update_volume_metadata";
    call.may_change(ACTION)?;
    let rec = find(state, call, ACTION).await?;
    let mut meta = view::metadata(&rec.volume.metadata);
    change(&mut meta)?;
    let id = &rec.volume.id;
    let rec = state
        .db
        .update_volume(
            call.scope(ACTION)?,
            id,
            None,
            None,
            Some(Value::Object(meta)),
        )
        .await?
        .ok_or_else(|| CinderError::volume_not_found(id))?;
    Ok(view::metadata(&rec.volume.metadata))
}

/// `GET /volumes/{id}/metadata`.
pub async fn metadata_show(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<Value>, CinderError> {
    let rec = find(&state, &call, "volume:get_volume_metadata").await?;
    Ok(Json(
        json!({"metadata": view::metadata(&rec.volume.metadata)}),
    ))
}

async fn metadata_body(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    key: &str,
) -> Result<Map<String, Value>, CinderError> {
    let body = json_body(headers, body, state.config.api.max_body_bytes)?;
    parse_metadata(&Value::Object(wrapped(&body, key, false)?.clone()))
}

/// `POST /volumes/{id}/metadata`: adds or changes the keys given.
pub async fn metadata_merge(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, CinderError> {
    let new = metadata_body(&state, &headers, &body, "metadata").await?;
    let meta = change_metadata(&state, &call, |m| {
        m.extend(new);
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "metadata": meta })))
}

/// `PUT /volumes/{id}/metadata`: replaces all the metadata.
pub async fn metadata_replace(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, CinderError> {
    let new = metadata_body(&state, &headers, &body, "metadata").await?;
    let meta = change_metadata(&state, &call, |m| {
        *m = new;
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "metadata": meta })))
}

fn no_key(call: &Call) -> CinderError {
    CinderError::not_found(format!(
        "Volume {} has no metadata with key {}.",
        call.param("id"),
        call.param("key")
    ))
}

/// `GET /volumes/{id}/metadata/{key}`.
pub async fn metadata_key_show(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<Value>, CinderError> {
    let rec = find(&state, &call, "volume:get_volume_metadata").await?;
    let key = call.param("key");
    let value = view::metadata(&rec.volume.metadata)
        .remove(key)
        .ok_or_else(|| no_key(&call))?;
    Ok(Json(json!({"meta": {key: value}})))
}

/// `PUT /volumes/{id}/metadata/{key}` with `{"meta": {key: value}}`.
pub async fn metadata_key_set(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, CinderError> {
    let new = metadata_body(&state, &headers, &body, "meta").await?;
    let key = call.param("key").to_owned();
    if new.len() > 1 {
        return Err(CinderError::bad_request(
            "Request body contains too many items.",
        ));
    }
    let Some(value) = new.get(&key).cloned() else {
        return Err(CinderError::bad_request("Request body and URI mismatch"));
    };
    let v = value.clone();
    change_metadata(&state, &call, |m| {
        m.insert(key.clone(), v);
        Ok(())
    })
    .await?;
    Ok(Json(json!({"meta": {key: value}})))
}

/// `DELETE /volumes/{id}/metadata/{key}`.
pub async fn metadata_key_delete(
    State(state): State<AppState>,
    call: Call,
) -> Result<Response, CinderError> {
    let key = call.param("key").to_owned();
    let missing = no_key(&call);
    change_metadata(&state, &call, |m| m.remove(&key).map(|_| ()).ok_or(missing)).await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_is_newest_first_only() {
        assert!(default_sort("created_at"));
        assert!(default_sort("created_at:desc"));
        assert!(default_sort("created_at:desc,id:desc"));
        assert!(!default_sort("created_at:asc"));
        assert!(!default_sort("name"));
    }
}
