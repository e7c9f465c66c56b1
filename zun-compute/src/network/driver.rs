//! The network part as the pod runtime and the security groups see it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Attachment, Network, NetworkError, PortMapping};

/// The host's capsule network: one namespace per capsule with an address and published ports.
/// Real: [`Network`] (netavark); fake: [`super::fake::FakeNetwork`].
#[async_trait]
pub trait NetworkDriver: Send + Sync + std::fmt::Debug + 'static {
    /// Refuses `ports` if one of them is 0 or taken on this host now: the check made before
    /// anything of a capsule is made.
    fn check_ports(&self, capsule: Uuid, ports: &[PortMapping]) -> Result<(), NetworkError>;

    /// Connects `capsule` (namespace, address, ports), recording in `state_file` what its
    /// teardown needs before doing anything. Idempotent; on failure undoes what it did.
    async fn setup(
        &self,
        capsule: Uuid,
        hostname: &str,
        ports: &[PortMapping],
        state_file: &Path,
    ) -> Result<Attachment, NetworkError>;

    /// Disconnects `capsule` from what `state_file` records. Absent is fine; best-effort.
    async fn teardown(&self, capsule: Uuid, state_file: &Path) -> Result<(), NetworkError>;

    /// The attachment a finished setup recorded in `state_file`, if any.
    async fn recorded_attachment(
        &self,
        capsule: Uuid,
        state_file: &Path,
    ) -> Result<Option<Attachment>, NetworkError>;

    /// Every capsule's leased address.
    fn leased_ips(&self) -> Result<BTreeMap<Uuid, Ipv4Addr>, NetworkError>;

    /// The subnet's address and prefix, and the bridge's address.
    fn subnet(&self) -> (Ipv4Addr, u8, Ipv4Addr);

    /// The network's name (the key of a capsule's `addresses`).
    fn name(&self) -> &str;
}

#[async_trait]
impl NetworkDriver for Network {
    fn check_ports(&self, capsule: Uuid, ports: &[PortMapping]) -> Result<(), NetworkError> {
        Network::check_ports(capsule, ports)
    }

    async fn setup(
        &self,
        capsule: Uuid,
        hostname: &str,
        ports: &[PortMapping],
        state_file: &Path,
    ) -> Result<Attachment, NetworkError> {
        Network::setup(self, capsule, hostname, ports, state_file).await
    }

    async fn teardown(&self, capsule: Uuid, state_file: &Path) -> Result<(), NetworkError> {
        Network::teardown(self, capsule, state_file).await
    }

    async fn recorded_attachment(
        &self,
        capsule: Uuid,
        state_file: &Path,
    ) -> Result<Option<Attachment>, NetworkError> {
        Network::recorded_attachment(self, capsule, state_file).await
    }

    fn leased_ips(&self) -> Result<BTreeMap<Uuid, Ipv4Addr>, NetworkError> {
        Network::leased_ips(self)
    }

    fn subnet(&self) -> (Ipv4Addr, u8, Ipv4Addr) {
        Network::subnet(self)
    }

    fn name(&self) -> &str {
        Network::name(self)
    }
}
