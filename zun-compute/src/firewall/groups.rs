//! The host's security groups in force: the newest document the API sent (by epoch), saved in
//! the state directory so a restarted agent enforces it at once, and the firewall driver that
//! enforces it for the capsules holding an address now. Shared by the manager (which receives
//! documents and reports the epoch in heartbeats) and the pod runtime (which re-applies it as
//! capsules come and go).

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use capsule_types::secgroup::HostFirewall;
use uuid::Uuid;

use super::{Drift, FirewallDriver, FirewallError};
use crate::network::{NetworkDriver, NetworkError};

/// Why the security groups could not be saved or applied.
#[derive(Debug, thiserror::Error)]
pub enum SecurityGroupsError {
    /// The driver could not apply them (the previous enforcement stays).
    #[error("security groups")]
    Apply(#[source] FirewallError),
    /// The capsules' addresses could not be read.
    #[error("cannot read the capsules' addresses")]
    Leases(#[source] NetworkError),
    /// The document could not be saved.
    #[error("cannot save the firewall in {}", path.display())]
    Save {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The document could not be encoded.
    #[error("cannot encode the firewall document")]
    Encode(#[source] serde_json::Error),
}

/// The security groups of this host.
#[derive(Debug)]
pub struct SecurityGroups {
    driver: Arc<dyn FirewallDriver>,
    /// Where the capsules' addresses come from (none: no capsule has one).
    leases: Option<Arc<dyn NetworkDriver>>,
    path: PathBuf,
    state: Mutex<State>,
    /// Serializes "read the document and the leases, render, apply", so an older view of
    /// either never replaces a newer one in the kernel.
    apply: tokio::sync::Mutex<()>,
    /// Capsules being torn down: they get no rules even while they still hold an address.
    going: Mutex<HashSet<Uuid>>,
}

#[derive(Debug, Default)]
struct State {
    doc: HostFirewall,
    /// Incarnation and epoch of the newest document received since start (the newest of the
    /// incarnation received last).
    received: Option<(String, u64)>,
}

/// While it lives, a capsule gets no rules (see [`SecurityGroups::leaving`]).
#[derive(Debug)]
pub struct Leaving<'a> {
    of: &'a SecurityGroups,
    id: Uuid,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.of.going().remove(&self.id);
    }
}

impl SecurityGroups {
    /// The document saved at `path` (an empty one, in which no capsule takes new connections,
    /// if there is none or it cannot be read), enforced by `driver` for the addresses `leases`
    /// hands out.
    pub fn new(
        driver: Arc<dyn FirewallDriver>,
        path: &Path,
        leases: Option<Arc<dyn NetworkDriver>>,
    ) -> Self {
        let doc = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable firewall document ignored");
                HostFirewall::default()
            }),
            Err(_) => HostFirewall::default(),
        };
        Self {
            driver,
            leases,
            path: path.to_owned(),
            state: Mutex::new(State {
                doc,
                received: None,
            }),
            apply: tokio::sync::Mutex::new(()),
            going: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn going(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.going.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `doc` if it is not older than the current one: saves it and returns it to apply.
    /// `None` if it is older (a newer one was taken already). A document of another
    /// incarnation than the current one is of another sequence (the API's database was
    /// switched): it is taken whatever its epoch.
    pub fn offer(&self, doc: HostFirewall) -> Result<Option<HostFirewall>, SecurityGroupsError> {
        let mut s = self.lock();
        s.received = match s.received.take() {
            Some((inc, e)) if inc == doc.incarnation => Some((inc, e.max(doc.epoch))),
            _ => Some((doc.incarnation.clone(), doc.epoch)),
        };
        let same_sequence = doc.incarnation == s.doc.incarnation;
        if same_sequence && doc.epoch < s.doc.epoch {
            tracing::debug!(
                epoch = doc.epoch,
                current = s.doc.epoch,
                "older firewall ignored"
            );
            return Ok(None);
        }
        if !same_sequence {
            tracing::info!(
                incarnation = %doc.incarnation,
                previous = %s.doc.incarnation,
                epoch = doc.epoch,
                "firewall of another database incarnation: taken whatever its epoch"
            );
        }
        let bytes = serde_json::to_vec(&doc).map_err(SecurityGroupsError::Encode)?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|source| SecurityGroupsError::Save {
                path: self.path.clone(),
                source,
            })?;
        s.doc = doc.clone();
        Ok(Some(doc))
    }

    /// Enforces `doc` from now on, unless a newer one is in force already. Idempotent.
    pub async fn set(&self, doc: HostFirewall) -> Result<(), SecurityGroupsError> {
        let epoch = doc.epoch;
        if self.offer(doc)?.is_some() {
            self.refresh().await?;
            tracing::info!(
                epoch,
                driver = self.driver.name(),
                "security groups applied"
            );
        }
        Ok(())
    }

    /// The document in force.
    pub fn current(&self) -> HostFirewall {
        self.lock().doc.clone()
    }

    /// The newest epoch the API sent since start.
    pub fn received_epoch(&self) -> Option<u64> {
        self.lock().received.as_ref().map(|(_, e)| *e)
    }

    /// The incarnation of that epoch.
    pub fn received_incarnation(&self) -> Option<String> {
        self.lock().received.as_ref().map(|(i, _)| i.clone())
    }

    /// Applies the document in force for the capsules that hold an address now, but those
    /// being torn down: their address, without rules, takes and makes no new connections.
    pub async fn refresh(&self) -> Result<(), SecurityGroupsError> {
        let _g = self.apply.lock().await;
        let doc = self.current();
        let mut local: BTreeMap<Uuid, Ipv4Addr> = match &self.leases {
            Some(n) => n.leased_ips().map_err(SecurityGroupsError::Leases)?,
            None => BTreeMap::new(),
        };
        {
            let going = self.going();
            local.retain(|id, _| !going.contains(id));
        }
        self.driver
            .apply(&doc, &local)
            .await
            .map_err(SecurityGroupsError::Apply)
    }

    /// Puts the enforcement back if something outside the agent flushed or changed it since
    /// the last apply (the driver tells; the host's kernel, not only the document, is
    /// reconciled). Serialized with applies. What had changed, if anything.
    pub async fn restore(&self) -> Result<Option<Drift>, SecurityGroupsError> {
        let _g = self.apply.lock().await;
        self.driver
            .restore()
            .await
            .map_err(SecurityGroupsError::Apply)
    }

    /// Capsule `id` gets no rules from now until the guard is dropped (its teardown).
    pub fn leaving(&self, id: Uuid) -> Leaving<'_> {
        self.going().insert(id);
        Leaving { of: self, id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::fake::FakeFirewall;
    use crate::firewall::NoFirewall;
    use crate::network::fake::FakeNetwork;
    use crate::recorder::Recorder;

    fn doc(epoch: u64) -> HostFirewall {
        HostFirewall {
            epoch,
            ..HostFirewall::default()
        }
    }

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zun-sg-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn newer_or_equal_wins_and_survives_a_restart() {
        let dir = tmp();
        let path = dir.join("firewall.json");
        let sg = SecurityGroups::new(Arc::new(NoFirewall), &path, None);
        assert_eq!(sg.received_epoch(), None);
        assert_eq!(sg.offer(doc(5)).unwrap(), Some(doc(5)));
        assert_eq!(sg.offer(doc(3)).unwrap(), None, "older is ignored");
        assert_eq!(sg.received_epoch(), Some(5));
        assert_eq!(sg.offer(doc(5)).unwrap(), Some(doc(5)), "equal is applied");
        assert_eq!(sg.current().epoch, 5);
        let again = SecurityGroups::new(Arc::new(NoFirewall), &path, None);
        assert_eq!(again.current().epoch, 5);
        assert_eq!(
            again.received_epoch(),
            None,
            "nothing received since this start"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_incarnation_is_taken_whatever_its_epoch() {
        let dir = tmp();
        let sg = SecurityGroups::new(Arc::new(NoFirewall), &dir.join("firewall.json"), None);
        let of = |incarnation: &str, epoch: u64| HostFirewall {
            incarnation: incarnation.into(),
            ..doc(epoch)
        };
        assert!(sg.offer(of("db-a", 555)).unwrap().is_some());
        assert!(
            sg.offer(of("db-a", 22)).unwrap().is_none(),
            "older, same database"
        );
        assert_eq!(
            sg.offer(of("db-b", 22)).unwrap(),
            Some(of("db-b", 22)),
            "another database: its own sequence"
        );
        assert_eq!(sg.current().incarnation, "db-b");
        assert_eq!(
            sg.received_epoch(),
            Some(22),
            "the epoch of the incarnation now in force"
        );
        assert_eq!(sg.received_incarnation().as_deref(), Some("db-b"));
        assert!(sg.offer(of("db-b", 21)).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_leaving_capsule_gets_no_rules_until_it_is_gone() {
        let dir = tmp();
        let calls = Recorder::new();
        let network = Arc::new(FakeNetwork::new(calls.clone()));
        let fw = Arc::new(FakeFirewall::new(calls.clone()));
        let sg = SecurityGroups::new(
            fw.clone(),
            &dir.join("firewall.json"),
            Some(network.clone()),
        );
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for id in [a, b] {
            network
                .setup(id, "", &[], &dir.join(format!("{id}.json")))
                .await
                .unwrap();
        }
        sg.set(doc(1)).await.unwrap();
        assert_eq!(fw.in_force().unwrap().1.len(), 2);
        {
            let _going = sg.leaving(a);
            sg.refresh().await.unwrap();
            let local = fw.in_force().unwrap().1;
            assert!(
                !local.contains_key(&a) && local.contains_key(&b),
                "{local:?}"
            );
        }
        sg.refresh().await.unwrap();
        assert_eq!(
            fw.in_force().unwrap().1.len(),
            2,
            "back once the guard is gone"
        );
        assert!(
            sg.set(doc(0)).await.is_ok(),
            "an older document is no error"
        );
        assert_eq!(fw.in_force().unwrap().0.epoch, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
