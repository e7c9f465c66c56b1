//! `/v1/hosts` handlers (microversion >= 1.4): list and show.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::Value;

use crate::app::hosts as app;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::hosts::{host_json, host_list_json};

/// `GET /v1/hosts`.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let page = app::list(&state, &ctx, query.as_deref()).await?;
    Ok(Json(host_list_json(&page, &ctx.base_url)))
}

/// `GET /v1/hosts/{uuid_or_hostname}`.
pub async fn show(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let node = app::show(&state, &ctx, &ident).await?;
    Ok(Json(host_json(&node, &ctx.base_url)))
}
