//! `GET /v1/containers/{ident}/get_archive?path=` and `POST .../put_archive?path=` (body
//! `{"data": <base64 tar>}`), as Zun serves them from microversion 1.25 (base64 data; before,
//! Zun's raw data could not carry binary archives, so older versions get 406).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use capsule_types::microversion::ApiVersion;
use serde_json::Value;

use super::parse::archive::{path, put_body_limit, put_data};
use super::view::container::archive_json;
use crate::app::container::calls;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::http::body::{parse_json, read_limited};
use crate::state::AppState;

/// The first microversion with base64 archives.
const BASE64_ARCHIVES: ApiVersion = ApiVersion::new(1, 25);

fn base64_version(ctx: &RequestContext) -> Result<(), ApiError> {
    if ctx.version < BASE64_ARCHIVES {
        return Err(ApiError::NotAcceptable(format!(
            "Archives need microversion {BASE64_ARCHIVES} or later (base64 data); \
             {} was asked for.",
            ctx.version
        )));
    }
    Ok(())
}

/// `GET /v1/containers/{ident}/get_archive?path=`.
pub async fn get_archive(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    base64_version(&ctx)?;
    let path = path(query.as_deref())?;
    let (data, stat) = calls::get_archive(&state, &ctx, &ident, path).await?;
    Ok(Json(archive_json(&data, &stat)))
}

/// `POST /v1/containers/{ident}/put_archive?path=`, with a body limit of its own that fits
/// an archive of `[api] archive_max_bytes` in base64.
pub async fn put_archive(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    base64_version(&ctx)?;
    let path = path(query.as_deref())?;
    let max = state.config.api.archive_max_bytes;
    // The content type first, so a wrong one is 415 whatever the body.
    parse_json(&headers, b"null")?;
    let bytes = read_limited(&headers, body, put_body_limit(max)).await?;
    let data = put_data(parse_json(&headers, &bytes)?, max)?;
    drop(bytes);
    calls::put_archive(&state, &ctx, &ident, path, data).await?;
    Ok(Json(Value::Null))
}
