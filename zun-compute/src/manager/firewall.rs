//! The manager's security-group requests: `SetFirewall` goes to the host's
//! [`SecurityGroups`](crate::firewall::SecurityGroups); heartbeats report its epoch.

use capsule_types::secgroup::HostFirewall;

use super::{Manager, ManagerError};
use crate::chain::Chain;

impl Manager {
    /// Enforces the API's whole security-group document for this host (`SetFirewall`).
    pub(super) async fn set_firewall(&self, doc: HostFirewall) -> Result<(), ManagerError> {
        let epoch = doc.epoch;
        // A firewall that cannot be applied now is not retried from the queue: the next
        // heartbeat still shows the old epoch, and the API sends it again.
        if let Err(e) = self.firewall.set(doc).await {
            tracing::error!(epoch, error = %Chain(&e), "cannot apply the firewall");
        }
        Ok(())
    }

    /// Restores the host's security-group enforcement if something outside the agent changed
    /// it (on the agent's `[firewall] check_seconds` timer); a failure is logged and tried
    /// again at the next tick.
    pub async fn check_firewall(&self) {
        if let Err(e) = self.firewall.restore().await {
            tracing::error!(error = %Chain(&e), "cannot restore the security-group table");
        }
    }

    /// The incarnation of that epoch (for heartbeats).
    pub fn firewall_incarnation(&self) -> Option<String> {
        self.firewall.received_incarnation()
    }

    /// The epoch of the newest firewall the API sent since start (for heartbeats).
    pub fn firewall_epoch(&self) -> Option<u64> {
        self.firewall.received_epoch()
    }
}
