//! OpenID Connect bearer tokens: JWT access tokens (RFC 9068, `typ: at+jwt`) of configured
//! issuers, verified locally with the keys of each issuer's JWKS (openidconnect's discovery,
//! `JsonWebKeySet` and `JsonWebKey::verify_signature`), their claims checked here (issuer,
//! audience, times with leeway) and mapped to an [`Identity`] that goes through the same policy
//! as Keystone's. Validated tokens are cached like Keystone's, but only while their key is
//! still in the issuer's JWKS.

mod claims;
mod jwt;
mod provider;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use moka::future::Cache;
use moka::Expiry;
use openidconnect::core::CoreJsonWebKey;
use openidconnect::JsonWebKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use crate::config::oidc::{ClientMap, IssuerConfig, OidcConfig};
pub use provider::FetchError;

use super::Identity;
use crate::error::ApiError;
use provider::{Provider, Unavailable};

/// OpenID Connect could not be set up, or a provider could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for OpenID Connect")]
    Client(#[source] reqwest::Error),
    /// `[oidc]` is invalid.
    #[error("invalid [oidc] configuration: {0}")]
    Config(String),
    /// The discovery document could not be had (or its JWKS, when discovery fetched both).
    #[error("discovery of OpenID Connect issuer {issuer} at {url} failed")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// The discovery document's URL.
        url: String,
        /// Why.
        #[source]
        source: FetchError,
    },
    /// The JWKS could not be had.
    #[error("fetching the JWKS of OpenID Connect issuer {issuer} from {url} failed")]
    Jwks {
        /// The issuer.
        issuer: String,
        /// The JWKS URL.
        url: String,
        /// Why.
        #[source]
        source: FetchError,
    },
    /// The issuer signs with no algorithm we accept.
    #[error("OpenID Connect issuer {issuer} advertises no signing algorithm we accept (RS*, PS*, ES256, ES384, EdDSA)")]
    NoAlgorithms {
        /// The issuer.
        issuer: String,
    },
}

/// Why a bearer token was refused: the `error_description` of the 401. Never echoes the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("malformed token")]
    Malformed,
    #[error("signing algorithm not accepted")]
    Algorithm,
    #[error("unsupported critical header")]
    Critical,
    #[error("not an access token")]
    TokenType,
    #[error("unknown issuer")]
    Issuer,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid signature")]
    Signature,
    #[error("token has no expiry")]
    NoExpiry,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("audience not accepted")]
    Audience,
    #[error("token names no user")]
    NoUser,
    #[error("token maps to no project")]
    NoProject,
    #[error("malformed project claim")]
    MalformedProject,
    #[error("malformed roles claim")]
    MalformedRoles,
}

/// A validated token, cached.
#[derive(Clone, Debug)]
struct Cached {
    identity: Arc<Identity>,
    /// Index of its issuer's provider.
    provider: usize,
    /// The key that verified it; the entry is void once that key leaves the JWKS.
    key: Arc<CoreJsonWebKey>,
    until: Instant,
}

struct UntilExpiry;

impl Expiry<[u8; 32], Cached> for UntilExpiry {
    fn expire_after_create(&self, _: &[u8; 32], v: &Cached, now: Instant) -> Option<Duration> {
        Some(v.until.saturating_duration_since(now))
    }
}

enum Failure {
    Rejected(Rejection),
    Unavailable,
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        Failure::Rejected(r)
    }
}

impl From<Unavailable> for Failure {
    fn from(_: Unavailable) -> Self {
        Failure::Unavailable
    }
}

/// Validates OpenID Connect bearer tokens of the configured issuers.
pub struct OidcAuth {
    leeway: i64,
    cache_for: Duration,
    providers: Vec<Arc<Provider>>,
    valid: Cache<[u8; 32], Cached>,
    cache_hits: prometheus_client::metrics::counter::Counter,
}

impl std::fmt::Debug for OidcAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issuers: Vec<&str> = self
            .providers
            .iter()
            .map(|p| p.cfg.issuer.as_str())
            .collect();
        f.debug_struct("OidcAuth")
            .field("issuers", &issuers)
            .finish_non_exhaustive()
    }
}

