//! `GET /`, `/v2.0` and `/v2.0/extensions` of the network API, and the answers for unknown
//! routes and methods.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::error::NetError;
use crate::http::context::base_url;
use crate::state::AppState;

/// `GET /`: the versions.
pub async fn versions(headers: HeaderMap, State(state): State<AppState>) -> Json<Value> {
    let base = base_url(state.config.network_api.public_url.as_deref(), &headers);
    Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": format!("{base}/v2.0/"), "rel": "self"}],
    }]}))
}

/// `GET /v2.0`: the resources served.
pub async fn resources(headers: HeaderMap, State(state): State<AppState>) -> Json<Value> {
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

/// `GET /v2.0/extensions`: the extensions whose behaviour is served.
pub async fn extensions() -> Json<Value> {
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

/// Any path this service does not serve.
pub async fn not_found() -> NetError {
    NetError::new(
        StatusCode::NOT_FOUND,
        "HTTPNotFound",
        "The resource could not be found.",
    )
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> NetError {
    NetError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTPMethodNotAllowed",
        "The method is not allowed for the requested URL.",
    )
}
