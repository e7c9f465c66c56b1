//! Shared state of the API server: configuration, database, policy enforcer, authenticator,
//! the list cache and the ways to compute hosts. It imports only what sits below it: `config`,
//! `auth`'s authenticator, `compute`'s senders and `list_cache`.

use std::sync::Arc;
use std::time::Duration;

use capsule_types::template::Limits;
use db::Database;
use rpc::Bus;

use crate::auth::Authenticator;
use crate::compute::{ComputeClient, Dispatcher, FirewallSync};
use crate::config::Config;
use crate::list_cache::ListCache;

/// State every handler can reach; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: Database,
    /// Policy defaults plus the configured overrides.
    pub policy: Arc<policy::Enforcer>,
    /// How callers are authenticated.
    pub auth: Arc<Authenticator>,
    /// What a template may ask for.
    pub limits: Arc<Limits>,
    /// Rendered list pages, valid while their project's generation is unchanged.
    pub list_cache: ListCache,
    /// The typed client of compute hosts (without `[rpc] url` it has no bus: then no host can
    /// take capsules).
    pub compute: ComputeClient,
    /// Publishes the outbox to compute hosts; none without `[rpc] url`.
    pub dispatcher: Option<Dispatcher>,
    /// Sends compute hosts their security-group firewalls; none without `[rpc] url`.
    pub firewall: Option<FirewallSync>,
    /// The Prometheus metrics.
    pub metrics: crate::metrics::ApiMetrics,
}

impl AppState {
    /// The same state talking to compute hosts through `bus` (tests use an in-process bus).
    pub fn with_bus(mut self, bus: Bus) -> Self {
        let patience = Duration::from_secs(self.config.rpc.publish_timeout_seconds);
        self.compute = ComputeClient::new(Some(bus.clone()));
        self.firewall = Some(FirewallSync::start(self.db.clone(), self.compute.clone()));
        self.dispatcher = Some(Dispatcher::new(
            self.db.clone(),
            bus,
            patience,
            self.metrics.published(),
        ));
        self
    }

    /// Publishes outbox entries `ids`, just written, at once (what the broker does not take in
    /// time stays for the dispatcher's background loop).
    pub async fn publish_now(&self, ids: &[i32]) {
        if let Some(d) = &self.dispatcher {
            d.publish_now(ids).await;
        }
    }
}
