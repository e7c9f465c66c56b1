//! Keystone v3 token validation, as keystonemiddleware's auth_token does it: a service user's
//! token validates callers' tokens (`GET /v3/auth/tokens`), valid tokens are cached until they
//! expire (bounded by `token_cache_seconds`), refused ones for a short time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::future::Cache;
use moka::Expiry;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::{AuthMethod, Identity};
use crate::config::KeystoneConfig;
use crate::error::{ApiError, ErrorChain};

/// Keystone could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for Keystone")]
    Client(#[source] reqwest::Error),
    /// A request to Keystone failed.
    #[error("request to Keystone at {url} failed")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// Keystone answered something we did not expect.
    #[error("Keystone at {url} answered {status}: {body}")]
    Unexpected {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
}

#[derive(Clone, Debug)]
struct ServiceToken {
    token: String,
    refresh_at: Instant,
}

#[derive(Clone, Debug)]
struct Cached {
    identity: Arc<Identity>,
    until: Instant,
}

struct UntilExpiry;

impl Expiry<[u8; 32], Cached> for UntilExpiry {
    fn expire_after_create(&self, _: &[u8; 32], v: &Cached, now: Instant) -> Option<Duration> {
        Some(v.until.saturating_duration_since(now))
    }
}

/// Outcome of asking Keystone about a token.
#[derive(Debug)]
enum Verdict {
    Valid(Cached),
    Invalid,
}

/// Validates Keystone tokens.
pub struct KeystoneAuth {
    cfg: KeystoneConfig,
    http: reqwest::Client,
    service_token: Mutex<Option<ServiceToken>>,
    valid: Cache<[u8; 32], Cached>,
    invalid: Cache<[u8; 32], ()>,
    cache_hits: prometheus_client::metrics::counter::Counter,
}

impl std::fmt::Debug for KeystoneAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneAuth")
            .field("auth_url", &self.cfg.auth_url)
            .field("username", &self.cfg.username)
            .finish_non_exhaustive()
    }
}

/// Token body of `GET /v3/auth/tokens`.
#[derive(Deserialize)]
struct TokenBody {
    token: TokenData,
}

#[derive(Deserialize)]
struct TokenData {
    expires_at: DateTime<Utc>,
    user: Named,
    #[serde(default)]
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Role>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<Domain>,
}

#[derive(Deserialize)]
struct Domain {
    id: String,
}

