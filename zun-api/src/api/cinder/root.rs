//! `GET /`, `/v3` and `/v3/{project_id}` (the version documents) and the answers for unknown
//! routes and methods of the block-storage API.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::call::Call;
use super::error::CinderError;
use super::version::Version;
use crate::http::context::base_url;
use crate::state::AppState;

/// The v3 version document; `base` is the service's base URL.
fn version_doc(base: &str) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": Version::MAX.to_string(),
        "min_version": Version::MIN.to_string(),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{base}/v3/")},
        ],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.volume+json;version=3",
        }],
    })
}

/// `GET /`: the versions, `300 Multiple Choices` as Cinder answers.
pub async fn versions(headers: HeaderMap, State(state): State<AppState>) -> Response {
    let base = base_url(state.config.volume_api.public_url.as_deref(), &headers);
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({ "versions": [version_doc(&base)] })),
    )
        .into_response()
}

/// `GET /v3`: the v3 version, in a `versions` list as Cinder answers.
pub async fn versions_v3(headers: HeaderMap, State(state): State<AppState>) -> Json<Value> {
    let base = base_url(state.config.volume_api.public_url.as_deref(), &headers);
    Json(json!({ "versions": [version_doc(&base)] }))
}

/// `GET /v3/{project_id}`: the same, for clients whose endpoint is the catalog's URL with the
/// project id (an endpoint override) and that discover the version there.
pub async fn versions_in_project(
    call: Call,
    headers: HeaderMap,
    state: State<AppState>,
) -> Json<Value> {
    let _ = call;
    versions_v3(headers, state).await
}

/// Any path this service does not serve.
pub async fn not_found() -> CinderError {
    CinderError::not_found(
        "The resource could not be found. (This block-storage service offers volumes and their \
         metadata, limits, quota sets, volume types and availability zones; no snapshots, \
         backups, groups, transfers or attachments.)",
    )
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> CinderError {
    CinderError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for the requested URL.",
    )
}
