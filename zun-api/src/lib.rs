//! The capsule API server: a Zun-compatible `/v1` REST API (capsules, container logs, services,
//! hosts), plus the Cinder-like volume API and the Neutron-like security-group API on their own
//! listeners, with Keystone (or OpenID Connect) authentication, oslo-style policy and
//! microversions, over the `db` crate, talking to compute hosts over the `rpc` crate.
//!
//! Layers, each importing only from those below it:
//!
//! - ground: [`config`], [`context`] (the caller of a request) and [`error`] (`ApiError`);
//! - below the state: [`auth`] (the authenticator), [`compute`] (the typed `ComputeClient`,
//!   placement, the outbox dispatcher and the firewall sender) and [`list_cache`];
//! - [`state`]: `AppState`, which holds them;
//! - [`app`]: the operations of the three APIs by resource, without HTTP;
//! - [`http`]: the HTTP plumbing the APIs share;
//! - [`api`]: the three APIs (`zun`, `cinder`, `neutron`), each routes, handlers, request
//!   parsing and views; and `compute::conductor`, which runs on a whole state.

pub mod api;
pub mod app;
pub mod auth;
pub mod compute;
pub mod config;
pub mod context;
pub mod error;
pub mod http;
pub mod list_cache;
pub mod metrics;
pub mod state;

use std::sync::Arc;

pub use api::zun::{normalize_path, router, service};
pub use api::{cinder, neutron};
pub use compute::conductor;
pub use config::Config;
pub use state::AppState;

/// Why the server could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The database could not be opened.
    #[error("cannot open the database")]
    Db(#[from] db::DbError),
    /// The policy file could not be read.
    #[error("cannot read policy file {path}")]
    PolicyRead {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The policy file is invalid.
    #[error("invalid policy file {path}")]
    Policy {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: policy::LoadError,
    },
    /// The authenticator could not be built.
    #[error("cannot set up authentication")]
    Auth(#[from] auth::KeystoneError),
    /// The OpenID Connect validator could not be built.
    #[error("cannot set up OpenID Connect authentication")]
    Oidc(#[from] auth::OidcError),
}

impl From<auth::SetupError> for BuildError {
    fn from(e: auth::SetupError) -> Self {
        match e {
            auth::SetupError::Keystone(e) => Self::Auth(e),
            auth::SetupError::Oidc(e) => Self::Oidc(e),
        }
    }
}

impl AppState {
    /// Builds the state `config` describes: opens the database (without migrating it) and
    /// loads the policy file.
    pub async fn from_config(config: Config) -> Result<Self, BuildError> {
        let db = db::Database::connect(&config.database.url).await?;
        let mut enforcer = policy::Enforcer::with_defaults();
        if let Some(path) = &config.policy.file {
            let text = std::fs::read_to_string(path).map_err(|source| BuildError::PolicyRead {
                path: path.clone(),
                source,
            })?;
            let report = enforcer
                .load_overrides(&text)
                .map_err(|source| BuildError::Policy {
                    path: path.clone(),
                    source,
                })?;
            tracing::info!(
                file = %path.display(),
                overridden = ?report.overridden,
                added = ?report.added,
                "policy overrides loaded"
            );
        }
        let auth = auth::Authenticator::from_config(&config)?;
        let bus = config
            .rpc
            .url
            .as_deref()
            .map(|url| rpc::Bus::Amqp(rpc::AmqpBus::new(url, "zun-api")));
        let metrics = metrics::ApiMetrics::new(&auth);
        let state = Self {
            metrics,
            limits: Arc::new(config.limits.template_limits()),
            list_cache: list_cache::ListCache::new(
                config.api.list_cache_mib.saturating_mul(1024 * 1024),
            ),
            config: Arc::new(config),
            db,
            policy: Arc::new(enforcer),
            auth: Arc::new(auth),
            compute: compute::ComputeClient::default(),
            dispatcher: None,
            firewall: None,
        };
        Ok(match bus {
            Some(bus) => state.with_bus(bus),
            None => state,
        })
    }
}
