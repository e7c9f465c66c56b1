//! Request bodies, for all three APIs: the `Content-Type` as sent, JSON read whole within the
//! size limit (the Cinder and Neutron APIs answer each failure in their own shape), and Zun's
//! streaming read with its messages (413 beyond `[api] max_body_bytes`, 415 for another type
//! than `application/json`, 400 for what does not parse).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use crate::error::ApiError;

/// The request's `Content-Type` as sent; empty when there is none (or it is not text).
pub fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Why a body read whole was refused.
#[derive(Debug)]
pub enum JsonBodyError {
    /// Longer than the limit.
    TooLarge,
    /// A `Content-Type` the API does not take (as sent).
    UnsupportedType(String),
    /// Not JSON.
    Malformed(serde_json::Error),
}

/// A JSON body read whole: at most `limit` bytes, a `Content-Type` that `accepted` allows when
/// one is sent, and valid JSON; checked in that order.
pub fn json_bytes(
    headers: &HeaderMap,
    body: &[u8],
    limit: usize,
    accepted: impl Fn(&str) -> bool,
) -> Result<Value, JsonBodyError> {
    if body.len() > limit {
        return Err(JsonBodyError::TooLarge);
    }
    let ct = content_type(headers);
    if !ct.is_empty() && !accepted(ct) {
        return Err(JsonBodyError::UnsupportedType(ct.to_owned()));
    }
    serde_json::from_slice(body).map_err(JsonBodyError::Malformed)
}

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
    let ctype = content_type(headers);
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

/// A JSON body that may be absent (Zun's action routes take their parameters from the query,
/// or from a body pecan merges in): `None` when empty, else [`parse_json`].
pub async fn read_optional_json(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Option<Value>, ApiError> {
    let bytes = read_limited(headers, body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    parse_json(headers, &bytes).map(Some)
}
