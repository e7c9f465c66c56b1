//! HTTP plumbing the three APIs share, written once: the request-id and authentication layers,
//! the [`RequestContext`](crate::context::RequestContext) extractor and link base URLs, request
//! bodies and query strings, trailing slashes, Zun's microversion negotiation and the rendering
//! of [`ApiError`](crate::error::ApiError) as Zun's error JSON, and the websocket [`relay`]
//! of interactive exec, and the [`metrics`] of every request. Each API's own routes, request
//! parsing, views and error shape are under `api/`.

pub mod auth;
pub mod body;
pub mod context;
pub mod error;
pub mod metrics;
pub mod microversion;
pub mod path;
pub mod query;
pub mod relay;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A response with `status` and a JSON `body` already serialized.
pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}
