//! The one external error type of the API and its rendering as Zun's error JSON. Internal
//! context is logged with a correlation id and never shown to the caller.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::context::RequestId;

/// An error answered to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; `code` is Zun's error code suffix
    /// (`schema-validation-error`, `invalid-value`, ...).
    #[error("{message}")]
    BadRequest {
        /// Zun error code suffix.
        code: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
    /// 401 from the authentication layer, in keystonemiddleware's shape.
    #[error("The request you have made requires authentication.")]
    Unauthorized {
        /// Value of `WWW-Authenticate`.
        www_authenticate: String,
    },
    /// 403: policy refused.
    #[error("Policy doesn't allow {rule} to be performed.")]
    Forbidden {
        /// The rule that refused.
        rule: String,
    },
    /// 404; `code` is Zun's error code suffix (`container-not-found`, ...).
    #[error("{message}")]
    NotFound {
        /// Zun error code suffix.
        code: &'static str,
        /// What was not found.
        message: String,
    },
    /// 405 on a known path.
    #[error("The method is not allowed for the requested URL.")]
    MethodNotAllowed,
    /// 406: microversion problems.
    #[error("{0}")]
    NotAcceptable(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 413: body larger than `[api] max_body_bytes`.
    #[error("Request body is larger than the limit of {limit} bytes.")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// 415: wrong `Content-Type`.
    #[error("The server could not comply with the request since the content type {0:?} is not supported; use application/json.")]
    UnsupportedMediaType(String),
    /// 503: a service we depend on (Keystone, the database) is unavailable.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 500: anything else. The source is logged, not shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 400 with Zun's schema-validation code.
    pub fn schema(message: impl Into<String>) -> Self {
        Self::BadRequest {
            code: "schema-validation-error",
            message: message.into(),
        }
    }

    /// A 400 with Zun's invalid-value code (bad query parameters).
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::BadRequest {
            code: "invalid-value",
            message: message.into(),
        }
    }

    /// Zun's 404 for a capsule (it reports a container).
    pub fn capsule_not_found(ident: &str) -> Self {
        Self::NotFound {
            code: "container-not-found",
            message: format!("Container {ident} could not be found."),
        }
    }

    /// A 500 wrapping an internal error.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

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
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
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

/// Displays an error with all its sources: `outer: inner: innermost`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

impl From<policy::PolicyError> for ApiError {
    fn from(e: policy::PolicyError) -> Self {
        let policy::PolicyError::NotAuthorized { rule } = e;
        ApiError::Forbidden { rule }
    }
}

impl From<db::DbError> for ApiError {
    fn from(e: db::DbError) -> Self {
        match e {
            db::DbError::MarkerNotFound { marker } => ApiError::capsule_not_found(&marker),
            db::DbError::VolumeRefused(r) => crate::app::volumes::refused(r),
            db::DbError::Connect { .. } => {
                tracing::error!(error = %ErrorChain(&e), "database unavailable");
                ApiError::ServiceUnavailable("The database is temporarily unavailable.".into())
            }
            other => ApiError::internal(other),
        }
    }
}
