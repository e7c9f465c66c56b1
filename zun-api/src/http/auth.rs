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
/// `acl_public_routes = /, /v1` in Zun, plus the health check.
pub fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/v1" | "/.json" | "/v1.json" | "/healthcheck")
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
