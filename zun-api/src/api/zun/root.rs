//! `GET /`, `GET /v1`, `/healthcheck` and the answers for unknown routes and methods.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use capsule_types::microversion::ApiVersion;
use serde_json::{json, Value};

use crate::app::health as app;
use crate::error::ApiError;
use crate::http::context::base_url;
use crate::state::AppState;

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v1",
        "links": [{"href": format!("{base}/v1/"), "rel": "self"}],
        "status": "CURRENT",
        "max_version": ApiVersion::MAX.to_string(),
        "min_version": ApiVersion::MIN.to_string(),
    })
}

/// `GET /`: version discovery (python-zunclient reads `min_version`/`max_version` here).
pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(state.config.api.public_url.as_deref(), &headers);
    Json(json!({
        "name": "OpenStack Zun API",
        "description": "Zun is an OpenStack project which aims to provide containers service.",
        "versions": [version_doc(&base)],
        "default_version": version_doc(&base),
    }))
}

/// `GET /v1`: the resources of version 1.
pub async fn v1(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(state.config.api.public_url.as_deref(), &headers);
    let mut doc = json!({
        "id": "v1",
        "media_types": [{"base": "application/json",
                         "type": "application/vnd.openstack.zun.v1+json"}],
        "links": [
            {"href": format!("{base}/v1/"), "rel": "self"},
            {"href": "https://docs.openstack.org/developer/zun/dev/api-spec-v1.html",
             "rel": "describedby", "type": "text/html"},
        ],
    });
    for res in [
        "services",
        "containers",
        "images",
        "networks",
        "hosts",
        "capsules",
        "availability_zones",
        "quotas",
        "quota_classes",
        "registries",
    ] {
        doc[res] = json!([
            {"href": format!("{base}/v1/{res}/"), "rel": "self"},
            {"href": format!("{base}/{res}/"), "rel": "bookmark"},
        ]);
    }
    Json(doc)
}

/// `GET /healthcheck`: answers `OK` while the database answers.
pub async fn healthcheck(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    app::check(&state).await?;
    Ok("OK")
}

/// Any path we do not serve.
pub async fn not_found() -> impl IntoResponse {
    ApiError::NotFound {
        code: "",
        message: "The resource could not be found.".into(),
    }
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> impl IntoResponse {
    ApiError::MethodNotAllowed
}
