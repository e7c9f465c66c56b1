//! The network API: the subset of Neutron's `/v2.0` that security groups need
//! (`security-groups`, `security-group-rules`), served on its own listener so the unchanged
//! `openstack security group ...` commands work on a cloud without Neutron. Same Keystone
//! authentication as the capsule API; a project sees and changes its own groups, an admin all.

mod error;
mod groups;
mod rules;
mod view;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use db::secgroups::GroupScope;
use serde_json::{json, Value};

pub use error::NetError;

use crate::context::RequestContext;
use crate::http::auth::auth_layer;
use crate::http::body::{json_bytes, JsonBodyError};
use crate::http::context::{base_url, request_id_layer};
use crate::http::path::strip_trailing_slashes;
use crate::state::AppState;

/// The network API's routes, with authentication and request ids.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/", get(versions))
        .route("/v2.0", get(resources))
        .route("/v2.0/extensions", get(extensions))
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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), auth_layer))
        .with_state(state);
    // Layers of a router run after its routing: the slash is stripped in front of it.
    Router::new()
        .fallback_service(api)
        .layer(from_fn(strip_trailing_slash))
        .layer(from_fn(request_id_layer))
}

/// `/v2.0/` and `/v2.0/security-groups/` mean the same as without the slash (`//` stays
/// unknown).
async fn strip_trailing_slash(mut req: Request, next: axum::middleware::Next) -> Response {
    strip_trailing_slashes(&mut req, false);
    next.run(req).await
}

async fn versions(
    headers: HeaderMap,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<Value> {
    let base = base_url(state.config.network_api.public_url.as_deref(), &headers);
    Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": format!("{base}/v2.0/"), "rel": "self"}],
    }]}))
}

async fn resources(
    headers: HeaderMap,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<Value> {
    let base = base_url(state.config.network_api.public_url.as_deref(), &headers);
    let res = |name: &str, collection: &str| {
        json!({"name": name, "collection": collection,
               "links": [{"href": format!("{base}/v2.0/{collection}"), "rel": "self"}]})
    };
    Json(json!({"resources": [
        res("security_group", "security-groups"),
        res("security_group_rule", "security-group-rules"),
    ]}))
}

async fn extensions() -> Json<Value> {
    let ext = |alias: &str, name: &str, description: &str| {
        json!({"alias": alias, "name": name, "description": description,
               "updated": "2024-01-01T00:00:00-00:00", "links": []})
    };
    Json(json!({"extensions": [
        ext("security-group", "security-group", "The security groups extension."),
        ext("project-id", "project-id", "Extension that indicates that project_id is enabled."),
        ext("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
        ext("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
        ext("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
        ext("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"),
        ext("security-groups-default-rules", "Security group default rules template", "Configure set of security group rules used as default security group rules"),
    ]}))
}

async fn not_found() -> NetError {
    NetError::new(
        StatusCode::NOT_FOUND,
        "HTTPNotFound",
        "The resource could not be found.",
    )
}

async fn method_not_allowed() -> NetError {
    NetError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTPMethodNotAllowed",
        "The method is not allowed for the requested URL.",
    )
}

/// What the caller may see: an admin every project's groups, anyone else their project's.
fn scope(ctx: &RequestContext) -> Result<GroupScope<'_>, NetError> {
    if ctx.is_admin {
        return Ok(GroupScope::All);
    }
    ctx.identity
        .project_id
        .as_deref()
        .map(GroupScope::Project)
        .ok_or_else(|| NetError::forbidden("get_security_group"))
}

/// Changes need the `member` role (Neutron's `PROJECT_MEMBER`) or admin; `reader`s only read.
fn may_change(ctx: &RequestContext, rule: &str) -> Result<(), NetError> {
    let member = ctx.identity.roles.iter().any(|r| r == "member");
    if ctx.is_admin || (member && ctx.identity.project_id.is_some()) {
        Ok(())
    } else {
        Err(NetError::forbidden(rule))
    }
}

/// Makes the caller's project's `default` group if it has none (Neutron does so on the
/// project's first security-group request).
async fn ensure_default(state: &AppState, ctx: &RequestContext) -> Result<(), NetError> {
    if let Some(p) = &ctx.identity.project_id {
        state.db.ensure_default_security_group(p).await?;
    }
    Ok(())
}

/// A JSON request body, or Neutron's 400/413/415.
fn json_body(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<Value, NetError> {
    let accepted = |ct: &str| ct.starts_with("application/json");
    json_bytes(headers, body, limit, accepted).map_err(|e| match e {
        JsonBodyError::TooLarge => NetError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "HTTPRequestEntityTooLarge",
            format!("Request body is larger than the limit of {limit} bytes."),
        ),
        JsonBodyError::UnsupportedType(ct) => NetError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "HTTPUnsupportedMediaType",
            format!("Unsupported Content-Type {ct:?}; use application/json."),
        ),
        JsonBodyError::Malformed(e) => {
            NetError::bad_request(format!("Malformed request body: {e}"))
        }
    })
}

/// The fields asked for with `?fields=` on a show.
fn fields(query: Option<&str>) -> Vec<String> {
    crate::http::query::pairs(query)
        .into_iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v)
        .collect()
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
