//! One issuer's provider: its discovery document and JWKS through openidconnect, fetched at
//! start (in the background) and again when a token names a key we do not have, at most once
//! per `jwks_refresh_min_seconds`, concurrent refetches coalescing into one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJsonWebKeyType, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::http::{header::ACCEPT, HeaderValue, Method, StatusCode};
use openidconnect::{
    AsyncHttpClient, DiscoveryError, HttpClientError, IssuerUrl, JsonWebKey, JsonWebKeySetUrl,
};

use super::jwt::ACCEPTED_ALGS;
use super::OidcError;
use crate::config::oidc::IssuerConfig;
use crate::error::ErrorChain;

/// Why a provider request failed, as openidconnect reports it.
pub type FetchError = DiscoveryError<HttpClientError<reqwest::Error>>;

/// The provider could not be asked (down, or asked too recently).
#[derive(Debug)]
pub(super) struct Unavailable;

/// What an issuer's provider told us last.
#[derive(Debug)]
pub(super) struct Keys {
    /// Bumped on every fetch; tells a waiting refetch that another one already happened.
    generation: u64,
    jwks_uri: JsonWebKeySetUrl,
    /// Signing algorithms the issuer advertises that we accept.
    pub algs: Vec<CoreJwsSigningAlgorithm>,
    /// Its public signing keys.
    pub keys: Vec<Arc<CoreJsonWebKey>>,
}

impl Keys {
    /// Whether `key` is still one of the issuer's keys.
    pub fn contains(&self, key: &CoreJsonWebKey) -> bool {
        self.keys.iter().any(|k| **k == *key)
    }

    fn kids(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|k| k.key_id().map_or("(none)", |id| id.as_str()))
            .collect()
    }
}

/// One configured issuer and what we know of its provider.
pub(super) struct Provider {
    /// Its configuration.
    pub cfg: IssuerConfig,
    http: reqwest::Client,
    min_refresh: Duration,
    keys: RwLock<Option<Arc<Keys>>>,
    /// When a token last made us ask the provider; the lock is what coalesces refetches.
    last_ask: tokio::sync::Mutex<Option<Instant>>,
    generation: AtomicU64,
    jwks_fetches: AtomicU64,
}

/// The signing algorithms of `metadata` (ID token and userinfo signing) that we accept.
fn algorithms(metadata: &CoreProviderMetadata) -> Vec<CoreJwsSigningAlgorithm> {
    let advertised = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .chain(
            metadata
                .userinfo_signing_alg_values_supported()
                .into_iter()
                .flatten(),
        );
    let mut algs = Vec::new();
    for a in advertised {
        if ACCEPTED_ALGS.contains(a) && !algs.contains(a) {
            algs.push(a.clone());
        }
    }
    algs
}

impl Provider {
    /// A provider not asked anything yet.
    pub fn new(cfg: IssuerConfig, http: reqwest::Client, min_refresh: Duration) -> Self {
        Self {
            cfg,
            http,
            min_refresh,
            keys: RwLock::new(None),
            last_ask: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            jwks_fetches: AtomicU64::new(0),
        }
    }

