//! Zun's error JSON: how an [`ApiError`] is answered (status, `errors` body with Zun's codes,
//! the request id, and keystonemiddleware's body and challenge for a 401). An internal error is
//! logged with a correlation id that the answer names; its context is never shown.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::context::RequestId;
use crate::error::{ApiError, ErrorChain};

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } | ApiError::TooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Zun's `code`: `container.<kind>`, empty kind for HTTP-level and server errors.
    fn code(&self) -> String {
        let kind = match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Forbidden { .. } => "policy-not-authorized",
            ApiError::NotFound { code, .. } => code,
            ApiError::Conflict(_) => "conflict",
            ApiError::NotAcceptable(_) => "microversion-unsupported",
            _ => "",
        };
        format!("container.{kind}")
    }

    /// Renders the error for the request `request_id`.
    pub fn into_response_with(self, request_id: Option<&RequestId>) -> Response {
        let status = self.status();
        let rid = request_id.map(|r| r.0.as_str()).unwrap_or_default();
        if let ApiError::Unauthorized { www_authenticate } = &self {
            let body = json!({"error": {
                "code": 401, "title": "Unauthorized", "message": self.to_string(),
            }});
            let mut resp = (status, axum::Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(www_authenticate) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return resp;
        }
        let (title, detail) = match &self {
            ApiError::Internal(source) => {
                let correlation = uuid::Uuid::new_v4();
                tracing::error!(
                    request_id = rid,
                    %correlation,
                    error = %ErrorChain(source.as_ref()),
                    "internal error"
                );
                (
                    "Internal Server Error".to_owned(),
                    format!(
                        "Your request could not be handled because of a problem in the server. \
                         Error Correlation id is: {correlation}"
                    ),
                )
            }
            // HTTP-level errors carry the reason phrase as title, as webob's do.
            ApiError::MethodNotAllowed
            | ApiError::PayloadTooLarge { .. }
            | ApiError::TooLarge(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::NotAcceptable(_)
            | ApiError::ServiceUnavailable(_) => (
                status.canonical_reason().unwrap_or_default().to_owned(),
                self.to_string(),
            ),
            _ => (self.to_string(), self.to_string()),
        };
        let body = json!({"errors": [{
            "request_id": rid,
            "code": self.code(),
            "status": status.as_u16(),
            "title": title,
            "detail": detail,
            "links": [],
        }]});
        (status, axum::Json(body)).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Handlers run inside the request-id layer's task-local scope.
        let rid = crate::context::current_request_id();
        self.into_response_with(rid.as_ref())
    }
}
