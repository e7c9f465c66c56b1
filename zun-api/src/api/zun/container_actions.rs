//! `GET /v1/containers/{ident}/container_actions` and `.../container_actions/{request_id}`:
//! a capsule container's history, as python-zunclient's `action-list` and `action-show`
//! read it.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use super::view::container_action::{action_detail_json, actions_json};
use crate::app::container::history as app;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/containers/{ident}/container_actions`: `{"containerActions": [...]}`, newest first.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let actions = app::list(&state, &ctx, &ident).await?;
    Ok(Json(actions_json(&actions)))
}

/// `GET /v1/containers/{ident}/container_actions/{request_id}`: the action with its `events`.
pub async fn show(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((ident, request_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let detail = app::show(&state, &ctx, &ident, &request_id).await?;
    Ok(Json(action_detail_json(&detail)))
}
