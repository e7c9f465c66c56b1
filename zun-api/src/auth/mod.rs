//! Authentication: who is calling. Keystone tokens (validated against Keystone with a service
//! user and cached), or `noauth` for tests. The layer answers 401 itself, in
//! keystonemiddleware's shape, for every route but the public ones.

mod keystone;
pub use keystone::KeystoneError;
mod noauth;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

pub use keystone::KeystoneAuth;

use crate::config::{AuthStrategy, Config};
use crate::error::ApiError;
use crate::state::AppState;

/// How a caller was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// A Keystone token.
    Keystone,
    /// Trusted headers, `[auth] strategy = "noauth"`.
    Noauth,
}

/// The caller, as a validated token describes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// User id.
    pub user_id: String,
    /// User name.
    pub user_name: Option<String>,
    /// User's domain id.
    pub user_domain_id: Option<String>,
    /// Project the token is scoped to (none for domain- or system-scoped tokens).
    pub project_id: Option<String>,
    /// Project name.
    pub project_name: Option<String>,
    /// Project's domain id.
    pub project_domain_id: Option<String>,
    /// Role names on the scope.
    pub roles: Vec<String>,
    /// When the token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// How it was authenticated.
    pub method: AuthMethod,
}

impl Identity {
    /// Policy credentials of this identity (`is_admin` still to be computed by the enforcer).
    pub fn credentials(&self) -> policy::Credentials {
        policy::Credentials {
            user_id: Some(self.user_id.clone()),
            project_id: self.project_id.clone(),
            user_domain_id: self.user_domain_id.clone(),
            project_domain_id: self.project_domain_id.clone(),
            roles: self.roles.clone(),
            ..Default::default()
        }
    }
}

/// The configured authenticator.
#[derive(Debug)]
pub enum Authenticator {
    /// Keystone token validation.
    Keystone(Box<KeystoneAuth>),
    /// No authentication.
    Noauth,
}

impl Authenticator {
    /// Builds the authenticator `config` asks for.
    pub fn from_config(config: &Config) -> Result<Self, keystone::KeystoneError> {
        Ok(match config.auth.strategy {
            AuthStrategy::Keystone => {
                Self::Keystone(Box::new(KeystoneAuth::new(config.keystone.clone())?))
            }
            AuthStrategy::Noauth => Self::Noauth,
        })
    }

    /// Authenticates the request whose headers these are.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Identity>, ApiError> {
        match self {
            Authenticator::Keystone(k) => {
                let token = headers
                    .get("x-auth-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| self.unauthorized())?;
                k.validate(token).await
            }
            Authenticator::Noauth => noauth::identity(headers).ok_or_else(|| self.unauthorized()),
        }
    }

    /// The 401 this authenticator answers.
    pub fn unauthorized(&self) -> ApiError {
        let uri = match self {
            Authenticator::Keystone(k) => k.www_authenticate_uri().to_owned(),
            Authenticator::Noauth => String::new(),
        };
        ApiError::Unauthorized {
            www_authenticate: format!("Keystone uri=\"{uri}\""),
        }
    }
}

/// Whether `path` (already normalized) is served without a token, as keystonemiddleware's
/// `acl_public_routes = /, /v1` in Zun, plus the health check.
pub fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/v1" | "/.json" | "/v1.json" | "/healthcheck")
}

/// The authentication layer.
pub async fn auth_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    match state.auth.authenticate(req.headers()).await {
        Ok(identity) => {
            tracing::Span::current().record("user_id", identity.user_id.as_str());
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}
