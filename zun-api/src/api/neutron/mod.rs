//! The network API: the subset of Neutron's `/v2.0` that security groups need
//! (`security-groups`, `security-group-rules`), served on its own listener so the unchanged
//! `openstack security group ...` commands work on a cloud without Neutron. Same Keystone
//! authentication as the capsule API; a project sees and changes its own groups, an admin all.
//!
//! Routes here; handlers per resource (groups, rules, root), request parsing in [`parse`],
//! views in [`view`], Neutron's error shape in [`error`]. The operations are
//! `app::{secgroup, secgroup_rule}`.

pub mod error;
pub mod groups;
pub mod parse;
pub mod root;
pub mod rules;
pub mod view;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

pub use error::NetError;

use crate::http::auth::auth_layer;
use crate::http::context::request_id_layer;
use crate::http::path::strip_trailing_slashes;
use crate::state::AppState;

/// The network API's routes, with authentication and request ids.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/", get(root::versions))
        .route("/v2.0", get(root::resources))
        .route("/v2.0/extensions", get(root::extensions))
        .route(
            "/v2.0/security-groups",
            get(groups::list).post(groups::create),
        )
        .route(
            "/v2.0/security-groups/{id}",
            get(groups::show).put(groups::update).delete(groups::delete),
        )
        .route(
            "/v2.0/security-group-rules",
            get(rules::list).post(rules::create),
        )
        .route(
            "/v2.0/security-group-rules/{id}",
            get(rules::show).delete(rules::delete),
        )
        .fallback(root::not_found)
        .method_not_allowed_fallback(root::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), auth_layer))
        .layer(from_fn_with_state(
            (state.metrics.clone(), "network"),
            crate::http::metrics::track,
        ))
        .with_state(state);
    // Layers of a router run after its routing: the slash is stripped in front of it.
    Router::new()
        .fallback_service(api)
        .layer(from_fn(strip_trailing_slash))
        .layer(from_fn(request_id_layer))
}

/// `/v2.0/` and `/v2.0/security-groups/` mean the same as without the slash (`//` stays
/// unknown).
async fn strip_trailing_slash(mut req: Request, next: Next) -> Response {
    strip_trailing_slashes(&mut req, false);
    next.run(req).await
}

/// `201` or `200` with `body`.
fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Serves the network API on `listen` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
