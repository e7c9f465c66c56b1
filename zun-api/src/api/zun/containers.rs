//! `/v1/containers/{ident}/...` handlers for capsule containers: logs, the lifecycle actions
//! (stop, start, reboot, kill, pause, unpause: 202, as Zun), `top` and `stats`. Exec is in
//! [`super::exec`], archives in [`super::archives`], the history in
//! [`super::container_actions`].

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use capsule_types::rpc::ContainerAction;
use serde_json::Value;

use super::parse::container as parse;
use super::parse::logs::log_query;
use super::view::container::{stats_json, top_json};
use crate::app::container::{calls, lifecycle};
use crate::app::logs as app;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::http::body::read_optional_json;
use crate::state::AppState;

/// `GET /v1/containers/{ident}/logs`: the text as a JSON string, as Zun answers.
pub async fn logs(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<String>, ApiError> {
    let query = log_query(query.as_deref());
    Ok(Json(app::logs(&state, &ctx, &ident, query).await?))
}

async fn act(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    action: ContainerAction,
) -> Result<StatusCode, ApiError> {
    lifecycle::act(state, ctx, ident, action).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /v1/containers/{ident}/stop?timeout=`.
pub async fn stop(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let timeout_seconds = parse::timeout(query.as_deref())?;
    act(
        &state,
        &ctx,
        &ident,
        ContainerAction::Stop { timeout_seconds },
    )
    .await
}

/// `POST /v1/containers/{ident}/start`.
pub async fn start(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<StatusCode, ApiError> {
    act(&state, &ctx, &ident, ContainerAction::Start).await
}

/// `POST /v1/containers/{ident}/reboot?timeout=`.
pub async fn reboot(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let timeout_seconds = parse::timeout(query.as_deref())?;
    let action = ContainerAction::Restart { timeout_seconds };
    act(&state, &ctx, &ident, action).await
}

/// `POST /v1/containers/{ident}/kill?signal=` (or `{"signal": ...}`).
pub async fn kill(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = read_optional_json(&headers, body, state.config.api.max_body_bytes).await?;
    let action = parse::kill(query.as_deref(), body.as_ref())?;
    act(&state, &ctx, &ident, action).await
}

/// `POST /v1/containers/{ident}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<StatusCode, ApiError> {
    act(&state, &ctx, &ident, ContainerAction::Pause).await
}

/// `POST /v1/containers/{ident}/unpause`.
pub async fn unpause(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<StatusCode, ApiError> {
    act(&state, &ctx, &ident, ContainerAction::Unpause).await
}

/// `GET /v1/containers/{ident}/top?ps_args=`.
pub async fn top(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let ps_args = parse::ps_args(query.as_deref())?;
    let (titles, processes) = calls::top(&state, &ctx, &ident, ps_args).await?;
    Ok(Json(top_json(&titles, &processes)))
}

/// `GET /v1/containers/{ident}/stats`.
pub async fn stats(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (name, stats) = calls::stats(&state, &ctx, &ident).await?;
    Ok(Json(stats_json(&name, &stats)))
}