/// The `WWW-Authenticate` challenge of a request without credentials.
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"capsule\"";

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl OidcAuth {
    /// A validator for `cfg`'s issuers. Each provider's discovery starts in the background
    /// (when a Tokio runtime is running); one unreachable now is retried on first use.
    pub fn new(cfg: OidcConfig) -> Result<Self, OidcError> {
        cfg.validate().map_err(OidcError::Config)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_seconds.max(1)))
            // A provider's redirect is not followed (openidconnect's advice against SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(OidcError::Client)?;
        let min_refresh = Duration::from_secs(cfg.jwks_refresh_min_seconds);
        let providers: Vec<Arc<Provider>> = cfg
            .issuers
            .iter()
            .map(|i| Arc::new(Provider::new(i.clone(), http.clone(), min_refresh)))
            .collect();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            for p in &providers {
                let p = p.clone();
                rt.spawn(async move { p.start().await });
            }
        }
        Ok(Self {
            leeway: i64::try_from(cfg.leeway_seconds).unwrap_or(i64::MAX),
            cache_for: Duration::from_secs(cfg.token_cache_seconds),
            providers,
            valid: Cache::builder()
                .max_capacity(cfg.token_cache_size)
                .expire_after(UntilExpiry)
                .build(),
            cache_hits: Default::default(),
        })
    }

    /// The count of tokens answered from the cache, for the metrics.
    pub fn cache_hits(&self) -> &prometheus_client::metrics::counter::Counter {
        &self.cache_hits
    }

    /// How many times the JWKS of `issuer` was fetched (discoveries included); none for an
    /// issuer not configured. For tests and diagnostics.
    pub fn jwks_fetches(&self, issuer: &str) -> Option<u64> {
        self.providers
            .iter()
            .find(|p| p.cfg.issuer == issuer)
            .map(|p| p.jwks_fetches())
    }

    /// Validates the bearer `token`: 401 with an `invalid_token` challenge when refused, 503
    /// when its issuer's provider cannot be reached to get its keys.
    pub async fn validate(&self, token: &str) -> Result<Arc<Identity>, ApiError> {
        let k = key(token);
        if let Some(c) = self.valid.get(&k).await {
            let key_kept = self.providers[c.provider]
                .current()
                .is_some_and(|keys| keys.contains(&c.key));
            if key_kept {
                self.cache_hits.inc();
                return Ok(c.identity);
            }
            self.valid.invalidate(&k).await;
        }
        let mut issuer = None;
        match self.verify(token, &mut issuer).await {
            Ok(c) => {
                let identity = c.identity.clone();
                if c.until > Instant::now() {
                    self.valid.insert(k, c).await;
                }
                Ok(identity)
            }
            Err(Failure::Rejected(reason)) => {
                tracing::warn!(issuer = issuer.unwrap_or("-"), %reason, "bearer token refused");
                Err(ApiError::Unauthorized {
                    www_authenticate: format!(
                        "Bearer error=\"invalid_token\", error_description=\"{reason}\""
                    ),
                })
            }
            Err(Failure::Unavailable) => Err(ApiError::ServiceUnavailable(
                "The identity provider is temporarily unavailable.".into(),
            )),
        }
    }

    /// Verifies `token` from scratch; `issuer` is set as soon as it is known (for the log).
    async fn verify<'p>(
        &'p self,
        token: &str,
        issuer: &mut Option<&'p str>,
    ) -> Result<Cached, Failure> {
        let jwt = jwt::parse(token)?;
        let iss = jwt.claims.get("iss").and_then(Value::as_str);
        let (index, provider) = self
            .providers
            .iter()
            .enumerate()
            .find(|(_, p)| Some(p.cfg.issuer.as_str()) == iss)
            .ok_or(Rejection::Issuer)?;
        *issuer = Some(&provider.cfg.issuer);
        let mut keys = provider.keys().await?;
        if !keys.algs.contains(&jwt.alg) {
            return Err(Rejection::Algorithm.into());
        }
        if jwt.candidates(&keys.keys).is_empty() {
            keys = provider.refresh(&keys).await?;
        }
        let candidates = jwt.candidates(&keys.keys);
        if candidates.is_empty() {
            return Err(Rejection::UnknownKey.into());
        }
        let key = jwt.verify(&candidates)?;
        let now_ms = Utc::now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        let exp = claims::check_times(&jwt.claims, now, self.leeway)?;
        claims::check_audience(&jwt.claims, &provider.cfg.audiences)?;
        let identity = claims::identity(&jwt.claims, &provider.cfg, exp)?;
        tracing::debug!(
            issuer = %provider.cfg.issuer,
            client = claims::client_id(&jwt.claims).unwrap_or("-"),
            kid = key.key_id().map_or("-", |k| k.as_str()),
            user = %identity.user_id,
            "bearer token accepted"
        );
        // Trusted until `exp` + leeway to the millisecond, as a fresh check would.
        let left_ms = exp
            .saturating_add(self.leeway)
            .saturating_mul(1000)
            .saturating_sub(now_ms);
        let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
        Ok(Cached {
            identity: Arc::new(identity),
            provider: index,
            key: key.clone(),
            until: Instant::now() + self.cache_for.min(left),
        })
    }
}
