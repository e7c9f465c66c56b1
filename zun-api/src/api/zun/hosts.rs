//! `/v1/hosts` handlers (microversion >= 1.4): list and show.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use capsule_types::microversion::ApiVersion;
use serde_json::Value;

use super::parse;
use super::view::host::{host_json, host_list_json};
use crate::app::host as app;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// The first microversion with the hosts API.
pub const HOSTS_MIN_VERSION: ApiVersion = ApiVersion::new(1, 4);

/// Zun answers a versioned route below its version with 406 (before any policy check).
fn check_version(ctx: &RequestContext) -> Result<(), ApiError> {
    if ctx.version < HOSTS_MIN_VERSION {
        return Err(ApiError::NotAcceptable(format!(
            "Version {} was requested but the requested API is not supported for this version.",
            ctx.version
        )));
    }
    Ok(())
}

/// `GET /v1/hosts`.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    check_version(&ctx)?;
    let params = parse::host_list(query.as_deref(), state.config.api.max_limit);
    let page = app::list(&state, &ctx, params).await?;
    Ok(Json(host_list_json(&page, &ctx.base_url)))
}

/// `GET /v1/hosts/{uuid_or_hostname}`.
pub async fn show(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_version(&ctx)?;
    let node = app::show(&state, &ctx, &ident).await?;
    Ok(Json(host_json(&node, &ctx.base_url)))
}