    /// How many times its JWKS was fetched (discoveries included).
    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::Relaxed)
    }

    /// What the provider told us last; none before a discovery succeeded.
    pub fn current(&self) -> Option<Arc<Keys>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(
        &self,
        jwks_uri: JsonWebKeySetUrl,
        algs: Vec<CoreJwsSigningAlgorithm>,
        jwks: &CoreJsonWebKeySet,
    ) -> Arc<Keys> {
        let keys = Arc::new(Keys {
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            jwks_uri,
            algs,
            // Symmetric keys never verify anything here (no HMAC algorithms).
            keys: jwks
                .keys()
                .iter()
                .filter(|k| *k.key_type() != CoreJsonWebKeyType::Symmetric)
                .cloned()
                .map(Arc::new)
                .collect(),
        });
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(keys.clone());
        keys
    }

    /// The discovery document at `url`, checked to be the configured issuer's.
    async fn metadata_at(&self, url: &str) -> Result<CoreProviderMetadata, FetchError> {
        let req = openidconnect::http::Request::builder()
            .uri(url)
            .method(Method::GET)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Vec::new())
            .map_err(|e| DiscoveryError::Other(format!("cannot build the request: {e}")))?;
        let resp = self.http.call(req).await.map_err(DiscoveryError::Request)?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            return Err(DiscoveryError::Response(
                status,
                resp.into_body(),
                format!("HTTP status code {status}"),
            ));
        }
        let metadata: CoreProviderMetadata = serde_json::from_slice(resp.body())
            .map_err(|e| DiscoveryError::Other(format!("invalid discovery document: {e}")))?;
        if metadata.issuer().as_str() != self.cfg.issuer {
            return Err(DiscoveryError::Validation(format!(
                "the document names issuer {}",
                metadata.issuer().as_str()
            )));
        }
        Ok(metadata)
    }

    async fn fetch_jwks(&self, uri: &JsonWebKeySetUrl) -> Result<CoreJsonWebKeySet, OidcError> {
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        CoreJsonWebKeySet::fetch_async(uri, &self.http)
            .await
            .map_err(|source| OidcError::Jwks {
                issuer: self.cfg.issuer.clone(),
                url: uri.to_string(),
                source,
            })
    }

    /// Discovery, then the JWKS it names.
    async fn discover(&self) -> Result<Arc<Keys>, OidcError> {
        let issuer = self.cfg.issuer.clone();
        let (metadata, jwks) = match &self.cfg.discovery_url {
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let issuer_url = IssuerUrl::new(issuer.clone())
                    .map_err(|e| OidcError::Config(format!("issuer {issuer}: {e}")))?;
                self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
                let m = CoreProviderMetadata::discover_async(issuer_url, &self.http)
                    .await
                    .map_err(|source| OidcError::Discovery {
                        issuer,
                        url,
                        source,
                    })?;
                let jwks = m.jwks().clone();
                (m, jwks)
            }
            Some(url) => {
                let m = self
                    .metadata_at(url)
                    .await
                    .map_err(|source| OidcError::Discovery {
                        issuer,
                        url: url.clone(),
                        source,
                    })?;
                let jwks = self.fetch_jwks(m.jwks_uri()).await?;
                (m, jwks)
            }
        };
        let algs = algorithms(&metadata);
        if algs.is_empty() {
            return Err(OidcError::NoAlgorithms {
                issuer: self.cfg.issuer.clone(),
            });
        }
        let keys = self.store(metadata.jwks_uri().clone(), algs, &jwks);
        tracing::info!(
            issuer = %self.cfg.issuer,
            kids = ?keys.kids(),
            algs = ?keys.algs,
            "OpenID Connect provider discovered"
        );
        Ok(keys)
    }

    /// The discovery at start: a failure is logged and left to the first token to retry.
    pub async fn start(&self) {
        let _ask = self.last_ask.lock().await;
        if self.current().is_some() {
            return;
        }
        if let Err(e) = self.discover().await {
            tracing::warn!(
                issuer = %self.cfg.issuer,
                error = %ErrorChain(&e),
                "OpenID Connect provider unavailable at start; retrying on first use"
            );
        }
    }

    /// The issuer's keys, discovering the provider first if that has not succeeded yet.
    pub async fn keys(&self) -> Result<Arc<Keys>, Unavailable> {
        if let Some(k) = self.current() {
            return Ok(k);
        }
        let mut last = self.last_ask.lock().await;
        if let Some(k) = self.current() {
            return Ok(k);
        }
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return Err(Unavailable);
        }
        *last = Some(Instant::now());
        self.discover().await.map_err(|e| {
            tracing::warn!(
                issuer = %self.cfg.issuer,
                error = %ErrorChain(&e),
                "OpenID Connect provider unavailable"
            );
            Unavailable
        })
    }

    /// Refetches the JWKS because a token names a key that `seen` lacks. Returns the keys to
    /// try again with: those another request's refetch brought meanwhile, or the same ones
    /// when the last refetch was less than `jwks_refresh_min_seconds` ago.
    pub async fn refresh(&self, seen: &Keys) -> Result<Arc<Keys>, Unavailable> {
        let mut last = self.last_ask.lock().await;
        let current = self.current().ok_or(Unavailable)?;
        if current.generation != seen.generation {
            return Ok(current);
        }
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            tracing::debug!(issuer = %self.cfg.issuer, "JWKS refetch skipped: too recent");
            return Ok(current);
        }
        *last = Some(Instant::now());
        match self.fetch_jwks(&current.jwks_uri).await {
            Ok(jwks) => {
                let keys = self.store(current.jwks_uri.clone(), current.algs.clone(), &jwks);
                tracing::info!(issuer = %self.cfg.issuer, kids = ?keys.kids(), "JWKS refetched");
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot refetch the JWKS");
                Err(Unavailable)
            }
        }
    }
}
