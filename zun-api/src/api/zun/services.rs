//! `/v1/services` handlers: list, delete, and the `enable`, `disable` and `force_down`
//! actions.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

use super::parse::services::{read_params, service_change, service_key};
use super::view::service::{outcome_json, services_json};
use crate::app::service::{self as app, Action};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/services`.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    let list = app::list(&state, &ctx).await?;
    Ok(Json(services_json(
        &list,
        &state.config.scheduler.default_availability_zone,
    )))
}

/// `DELETE /v1/services?host=&binary=`: 200 with a JSON `null` body, as Zun (pecan) answers.
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    app::delete(&state, &ctx, service_key(query.as_deref())).await?;
    Ok(Json(Value::Null))
}

async fn act(
    state: AppState,
    ctx: RequestContext,
    action: Action,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let limit = state.config.api.max_body_bytes;
    let params = read_params(query.as_deref(), &headers, body, limit).await?;
    let outcome = app::update(&state, &ctx, action, service_change(action, &params)).await?;
    Ok(Json(outcome_json(&outcome)))
}

/// `PUT /v1/services/enable`.
pub async fn enable(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    act(state, ctx, Action::Enable, query, headers, body).await
}

/// `PUT /v1/services/disable`.
pub async fn disable(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    act(state, ctx, Action::Disable, query, headers, body).await
}

/// `PUT /v1/services/force_down`.
pub async fn force_down(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    act(state, ctx, Action::ForceDown, query, headers, body).await
}
