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

    /// The epoch of the newest firewall the API sent since start (for heartbeats).
    pub fn firewall_epoch(&self) -> Option<u64> {
        self.firewall.received_epoch()
    }
}
