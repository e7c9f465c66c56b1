//! Request bodies: read with a size limit (413), checked for `application/json` (415) and
//! parsed (400), with Zun's messages.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use crate::error::ApiError;

/// Reads at most `limit` bytes of `body` (413 beyond; a declared length over it is refused
/// before reading).
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::schema("The request body could not be read.")
            }
        })?
        .to_bytes())
}

/// Parses `bytes` as JSON sent with `Content-Type: application/json` (parameters such as the
/// charset ignored; another type is 415).
pub fn parse_json(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(ctype.to_owned()));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::schema(format!("The request body is not valid JSON: {e}")))
}

/// A JSON request body: [`read_limited`], then [`parse_json`].
pub async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Value, ApiError> {
    // The content type is checked first, so a wrong one is 415 whatever the body.
    parse_json(headers, b"null")?;
    let bytes = read_limited(headers, body, limit).await?;
    parse_json(headers, &bytes)
}