#[derive(Deserialize)]
struct Role {
    name: String,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl KeystoneAuth {
    /// A validator with empty caches; talks to Keystone lazily.
    pub fn new(cfg: KeystoneConfig) -> Result<Self, KeystoneError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_seconds.max(1)))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(KeystoneError::Client)?;
        Ok(Self {
            valid: Cache::builder()
                .max_capacity(cfg.token_cache_size)
                .expire_after(UntilExpiry)
                .build(),
            invalid: Cache::builder()
                .max_capacity(cfg.token_cache_size)
                .time_to_live(Duration::from_secs(cfg.negative_cache_seconds.max(1)))
                .build(),
            service_token: Mutex::new(None),
            http,
            cfg,
            cache_hits: Default::default(),
        })
    }

    /// The count of tokens answered from the caches (valid or refused), for the metrics.
    pub fn cache_hits(&self) -> &prometheus_client::metrics::counter::Counter {
        &self.cache_hits
    }

    /// The identity endpoint advertised in `WWW-Authenticate`.
    pub fn www_authenticate_uri(&self) -> &str {
        &self.cfg.www_authenticate_uri
    }

    fn unauthorized(&self) -> ApiError {
        ApiError::Unauthorized {
            www_authenticate: format!("Keystone uri=\"{}\"", self.cfg.www_authenticate_uri),
        }
    }

    /// Validates `token`, from the cache when possible.
    pub async fn validate(&self, token: &str) -> Result<Arc<Identity>, ApiError> {
        let k = key(token);
        if let Some(c) = self.valid.get(&k).await {
            self.cache_hits.inc();
            return Ok(c.identity);
        }
        if self.invalid.contains_key(&k) {
            self.cache_hits.inc();
            return Err(self.unauthorized());
        }
        // Concurrent requests with the same new token share one call to Keystone.
        let verdict = self
            .valid
            .try_get_with(k, async {
                match self.verify(token).await? {
                    Verdict::Valid(c) => Ok(c),
                    Verdict::Invalid => Err(None::<KeystoneError>),
                }
            })
            .await;
        match verdict {
            Ok(c) => Ok(c.identity),
            Err(e) => match e.as_ref() {
                None => {
                    self.invalid.insert(k, ()).await;
                    Err(self.unauthorized())
                }
                Some(err) => {
                    tracing::error!(error = %ErrorChain(err), "cannot validate token");
                    Err(ApiError::ServiceUnavailable(
                        "The Keystone service is temporarily unavailable.".into(),
                    ))
                }
            },
        }
    }

    /// Asks Keystone; `Err(Some)` when Keystone could not answer.
    async fn verify(&self, token: &str) -> Result<Verdict, Option<KeystoneError>> {
        let url = format!(
            "{}/auth/tokens?nocatalog",
            self.cfg.auth_url.trim_end_matches('/')
        );
        for attempt in 0..2 {
            let service = self.service_token(attempt > 0).await.map_err(Some)?;
            let resp = self
                .http
                .get(&url)
                .header("X-Auth-Token", service)
                .header("X-Subject-Token", token)
                .send()
                .await
                .map_err(|source| {
                    Some(KeystoneError::Request {
                        url: url.clone(),
                        source,
                    })
                })?;
            match resp.status().as_u16() {
                200 => {
                    let body: TokenBody = resp.json().await.map_err(|source| {
                        Some(KeystoneError::Request {
                            url: url.clone(),
                            source,
                        })
                    })?;
                    return Ok(self.verdict(body.token));
                }
                404 => return Ok(Verdict::Invalid),
                // Our own token expired or was revoked: get a new one and retry once.
                401 if attempt == 0 => continue,
                status => {
                    let body = resp.text().await.unwrap_or_default();
                    return Err(Some(KeystoneError::Unexpected {
                        url,
                        status,
                        body: body.chars().take(200).collect(),
                    }));
                }
            }
        }
        Err(Some(KeystoneError::Unexpected {
            url,
            status: 401,
            body: "service token refused twice".into(),
        }))
    }

    fn verdict(&self, t: TokenData) -> Verdict {
        let now = Utc::now();
        let left = (t.expires_at - now).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return Verdict::Invalid;
        }
        let ttl = left.min(Duration::from_secs(self.cfg.token_cache_seconds));
        let identity = Identity {
            user_id: t.user.id,
            user_name: t.user.name,
            user_domain_id: t.user.domain.map(|d| d.id),
            project_id: t.project.as_ref().map(|p| p.id.clone()),
            project_name: t.project.as_ref().and_then(|p| p.name.clone()),
            project_domain_id: t.project.and_then(|p| p.domain.map(|d| d.id)),
            roles: t.roles.into_iter().map(|r| r.name).collect(),
            expires_at: Some(t.expires_at),
            method: AuthMethod::Keystone,
        };
        Verdict::Valid(Cached {
            identity: Arc::new(identity),
            until: Instant::now() + ttl,
        })
    }

    /// Our own token, fetched (or refetched when `renew`) as needed.
    async fn service_token(&self, renew: bool) -> Result<String, KeystoneError> {
        let mut guard = self.service_token.lock().await;
        if let Some(t) = guard.as_ref() {
            if !renew && Instant::now() < t.refresh_at {
                return Ok(t.token.clone());
            }
        }
        let url = format!("{}/auth/tokens", self.cfg.auth_url.trim_end_matches('/'));
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.cfg.username,
                "domain": {"name": self.cfg.user_domain_name},
                "password": self.cfg.password,
            }}},
            "scope": {"project": {
                "name": self.cfg.project_name,
                "domain": {"name": self.cfg.project_domain_name},
            }},
        }});
        let resp = self
            .http
            .post(&url)
            .query(&[("nocatalog", "")])
            .json(&body)
            .send()
            .await
            .map_err(|source| KeystoneError::Request {
                url: url.clone(),
                source,
            })?;
        let status = resp.status().as_u16();
        if status != 201 {
            let body = resp.text().await.unwrap_or_default();
            return Err(KeystoneError::Unexpected {
                url,
                status,
                body: body.chars().take(200).collect(),
            });
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| KeystoneError::Unexpected {
                url: url.clone(),
                status,
                body: "no X-Subject-Token header".into(),
            })?;
        let expires_at = resp
            .json::<TokenBody>()
            .await
            .map(|b| b.token.expires_at)
            .map_err(|source| KeystoneError::Request {
                url: url.clone(),
                source,
            })?;
        // Renew a minute before expiry so a validation never uses a token about to lapse.
        let left = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let refresh_at = Instant::now() + left.saturating_sub(Duration::from_secs(60));
        *guard = Some(ServiceToken {
            token: token.clone(),
            refresh_at,
        });
        tracing::info!(user = %self.cfg.username, "obtained service token from Keystone");
        Ok(token)
    }
}
