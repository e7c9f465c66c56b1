//! The microversion layer of Zun's `/v1`: negotiates `OpenStack-API-Version`, answers 406
//! outside the range, and sets the version headers on every response, as Zun's
//! `Controller._route` does.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use capsule_types::microversion::{negotiate, ApiVersion, VersionError, HEADER, LEGACY_HEADER};

use crate::error::ApiError;

/// Negotiates the version and decorates the response.
pub async fn version_layer(mut req: Request, next: Next) -> Response {
    let negotiated = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned())
        };
        negotiate(header(HEADER).as_deref(), header(LEGACY_HEADER).as_deref())
    };
    let version = match negotiated {
        Ok(v) => v,
        // Zun raises these two before it sets any version header.
        Err(e @ (VersionError::InvalidServiceType | VersionError::InvalidValue)) => {
            return ApiError::NotAcceptable(e.to_string()).into_response();
        }
        Err(e) => {
            let mut resp = ApiError::NotAcceptable(e.to_string()).into_response();
            set_headers(&mut resp, None);
            return resp;
        }
    };
    req.extensions_mut().insert(version);
    let mut resp = next.run(req).await;
    set_headers(&mut resp, Some(version));
    resp
}

fn set_headers(resp: &mut Response, version: Option<ApiVersion>) {
    let h = resp.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put(
        "openstack-api-minimum-version",
        format!("container {}", ApiVersion::MIN),
    );
    put(
        "openstack-api-maximum-version",
        format!("container {}", ApiVersion::MAX),
    );
    if let Some(v) = version {
        put("openstack-api-version", format!("container {v}"));
    }
    put("vary", HEADER.to_owned());
}
