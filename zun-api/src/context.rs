//! Per-request context: the request id (a task-local for error bodies), the caller's identity,
//! the negotiated microversion and the base URL for links.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use capsule_types::microversion::ApiVersion;
use tracing::Instrument;

use crate::auth::Identity;
use crate::error::ApiError;
use crate::state::AppState;

/// The request id, `req-<uuid4>`, echoed in `x-openstack-request-id` and in error bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<RequestId> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// Outermost layer: gives every request an id, runs the rest inside its scope, sets the header.
pub async fn request_id_layer(mut req: Request, next: Next) -> Response {
    let id = RequestId(format!("req-{}", uuid::Uuid::new_v4()));
    req.extensions_mut().insert(id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id.0,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let mut resp = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    span.in_scope(|| tracing::info!(status = resp.status().as_u16(), "handled"));
    resp
}

/// Everything a handler needs to know about its caller.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// Request id.
    pub request_id: RequestId,
    /// Who is calling.
    pub identity: Arc<Identity>,
    /// `context_is_admin` for this caller, computed once.
    pub is_admin: bool,
    /// Negotiated microversion.
    pub version: ApiVersion,
    /// Base URL for links (`http://host:port[/prefix]`, no trailing slash).
    pub base_url: String,
    /// Policy credentials of the caller.
    pub creds: Arc<policy::Credentials>,
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
            .unwrap_or_else(|| RequestId(format!("req-{}", uuid::Uuid::new_v4())));
        let version = parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(ApiVersion::MIN);
        let creds = identity.credentials();
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
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}
