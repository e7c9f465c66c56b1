//! A recording fake firewall driver: remembers what it was asked to enforce. For unit tests of
//! the pod runtime and the security groups.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use async_trait::async_trait;
use capsule_types::secgroup::HostFirewall;
use uuid::Uuid;

use super::{FirewallDriver, FirewallError};
use crate::recorder::Recorder;

/// The fake. Its calls are `firewall.apply` (detail: the capsules given rules, by uuid) and
/// `firewall.remove`.
#[derive(Debug, Default)]
pub struct FakeFirewall {
    calls: Recorder,
    in_force: Mutex<Option<(HostFirewall, BTreeMap<Uuid, Ipv4Addr>)>>,
}

impl FakeFirewall {
    /// A fake recording into `calls`.
    pub fn new(calls: Recorder) -> Self {
        Self {
            calls,
            in_force: Mutex::default(),
        }
    }

    /// The document and the capsules last applied (`None`: nothing, or removed).
    pub fn in_force(&self) -> Option<(HostFirewall, BTreeMap<Uuid, Ipv4Addr>)> {
        self.in_force
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn injected(reason: String) -> FirewallError {
    FirewallError::Config {
        table: "fake".into(),
        reason,
    }
}

#[async_trait]
impl FirewallDriver for FakeFirewall {
    async fn apply(
        &self,
        doc: &HostFirewall,
        local: &BTreeMap<Uuid, Ipv4Addr>,
    ) -> Result<(), FirewallError> {
        let ids: Vec<String> = local.keys().map(Uuid::to_string).collect();
        self.calls
            .call("firewall.apply", ids.join(","))
            .map_err(injected)?;
        *self.in_force.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((doc.clone(), local.clone()));
        Ok(())
    }

    async fn remove(&self) -> Result<(), FirewallError> {
        self.calls.call("firewall.remove", "").map_err(injected)?;
        *self.in_force.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "fake"
    }
}
