//! The block-storage API: the subset of Cinder's v3 API that volumes need (volumes and their
//! metadata, limits, quota sets, the one volume type, availability zones), served on its own
//! listener so the unchanged `openstack volume ...` commands work on a cloud without Cinder.
//! Same Keystone authentication as the capsule API; a project sees and changes its own
//! volumes, an admin any (and lists all with `?all_tenants=1`). Microversions 3.0 to 3.70;
//! every route also answers without the project id in the URL, as Cinder's does.
//!
//! Routes here; the caller of a request in [`call`], microversions in [`version`], handlers
//! per resource, request parsing in [`parse`], views in [`view`], Cinder's error shape in
//! [`error`]. The operations are `app::{volume, quota, volume_type, zone}`.

pub mod call;
pub mod error;
pub mod parse;
pub mod quotas;
pub mod root;
pub mod types;
pub mod version;
pub mod view;
pub mod volumes;
pub mod zones;

use axum::extract::{Request, State};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

pub use call::Call;
pub use error::CinderError;
pub use version::{Version, VERSION_HEADER};

pub use crate::app::volume_type::{DEFAULT_TYPE_ID, DEFAULT_TYPE_NAME};
use crate::http::auth::auth_layer;
use crate::http::context::request_id_layer;
use crate::http::path::strip_trailing_slashes;
use crate::state::AppState;

/// Adds `route` to `r` both under `/v3/{project_id}` and under `/v3` (Cinder accepts URLs
/// without the project id; 3.67 only announced it).
fn scoped(r: Router<AppState>, route: &str, method: MethodRouter<AppState>) -> Router<AppState> {
    r.route(&format!("/v3/{{project_id}}{route}"), method.clone())
        .route(&format!("/v3{route}"), method)
}

/// The block-storage API's routes, with authentication, request ids and microversions.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/", get(root::versions))
        .route("/v3", get(root::versions_v3))
        .route("/v3/{project_id}", get(root::versions_in_project));
    let routes: [(&str, MethodRouter<AppState>); 13] = [
        ("/volumes", get(volumes::list).post(volumes::create)),
        ("/volumes/detail", get(volumes::list_detail)),
        ("/volumes/summary", get(volumes::summary)),
        (
            "/volumes/{id}",
            get(volumes::show)
                .put(volumes::update)
                .delete(volumes::delete),
        ),
        ("/volumes/{id}/action", post(volumes::action)),
        (
            "/volumes/{id}/metadata",
            get(volumes::metadata_show)
                .post(volumes::metadata_merge)
                .put(volumes::metadata_replace),
        ),
        (
            "/volumes/{id}/metadata/{key}",
            get(volumes::metadata_key_show)
                .put(volumes::metadata_key_set)
                .delete(volumes::metadata_key_delete),
        ),
        ("/limits", get(quotas::limits)),
        (
            "/os-quota-sets/{target}",
            get(quotas::show).put(quotas::change).delete(quotas::change),
        ),
        ("/os-quota-sets/{target}/defaults", get(quotas::defaults)),
        ("/types", get(types::list)),
        ("/types/{type_id}", get(types::show)),
        ("/os-availability-zone", get(zones::list)),
    ];
    for (route, method) in routes {
        r = scoped(r, route, method);
    }
    let api = r
        .fallback(root::not_found)
        .method_not_allowed_fallback(root::method_not_allowed)
        .layer(from_fn(version::microversion_layer))
        .layer(from_fn_with_state(state.clone(), auth))
        .layer(from_fn_with_state(
            (state.metrics.clone(), "volume"),
            crate::http::metrics::track,
        ))
        .with_state(state);
    // Layers of a router run after its routing: the slash is stripped in front of it.
    Router::new()
        .fallback_service(api)
        .layer(from_fn(strip_trailing_slash))
        .layer(from_fn(request_id_layer))
}

/// Authentication, except for the version documents (`/`, `/v3`), which clients read
/// before they have a token.
async fn auth(state: State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/v3" {
        return next.run(req).await;
    }
    auth_layer(state, req, next).await
}

/// `/v3/` and `/v3/<project>/volumes/` mean the same as without the slash (and `//`, `/`).
async fn strip_trailing_slash(mut req: Request, next: Next) -> Response {
    strip_trailing_slashes(&mut req, true);
    next.run(req).await
}

/// Serves the block-storage API on `listener` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
