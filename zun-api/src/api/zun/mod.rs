//! Zun's `/v1` API: its route table, and the path normalization Zun's pecan routing implies
//! (repeated and trailing slashes are ignored, and a path without the `v1` prefix means
//! `/v1/...`). Handlers per resource, request parsing in [`parse`], views in [`view`]; errors
//! are [`ApiError`](crate::error::ApiError), rendered by `http::error`.

pub mod archives;
pub mod capsules;
pub mod container_actions;
pub mod containers;
pub mod exec;
pub mod hosts;
pub mod parse;
pub mod root;
pub mod services;
pub mod view;

use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use tower::util::{MapRequest, MapRequestLayer};
use tower::Layer;

use crate::http::auth::auth_layer;
use crate::http::context::request_id_layer;
use crate::http::microversion::version_layer;
use crate::state::AppState;

/// The canonical form of a request path: `//` collapsed, trailing `/` dropped, `/v1` prefixed
/// to paths that do not start with a version (Zun's `RootController._route`).
pub fn normalize_path(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.first() {
        None => "/".to_owned(),
        Some(&"v1" | &"v1.json" | &".json" | &"healthcheck") => format!("/{}", segs.join("/")),
        Some(_) => format!("/v1/{}", segs.join("/")),
    }
}

fn normalize(mut req: Request) -> Request {
    let path = normalize_path(req.uri().path());
    if path != req.uri().path() {
        let pq = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(p) = pq.parse() {
            parts.path_and_query = Some(p);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

fn with_405(m: MethodRouter<AppState>) -> MethodRouter<AppState> {
    m.fallback(root::method_not_allowed)
}

/// The routes with authentication, microversions and request ids (no path normalization:
/// see [`service`]).
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1", with_405(get(root::v1)))
        .route("/v1.json", with_405(get(root::v1)))
        .route(
            "/v1/capsules",
            with_405(get(capsules::list).post(capsules::create)),
        )
        .route(
            "/v1/capsules/{ident}",
            with_405(get(capsules::show).delete(capsules::delete)),
        )
        .route(
            "/v1/services",
            with_405(get(services::list).delete(services::delete)),
        )
        .route("/v1/services/enable", with_405(put(services::enable)))
        .route("/v1/services/disable", with_405(put(services::disable)))
        .route(
            "/v1/services/force_down",
            with_405(put(services::force_down)),
        )
        .route("/v1/capsules/{ident}/stop", with_405(post(capsules::stop)))
        .route(
            "/v1/capsules/{ident}/start",
            with_405(post(capsules::start)),
        )
        .route(
            "/v1/capsules/{ident}/restart",
            with_405(post(capsules::restart)),
        )
        .route(
            "/v1/containers/{ident}/logs",
            with_405(get(containers::logs)),
        )
        .merge(container_routes())
        .route("/v1/hosts", with_405(get(hosts::list)))
        .route("/v1/hosts/{ident}", with_405(get(hosts::show)))
        .layer(from_fn(version_layer));
    Router::new()
        .route("/", with_405(get(root::root)))
        .route("/.json", with_405(get(root::root)))
        .route("/healthcheck", with_405(get(root::healthcheck)))
        .merge(v1)
        .fallback(root::not_found)
        .layer(from_fn_with_state(state.clone(), auth_layer))
        .layer(from_fn_with_state(
            (state.metrics.clone(), "container"),
            crate::http::metrics::track,
        ))
        .layer(from_fn(request_id_layer))
        .with_state(state)
}

/// `/v1/containers/{ident}/...`: what Zun serves on a container, for capsule containers.
fn container_routes() -> Router<AppState> {
    let c = |action: &str| format!("/v1/containers/{{ident}}/{action}");
    Router::new()
        .route(&c("stop"), with_405(post(containers::stop)))
        .route(&c("start"), with_405(post(containers::start)))
        .route(&c("reboot"), with_405(post(containers::reboot)))
        .route(&c("kill"), with_405(post(containers::kill)))
        .route(&c("pause"), with_405(post(containers::pause)))
        .route(&c("unpause"), with_405(post(containers::unpause)))
        .route(&c("top"), with_405(get(containers::top)))
        .route(&c("stats"), with_405(get(containers::stats)))
        .route(&c("execute"), with_405(post(exec::execute)))
        .route(&c("execute_resize"), with_405(post(exec::execute_resize)))
        .route(&c("exec_stream"), with_405(get(exec::exec_stream)))
        .route(&c("get_archive"), with_405(get(archives::get_archive)))
        .route(&c("put_archive"), with_405(post(archives::put_archive)))
        .route(
            &c("container_actions"),
            with_405(get(container_actions::list)),
        )
        .route(
            &c("container_actions/{request_id}"),
            with_405(get(container_actions::show)),
        )
}

/// The service to serve: [`router`] behind path normalization, which must run before routing
/// and so wraps the router from outside.
pub type Service = MapRequest<Router, fn(Request) -> Request>;

/// Builds the [`Service`].
pub fn service(state: AppState) -> Service {
    MapRequestLayer::new(normalize as fn(Request) -> Request).layer(router(state))
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    #[test]
    fn zun_routing() {
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/v1/"), "/v1");
        assert_eq!(normalize_path("/capsules/"), "/v1/capsules");
        assert_eq!(normalize_path("/v1/capsules//abc"), "/v1/capsules/abc");
        assert_eq!(normalize_path("//v1//capsules/"), "/v1/capsules");
        assert_eq!(normalize_path("/healthcheck"), "/healthcheck");
        assert_eq!(normalize_path("/v1.json"), "/v1.json");
    }
}
