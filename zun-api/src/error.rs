//! The one external error type of the API, [`ApiError`] (rendered as Zun's error JSON by
//! `http::error`), and [`ErrorChain`] for logging an error with its sources. Part of the
//! crate's ground: it imports no other module of it.

use db::volumes::VolumeRefused;

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
    /// 413 for what is over a size limit other than the body's (an archive, a command).
    #[error("{0}")]
    TooLarge(String),
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
            db::DbError::VolumeRefused(r) => r.into(),
            db::DbError::Connect { .. } => {
                tracing::error!(error = %ErrorChain(&e), "database unavailable");
                ApiError::ServiceUnavailable("The database is temporarily unavailable.".into())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<VolumeRefused> for ApiError {
    /// The capsule API's answer to a volume the database refused: 400 (Zun's
    /// `VolumeCreateFailed`/`VolumeInUse` are both 400), saying why.
    fn from(r: VolumeRefused) -> Self {
        let code = match r {
            VolumeRefused::NotAttachable { .. } => "volume-in-use",
            _ => "volume-create-failed",
        };
        ApiError::BadRequest {
            code,
            message: r.to_string(),
        }
    }
}
