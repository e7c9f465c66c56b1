//! Security groups on the host: the capsules' groups rendered into an nftables table this agent owns.
//!
//! The API sends each compute host a whole [`HostFirewall`] document; the driver's
//! [`FirewallDriver::apply`] renders it ([`render`]) for the capsules the host runs and replaces the agent's `inet`
//! table with it in one nft transaction, so there is never a moment without enforcement and a
//! refused script changes nothing. The rules are Neutron's security groups judged at the
//! capsule's address after DNAT: established traffic passes, a new connection must pass the
//! source capsule's egress rules and the destination capsule's ingress rules, and an address
//! of the capsule subnet without rules (a capsule the document does not name yet) takes and
//! makes no new connections.
//!
//! Drivers, chosen from `[firewall]` at start ([`from_config`]): [`NftFirewall`] (module `nft`;
//! applies are serialized by a mutex, nft runs as a child process, inside a given network
//! namespace through `nsenter` for tests), [`NoFirewall`] when `enabled = false`, and the
//! recording [`fake::FakeFirewall`] for unit tests. The document in force, and its re-applying
//! as capsules come and go, are [`SecurityGroups`] (module `groups`), which the manager and
//! the pod runtime share.

mod error;
pub mod fake;
mod groups;
mod nft;
mod none;
mod render;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use capsule_types::secgroup::HostFirewall;
use serde::Deserialize;
use uuid::Uuid;

pub use error::FirewallError;
pub use groups::{Leaving, SecurityGroups, SecurityGroupsError};
pub use nft::NftFirewall;
pub use none::NoFirewall;
pub use render::{render, CapsuleNet};

/// `[firewall]` in `zun-compute.toml`: the host's security-group enforcement.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirewallConfig {
    /// Whether security groups are enforced at all; when false, the `none` driver is used:
    /// nothing is enforced and nftables is not touched.
    pub enabled: bool,
    /// The nft binary (looked up in `PATH`, with `/usr/sbin` and `/sbin` added).
    pub nft: PathBuf,
    /// The `inet` table this agent owns and replaces whole on every apply.
    pub table: String,
    /// Run nft inside this network namespace (`nsenter --net=PATH`); for tests. Default: the
    /// agent's own namespace.
    pub netns: Option<PathBuf>,
    /// How often the agent checks that its table is still in the kernel as it left it, and
    /// restores it if something else flushed or changed it (seconds; 0: never).
    pub check_seconds: u64,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            nft: PathBuf::from("nft"),
            table: "capsule_sg".into(),
            netns: None,
            check_seconds: 2,
        }
    }
}

/// Enforces a host's security-group document. Real: [`NftFirewall`]; no-op: [`NoFirewall`];
/// fake: [`fake::FakeFirewall`].
#[async_trait]
pub trait FirewallDriver: Send + Sync + std::fmt::Debug + 'static {
    /// Puts `doc` in force for the capsules this host has (`local`: capsule uuid -> its IPv4
    /// address), replacing what was in force, atomically. Idempotent; on failure the previous
    /// enforcement stays.
    async fn apply(
        &self,
        doc: &HostFirewall,
        local: &BTreeMap<Uuid, Ipv4Addr>,
    ) -> Result<(), FirewallError>;

    /// Removes all enforcement (idempotent).
    async fn remove(&self) -> Result<(), FirewallError>;

    /// Checks that what the last apply put in force is still in force (nothing outside the
    /// agent flushed or changed it) and, if not, puts it back. `Ok(Some(what))` says what had
    /// changed; `Ok(None)`: intact, or nothing applied yet. Serialized with `apply`.
    async fn restore(&self) -> Result<Option<Drift>, FirewallError> {
        Ok(None)
    }

    /// The driver's name, for logs: `nftables`, `none`, `fake`.
    fn name(&self) -> &'static str;
}

/// What had happened to the enforcement in the kernel when [`FirewallDriver::restore`] put it
/// back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// The table was gone.
    Missing,
    /// The table was there with other rules (flushed, or edited).
    Changed,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Drift::Missing => "the table was gone",
            Drift::Changed => "the table's rules were changed",
        })
    }
}

/// The driver `cfg` asks for, on the capsule network `net`: [`NoFirewall`] when `enabled =
/// false`, else [`NftFirewall`] (its configuration checked; nothing on the host touched).
/// Without the table there is no host guard either: capsules then reach the host's services.
pub fn from_config(
    cfg: FirewallConfig,
    net: CapsuleNet,
) -> Result<Arc<dyn FirewallDriver>, FirewallError> {
    if !cfg.enabled {
        tracing::warn!(table = %cfg.table, "security groups disabled: no nftables table, so neither security groups nor the host guard keep capsules from the host's services");
        return Ok(Arc::new(NoFirewall));
    }
    Ok(Arc::new(NftFirewall::new(cfg, net)?))
}

#[cfg(test)]
mod tests;
