//! `/v3/{project_id}/volumes` handlers: list (summary, detail, summary totals), show, create,
//! update, delete, actions (all refused by name) and the metadata sub-resource.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::call::Call;
use super::error::CinderError;
use super::parse;
use super::view;
use crate::app::volume as app;
use crate::state::AppState;

async fn list_page(
    state: &AppState,
    call: &Call,
    query: Option<&str>,
    detailed: bool,
) -> Result<Json<Value>, CinderError> {
    let p = parse::list_query(query, call.ctx.is_admin, call.version)?;
    let page = app::list(state, &call.ctx, &p.list).await?;
    let next = |marker: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &p.rest {
            q.append_pair(k, v);
        }
        q.append_pair("marker", marker);
        let path = if detailed {
            "/volumes/detail"
        } else {
            "/volumes"
        };
        format!("{}?{}", call.url(path), q.finish())
    };
    Ok(Json(view::volume_list(
        &page,
        detailed,
        p.limit,
        next,
        &call.viewer(),
    )))
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
    let all_tenants = parse::summary_query(q.as_deref())?;
    let recs = app::summary(&state, &call.ctx, all_tenants).await?;
    Ok(Json(view::volume_summary(&recs, call.version)))
}

/// `GET /volumes/{id}`.
pub async fn show(State(state): State<AppState>, call: Call) -> Result<Json<Value>, CinderError> {
    let rec = app::show(&state, &call.ctx, call.param("id"), "volume:get").await?;
    Ok(Json(view::volume(&rec, &call.viewer())))
}

/// `POST /volumes`: 202 with the volume, `creating` on the chosen host (which is told at
/// once), or `error` when no host can take it.
pub async fn create(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CinderError> {
    let limit = state.config.api.max_body_bytes;
    let req = parse::json_body(&headers, &body, limit).and_then(|b| parse::parse_create(&b));
    let rec = app::create(&state, &call.ctx, req).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(view::volume(&rec, &call.viewer())),
    )
        .into_response())
}

/// `PUT /volumes/{id}`: name, description and metadata.
pub async fn update(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, CinderError> {
    let limit = state.config.api.max_body_bytes;
    let req = parse::json_body(&headers, &body, limit)
        .and_then(|b| parse::parse_update(&b, call.version));
    let rec = app::update(&state, &call.ctx, call.param("id"), req).await?;
    Ok(Json(view::volume(&rec, &call.viewer())))
}

/// `DELETE /volumes/{id}[?cascade=&force=]`: 202; the host removes the volume's data, then the
/// volume is gone. Only `available` and `error` volumes that no capsule uses.
pub async fn delete(
    State(state): State<AppState>,
    call: Call,
    RawQuery(q): RawQuery,
) -> Result<Response, CinderError> {
    parse::delete_query(q.as_deref())?;
    app::delete(&state, &call.ctx, call.param("id")).await?;
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
    let body = parse::json_body(&headers, &body, state.config.api.max_body_bytes)?;
    let name = parse::action_name(&body)?;
    Err(app::action(&state, &call.ctx, call.param("id"), name)
        .await
        .into())
}

/// `GET /volumes/{id}/metadata`.
pub async fn metadata_show(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<Value>, CinderError> {
    let meta = app::metadata(&state, &call.ctx, call.param("id")).await?;
    Ok(Json(json!({ "metadata": meta })))
}

/// `POST /volumes/{id}/metadata`: adds or changes the keys given.
pub async fn metadata_merge(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, CinderError> {
    let limit = state.config.api.max_body_bytes;
    let new = parse::metadata_body(&headers, &body, limit, "metadata")?;
    let meta = app::change_metadata(&state, &call.ctx, call.param("id"), |m| {
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
    let limit = state.config.api.max_body_bytes;
    let new = parse::metadata_body(&headers, &body, limit, "metadata")?;
    let meta = app::change_metadata(&state, &call.ctx, call.param("id"), |m| {
        *m = new;
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "metadata": meta })))
}

/// `GET /volumes/{id}/metadata/{key}`.
pub async fn metadata_key_show(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<Value>, CinderError> {
    let key = call.param("key");
    let value = app::metadata_item(&state, &call.ctx, call.param("id"), key).await?;
    Ok(Json(json!({"meta": {key: value}})))
}

/// `PUT /volumes/{id}/metadata/{key}` with `{"meta": {key: value}}`.
pub async fn metadata_key_set(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, CinderError> {
    let limit = state.config.api.max_body_bytes;
    let new = parse::metadata_body(&headers, &body, limit, "meta")?;
    let key = call.param("key").to_owned();
    let value = parse::metadata_item(new, &key)?;
    let v = value.clone();
    app::change_metadata(&state, &call.ctx, call.param("id"), |m| {
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
    app::delete_metadata_item(&state, &call.ctx, call.param("id"), call.param("key")).await?;
    Ok(StatusCode::OK.into_response())
}
