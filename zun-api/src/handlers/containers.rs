//! `/v1/containers/{ident}/...` handlers for capsule containers: logs.

use axum::extract::{Path, RawQuery, State};
use axum::Json;

use crate::app::logs as app;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/containers/{ident}/logs`: the text as a JSON string, as Zun answers.
pub async fn logs(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<String>, ApiError> {
    Ok(Json(
        app::logs(&state, &ctx, &ident, query.as_deref()).await?,
    ))
}
