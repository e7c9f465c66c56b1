//! Authentication: who is calling. Keystone tokens (validated against Keystone with a service
//! user and cached), or `noauth` for tests; beside either, OpenID Connect bearer tokens of the
//! `[oidc]` issuers. A 401 is answered in keystonemiddleware's shape (plus a `Bearer` challenge
//! when OIDC is on). The [`Authenticator`] sits below the state that holds it; the layer that
//! runs it on every route but the public ones is `http::auth`.

mod keystone;
pub use keystone::KeystoneError;
mod noauth;
mod oidc;
pub use oidc::{ClientMap, IssuerConfig, OidcAuth, OidcConfig, OidcError};

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

pub use crate::context::{AuthMethod, Identity};
pub use keystone::KeystoneAuth;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::{AuthStrategy, Config};
use crate::error::ApiError;
use crate::metrics::TokenLabels;

/// Why the authenticator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The Keystone validator.
    #[error(transparent)]
    Keystone(#[from] KeystoneError),
    /// The OpenID Connect validator.
    #[error(transparent)]
    Oidc(#[from] OidcError),
}

/// The strategy of `[auth]`.
#[derive(Debug)]
enum Base {
    /// Keystone token validation.
    Keystone(Box<KeystoneAuth>),
    /// No authentication.
    Noauth,
}

/// The configured authenticator: the `[auth]` strategy, plus OpenID Connect bearer tokens when
/// `[oidc]` names issuers.
#[derive(Debug)]
pub struct Authenticator {
    base: Base,
    oidc: Option<OidcAuth>,
    checks: Family<TokenLabels, Counter>,
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Authenticator {
    /// Builds the authenticator `config` asks for. An `[oidc]` section that cannot be used
    /// (`Config::load` refuses an invalid one first) leaves bearer tokens refused, logged.
    pub fn from_config(config: &Config) -> Result<Self, SetupError> {
        let base = match config.auth.strategy {
            AuthStrategy::Keystone => {
                Base::Keystone(Box::new(KeystoneAuth::new(config.keystone.clone())?))
            }
            AuthStrategy::Noauth => Base::Noauth,
        };
        // A broken [oidc] stops the service: silently refusing every bearer token would
        // hide the misconfiguration until a caller fails.
        let oidc = if config.oidc.enabled() {
            Some(OidcAuth::new(config.oidc.clone())?)
        } else {
            None
        };
        Ok(Self {
            base,
            oidc,
            checks: Family::default(),
        })
    }

    /// The OpenID Connect validator, when `[oidc]` is on.
    pub fn oidc(&self) -> Option<&OidcAuth> {
        self.oidc.as_ref()
    }

    /// The count of credentials checked, by kind and outcome (registered by the metrics).
    pub fn checks(&self) -> &Family<TokenLabels, Counter> {
        &self.checks
    }

    /// The validators' cache-hit counters, by kind (registered by the metrics).
    pub fn cache_hits(&self) -> Vec<(&'static str, Counter)> {
        let mut hits = Vec::new();
        if let Base::Keystone(k) = &self.base {
            hits.push(("keystone", k.cache_hits().clone()));
        }
        if let Some(o) = &self.oidc {
            hits.push(("oidc", o.cache_hits().clone()));
        }
        hits
    }

    /// Authenticates the request whose headers these are (see [`Self::check`]), and counts
    /// the check by kind and outcome.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Identity>, ApiError> {
        let (kind, result) = self.check(headers).await;
        let outcome = match &result {
            Ok(_) => "valid",
            Err(ApiError::ServiceUnavailable(_)) => "unavailable",
            Err(_) => "refused",
        };
        self.checks
            .get_or_create(&TokenLabels { kind, outcome })
            .inc();
        result
    }

    /// A Keystone `X-Auth-Token` first (as before), else an `Authorization: Bearer` token when
    /// OIDC is on, else the `[auth]` strategy's own way (none for Keystone, trusted headers for
    /// noauth); which kind of credentials it was, and what they are worth.
    async fn check(&self, headers: &HeaderMap) -> (&'static str, Result<Arc<Identity>, ApiError>) {
        let x_auth_token = headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let (Base::Keystone(k), Some(token)) = (&self.base, x_auth_token) {
            return ("keystone", k.validate(token).await);
        }
        if let (Some(o), Some(token)) = (&self.oidc, bearer(headers)) {
            return ("oidc", o.validate(token).await);
        }
        match &self.base {
            Base::Keystone(_) => ("keystone", Err(self.unauthorized())),
            Base::Noauth => (
                "noauth",
                noauth::identity(headers).ok_or_else(|| self.unauthorized()),
            ),
        }
    }

    /// The 401 this authenticator answers a request without credentials.
    pub fn unauthorized(&self) -> ApiError {
        ApiError::Unauthorized {
            www_authenticate: self.keystone_challenge(),
        }
    }

    fn keystone_challenge(&self) -> String {
        let uri = match &self.base {
            Base::Keystone(k) => k.www_authenticate_uri(),
            Base::Noauth => "",
        };
        format!("Keystone uri=\"{uri}\"")
    }

    /// The challenge of the other scheme, sent as a second `WWW-Authenticate` value beside
    /// `first`: `Bearer realm="capsule"` beside Keystone's when OIDC is on, Keystone's beside a
    /// refused bearer token's when Keystone is the strategy.
    fn second_challenge(&self, first: &str) -> Option<String> {
        if first.starts_with("Bearer") {
            matches!(self.base, Base::Keystone(_)).then(|| self.keystone_challenge())
        } else {
            self.oidc
                .as_ref()
                .map(|_| oidc::BEARER_CHALLENGE.to_owned())
        }
    }

    /// `err` as the response, with the second challenge when there is one.
    pub fn error_response(&self, err: ApiError) -> Response {
        let second = match &err {
            ApiError::Unauthorized { www_authenticate } => self.second_challenge(www_authenticate),
            _ => None,
        };
        let mut resp = err.into_response();
        if let Some(v) = second.and_then(|v| HeaderValue::from_str(&v).ok()) {
            resp.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(&format!("[auth]\nstrategy = \"noauth\"\n{extra}")).unwrap()
    }

    #[test]
    fn bearer_header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        for (v, want) in [
            ("Bearer abc.def.ghi", Some("abc.def.ghi")),
            ("bearer   tok ", Some("tok")),
            ("Bearer ", None),
            ("Basic dXNlcjpwdw==", None),
            ("Bearertok", None),
        ] {
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            assert_eq!(bearer(&h), want, "{v}");
        }
    }

    #[tokio::test]
    async fn challenges_name_both_schemes_when_oidc_is_on() {
        let plain = Authenticator::from_config(&config("")).unwrap();
        assert!(plain.oidc().is_none());
        let r = plain.error_response(plain.unauthorized());
        let values: Vec<_> = r
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(values, ["Keystone uri=\"\""]);

        let with = Authenticator::from_config(&config(
            "[[oidc.issuers]]\nissuer = \"http://127.0.0.1:1\"\naudiences = [\"a\"]\n",
        ))
        .unwrap();
        assert!(with.oidc().is_some());
        let r = with.error_response(with.unauthorized());
        let values: Vec<_> = r
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(values, ["Keystone uri=\"\"", "Bearer realm=\"capsule\""]);
        // A refused bearer token: its challenge alone (noauth has no Keystone challenge).
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer garbage".parse().unwrap());
        let err = with.authenticate(&h).await.unwrap_err();
        let r = with.error_response(err);
        assert_eq!(r.status(), axum::http::StatusCode::UNAUTHORIZED);
        let values: Vec<_> = r
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(
            values,
            ["Bearer error=\"invalid_token\", error_description=\"malformed token\""]
        );
        // noauth's trusted headers still work beside OIDC.
        let mut h = HeaderMap::new();
        h.insert("x-user-id", "alice".parse().unwrap());
        assert_eq!(with.authenticate(&h).await.unwrap().user_id, "alice");
    }
}
