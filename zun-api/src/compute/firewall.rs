//! Keeps compute hosts' security-group firewalls current: a change marks the hosts it affects,
//! and a background task bumps the epoch once for everything marked, computes each marked
//! host's whole firewall from the database and casts it ([`ComputeClient::set_firewall`]).
//! Bursts of changes coalesce into one document per host; a lost message is made good when the
//! host's next heartbeat shows an older epoch than the database's.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use db::Database;
use tokio::sync::Notify;

use super::client::{ComputeClient, ComputeError};
use crate::error::ErrorChain;

/// How long the sender waits for more changes before computing documents.
const COALESCE: Duration = Duration::from_millis(20);

/// Sends hosts their firewalls. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FirewallSync {
    inner: Arc<Inner>,
    wake: Arc<Notify>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    compute: ComputeClient,
    dirty: Mutex<BTreeSet<String>>,
}

impl FirewallSync {
    /// Starts the sender, casting through `compute` (it stops once every clone is dropped).
    pub fn start(db: Database, compute: ComputeClient) -> Self {
        let inner = Arc::new(Inner {
            db,
            compute,
            dirty: Mutex::new(BTreeSet::new()),
        });
        let wake = Arc::new(Notify::new());
        tokio::spawn(run(Arc::downgrade(&inner), wake.clone()));
        Self { inner, wake }
    }

    /// `hosts` must get a new firewall.
    pub fn hosts_changed(&self, hosts: impl IntoIterator<Item = String>) {
        let mut d = self.inner.dirty.lock().unwrap_or_else(|p| p.into_inner());
        let before = d.len();
        d.extend(hosts);
        if d.len() != before {
            self.wake.notify_one();
        }
    }

    /// Something about `project`'s groups or members changed: every host running one of its
    /// capsules must get a new firewall.
    pub async fn project_changed(&self, project: &str) {
        match self.inner.db.project_hosts(project).await {
            Ok(hosts) => self.hosts_changed(hosts),
            Err(e) => {
                // The next heartbeat of each host finds its epoch behind and fixes it.
                tracing::warn!(project, error = %ErrorChain(&e), "cannot list the hosts to tell of a security-group change");
            }
        }
    }

    /// A host reported the version of its firewall: if it is of another incarnation or
    /// behind the database's, mark it. If it is ahead in this incarnation, the database went
    /// back in time (restored from a backup): move the epoch past it first, so the documents
    /// that follow are newer than what the host has.
    pub async fn heartbeat(
        &self,
        host: &str,
        incarnation: Option<&str>,
        epoch: Option<u64>,
    ) -> Result<(), db::DbError> {
        let current = self.inner.db.firewall_version().await?;
        let (Some(incarnation), Some(epoch)) = (incarnation, epoch) else {
            // Nothing received since the host started (or an agent that predates incarnations).
            self.hosts_changed([host.to_owned()]);
            return Ok(());
        };
        if incarnation != current.incarnation || epoch < current.epoch {
            self.hosts_changed([host.to_owned()]);
        } else if epoch > current.epoch {
            if self.inner.db.advance_firewall_epoch(epoch).await? {
                tracing::warn!(
                    %host,
                    host_epoch = epoch,
                    database_epoch = current.epoch,
                    "the security-group epoch went back (database restored?): moved past the host's"
                );
            }
            self.hosts_changed([host.to_owned()]);
        }
        Ok(())
    }
}

async fn run(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        // Wake up now and then to notice that every handle is gone.
        let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner
            .dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            continue;
        }
        tokio::time::sleep(COALESCE).await;
        let hosts = std::mem::take(&mut *inner.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        if let Err(e) = send(&inner, &hosts).await {
            tracing::warn!(error = %ErrorChain(&e), ?hosts, "cannot compute firewalls; retrying");
            inner
                .dirty
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(hosts);
            tokio::time::sleep(Duration::from_millis(500)).await;
            wake.notify_one();
        }
    }
}

/// Bumps the epoch (every change marked so far committed before it) and sends each host its
/// firewall as of after the bump.
async fn send(inner: &Inner, hosts: &BTreeSet<String>) -> Result<(), db::DbError> {
    let version = inner.db.bump_firewall_epoch().await?;
    let epoch = version.epoch;
    for host in hosts {
        let doc = inner.db.host_firewall(host, &version).await?;
        let capsules = doc.capsules.len();
        match inner.compute.set_firewall(host, doc).await {
            Ok(()) => tracing::debug!(%host, epoch, capsules, "firewall sent"),
            Err(e @ ComputeError::Encode(_)) => {
                tracing::error!(%host, error = %ErrorChain(&e), "cannot encode a firewall");
            }
            // The host's next heartbeat shows the old epoch and brings it here again.
            Err(e) => tracing::warn!(%host, epoch, error = %ErrorChain(&e), "firewall not sent"),
        }
    }
    Ok(())
}
