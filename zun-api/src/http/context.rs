//! The request id layer every API runs outermost, the extractor that builds a
//! [`RequestContext`] from a request, and the base URL of links.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use capsule_types::microversion::ApiVersion;
use tracing::Instrument;

use crate::context::{with_request_id, Identity, RequestContext, RequestId};
use crate::error::ApiError;
use crate::state::AppState;

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// Outermost layer: gives every request an id, runs the rest inside its scope, sets the header.
pub async fn request_id_layer(mut req: Request, next: Next) -> Response {
    let id = RequestId::new();
    req.extensions_mut().insert(id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id.0,
        method = %req.method(),
        path = %req.uri().path(),
        project = tracing::field::Empty,
    );
    let mut resp = with_request_id(id.clone(), next.run(req).instrument(span.clone())).await;
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    span.in_scope(|| tracing::info!(status = resp.status().as_u16(), "handled"));
    resp
}

impl<S> FromRequestParts<S> for RequestContext
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let identity = parts
            .extensions
            .get::<Arc<Identity>>()
            .cloned()
            .ok_or_else(|| state.auth.unauthorized())?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_default();
        let version = parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(ApiVersion::MIN);
        let creds = identity.credentials();
        if let Some(project) = &creds.project_id {
            // The request's span (the request id layer's) now knows whose it is.
            tracing::Span::current().record("project", project.as_str());
        }
        let is_admin = state.policy.is_admin(&creds);
        let creds = Arc::new(policy::Credentials { is_admin, ..creds });
        Ok(Self {
            request_id,
            identity,
            is_admin,
            version,
            base_url: base_url(state.config.api.public_url.as_deref(), &parts.headers),
            creds,
        })
    }
}

/// The base URL of links: the configured public URL, else `http://<Host>`.
pub fn base_url(public_url: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(u) = public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}
