//! The no-op firewall driver, for `[firewall] enabled = false`: nothing is enforced, nftables
//! is never touched.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use async_trait::async_trait;
use capsule_types::secgroup::HostFirewall;
use uuid::Uuid;

use super::{FirewallDriver, FirewallError};

/// Enforces nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFirewall;

#[async_trait]
impl FirewallDriver for NoFirewall {
    async fn apply(
        &self,
        doc: &HostFirewall,
        _local: &BTreeMap<Uuid, Ipv4Addr>,
    ) -> Result<(), FirewallError> {
        tracing::debug!(
            epoch = doc.epoch,
            "security groups disabled; document not enforced"
        );
        Ok(())
    }

    async fn remove(&self) -> Result<(), FirewallError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "none"
    }
}
