//! Network: one network namespace per capsule on the host bridge, with published ports, through netavark (see docs/runtime.md).
//!
//! The pod runtime sees this part through [`NetworkDriver`]: [`Network`] (module `bridge`) is
//! the real driver, [`fake::FakeNetwork`] a recording fake.
//!
//! [`Network::setup`] creates the namespace `<netns_dir>/capsule-<uuid>`, leases an address (and
//! claims the host ports) from a small on-disk store, records the netavark options it is about to
//! use in the capsule's `network.json`, and runs `netavark setup` as podman does.
//! [`Network::teardown`] undoes all of it from that record, so it works after an agent restart.
//! netavark runs are serialized per `config_dir` (an in-process mutex plus an `flock`): netavark
//! relies on its caller's lock, and concurrent runs race on iptables chains and the bridge.

mod bridge;
mod driver;
mod error;
pub mod fake;
mod ipam;
mod netavark;
mod netns;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use bridge::Network;
pub use driver::NetworkDriver;
pub use error::NetworkError;

/// `[network]` in `zun-compute.toml`: the one bridge network of this host.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The netavark binary (Debian's 1.4 by default; a 2.x works the same).
    pub netavark: PathBuf,
    /// netavark's `--config` directory; also holds this module's address leases (`ipam/`) and
    /// lock. Must survive agent restarts. Conventionally `<state_dir>/netavark`.
    pub config_dir: PathBuf,
    /// The network's name (netavark's key for it).
    pub network_name: String,
    /// The bridge's name on the host (at most 15 characters).
    pub bridge: String,
    /// The IPv4 subnet in CIDR form, host bits clear, prefix 8 to 30.
    pub subnet: String,
    /// The bridge's address; default: the subnet's first host address.
    pub gateway: Option<String>,
    /// Where the named namespaces live (`ip netns` uses `/run/netns`).
    pub netns_dir: PathBuf,
    /// netavark's firewall driver (`iptables` or `nftables`), given to it as `NETAVARK_FW`;
    /// default: netavark's own default (iptables for 1.4 and Debian's builds). netavark 2.x
    /// with `nftables` sets up and tears down several times faster than with `iptables`.
    /// Each capsule records the driver it was set up with and is torn down with that one, so
    /// it can be changed with capsules running.
    pub firewall_driver: Option<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            netavark: PathBuf::from("/usr/lib/podman/netavark"),
            config_dir: PathBuf::from("/var/lib/zun-compute/netavark"),
            network_name: "capsule".into(),
            bridge: "capsule0".into(),
            subnet: "10.89.0.0/24".into(),
            gateway: None,
            netns_dir: PathBuf::from("/run/netns"),
            firewall_driver: None,
        }
    }
}

/// A published port's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as netavark spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host port forwarded to a port of the capsule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// The port on the host.
    pub host_port: u16,
    /// The port inside the capsule.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The host address to forward from; `None` (or empty): all of them.
    pub host_ip: Option<String>,
}

/// A capsule's place on the network, as set up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The namespace file (join it with `setns`, or give it to the runtime as a netns path).
    pub netns: PathBuf,
    /// The interface inside it (`eth0`).
    pub interface: String,
    /// Its IPv4 address, e.g. `10.89.0.5`.
    pub ip: String,
    /// The subnet's prefix length, e.g. 24.
    pub prefix: u8,
    /// The default gateway (the bridge's address).
    pub gateway: String,
    /// The interface's MAC address.
    pub mac: String,
}
