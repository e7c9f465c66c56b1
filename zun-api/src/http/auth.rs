//! The authentication layer every API runs inside its request-id layer: public routes pass,
//! everything else needs an identity from the state's
//! [`Authenticator`](crate::auth::Authenticator), which it puts in the request's extensions
//! for the [`RequestContext`](crate::context::RequestContext) extractor; a refusal is answered
//! at once.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// Whether `path` (already normalized) is served without a token, as keystonemiddleware's
/// `acl_public_routes = /, /v1` in Zun, plus the health check and the exec streams (a
/// websocket client sends no token: a stream's grant, checked by its compute host, is its
/// authority, as Zun's websocket proxy trusts its token).
pub fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/v1" | "/.json" | "/v1.json" | "/healthcheck") || is_exec_stream(path)
}

/// `/v1/containers/<one segment>/exec_stream`.
fn is_exec_stream(path: &str) -> bool {
    path.strip_prefix("/v1/containers/")
        .and_then(|rest| rest.strip_suffix("/exec_stream"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The authentication layer.
pub async fn auth_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    match state.auth.authenticate(req.headers()).await {
        Ok(identity) => {
            tracing::Span::current().record("user_id", identity.user_id.as_str());
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(e) => state.auth.error_response(e),
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn only_discovery_health_and_exec_streams_are_public() {
        for p in ["/", "/v1", "/healthcheck", "/v1/containers/abc/exec_stream"] {
            assert!(is_public(p), "{p}");
        }
        for p in [
            "/v1/capsules",
            "/v1/containers/abc/execute",
            "/v1/containers//exec_stream",
            "/v1/containers/a/b/exec_stream",
            "/v1/containers/abc/exec_stream/x",
            "/v2/containers/abc/exec_stream",
        ] {
            assert!(!is_public(p), "{p}");
        }
    }
}
