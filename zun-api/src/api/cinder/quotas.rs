//! `/limits` and `/os-quota-sets` handlers: the configured quotas, with the project's usage.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::Value;

use super::call::Call;
use super::error::CinderError;
use super::parse;
use super::view;
use crate::app::quota as app;
use crate::state::AppState;

/// `GET /limits`: the caller's project's (an admin may name another with `?project_id=` from
/// 3.39; anyone else's `project_id` is ignored, as Cinder does).
pub async fn limits(
    State(state): State<AppState>,
    call: Call,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, CinderError> {
    let asked = parse::limits_query(query.as_deref(), call.version);
    let u = app::limits(&state, &call.ctx, asked.as_deref()).await?;
    Ok(Json(view::limits(u.limits, u.gigabytes, u.volumes)))
}

/// `GET /os-quota-sets/{project}[?usage=true]`: the configured quotas, with usage if asked.
pub async fn show(
    State(state): State<AppState>,
    call: Call,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, CinderError> {
    let target = call.param("target");
    let usage = parse::quota_usage(query.as_deref());
    let (limits, used) = app::show(&state, &call.ctx, target, usage).await?;
    Ok(Json(view::quota_set(target, limits, used)))
}

/// `GET /os-quota-sets/{project}/defaults`: the same quotas (every project has the
/// configured ones).
pub async fn defaults(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<Value>, CinderError> {
    let target = call.param("target");
    let limits = app::defaults(&state, &call.ctx, target)?;
    Ok(Json(view::quota_set(target, limits, None)))
}

/// `PUT` or `DELETE /os-quota-sets/{project}`: quotas come from the configuration.
pub async fn change(call: Call) -> CinderError {
    app::change(&call.ctx).into()
}
