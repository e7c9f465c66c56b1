//! Publishing the outbox: right after the transaction that wrote an entry (so a create reaches
//! its host at once), and in the background for what could not be published then (the broker
//! was down, or this process died). An entry is deleted only once the broker confirmed it.

use std::sync::Arc;
use std::time::Duration;

use db::Database;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rpc::Bus;
use tokio::sync::Notify;

use crate::metrics::OutcomeLabels;

/// How long a publisher holds an entry before another may take it.
const LEASE: Duration = Duration::from_secs(30);

/// Publishes outbox entries.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    db: Database,
    bus: Bus,
    wake: Arc<Notify>,
    patience: Duration,
    published: Family<OutcomeLabels, Counter>,
}

impl Dispatcher {
    /// A dispatcher that waits up to `patience` for the broker on each inline publish, and
    /// counts each publication in `published` (`confirmed` or `failed`).
    pub fn new(
        db: Database,
        bus: Bus,
        patience: Duration,
        published: Family<OutcomeLabels, Counter>,
    ) -> Self {
        Self {
            db,
            bus,
            wake: Arc::new(Notify::new()),
            patience,
            published,
        }
    }

    fn count(&self, outcome: &'static str) {
        self.published
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The bus it publishes to.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Publishes these entries now. What fails stays in the outbox for the background loop,
    /// so a caller never loses a request; it only waits at most `patience` per entry.
    pub async fn publish_now(&self, ids: &[i32]) {
        for &id in ids {
            if !self.publish_one(id, self.patience).await {
                self.wake.notify_one();
            }
        }
    }

    /// Claims, publishes and deletes entry `id`; whether it is done.
    async fn publish_one(&self, id: i32, patience: Duration) -> bool {
        let entry = match self.db.claim_outbox_entry(id, LEASE).await {
            Ok(Some(e)) => e,
            // Gone (someone published it) or held by another publisher.
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot claim outbox entry");
                return false;
            }
        };
        self.publish_entry(entry, patience).await
    }

    async fn publish_entry(&self, e: db::entity::outbox::Model, patience: Duration) -> bool {
        match self
            .bus
            .publish(&e.routing_key, e.payload.as_bytes(), patience)
            .await
        {
            Ok(()) => {
                self.count("confirmed");
                if let Err(err) = self.db.delete_outbox_entry(e.id).await {
                    // It will be published again when its lease ends: handlers are idempotent.
                    tracing::warn!(id = e.id, error = %err, "published but not deleted");
                }
                tracing::debug!(id = e.id, routing_key = %e.routing_key, "published");
                true
            }
            Err(err) => {
                self.count("failed");
                tracing::warn!(
                    id = e.id,
                    routing_key = %e.routing_key,
                    attempts = e.attempts,
                    error = %err,
                    "cannot publish yet; the outbox keeps it"
                );
                let _ = self.db.release_outbox_entry(e.id).await;
                false
            }
        }
    }

    /// The background loop: every `interval`, or when woken, publishes what is left, oldest
    /// first.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = self.wake.notified() => {}
                }
                let batch = match self.db.claim_outbox(100, LEASE).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the outbox");
                        continue;
                    }
                };
                for e in batch {
                    // In order: stop at the first failure so nothing overtakes it.
                    if !self.publish_entry(e, Duration::from_secs(10)).await {
                        break;
                    }
                }
            }
        })
    }
}
