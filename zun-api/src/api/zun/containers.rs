//! `/v1/containers/{ident}/...` handlers for capsule containers: logs.

use axum::extract::{Path, RawQuery, State};
use axum::Json;

use super::parse::logs::log_query;
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
    let query = log_query(query.as_deref());
    Ok(Json(app::logs(&state, &ctx, &ident, query).await?))
}
