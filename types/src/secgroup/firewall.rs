//! What a compute host enforces: the security groups of the capsules it runs, with every
//! rule's peers resolved to addresses. The API computes it from its database and sends it
//! whole (`set_firewall`); the host renders it into its own nftables table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Cidr, Direction, Ethertype};

/// The firewall of one compute host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFirewall {
    /// Orders documents: the API's security-group epoch when it began computing this one. A
    /// host applies a document whose epoch is not lower than the last one it applied.
    pub epoch: u64,
    /// The incarnation of the database `epoch` counts in: a document of another incarnation
    /// is of another sequence (the API's database was switched), and is applied whatever its
    /// epoch. Empty in documents of APIs that predate it.
    #[serde(default)]
    pub incarnation: String,
    /// The host's capsules and the ids of their groups. A capsule of the host missing here
    /// takes no new connections at all until a document names it.
    pub capsules: BTreeMap<Uuid, Vec<String>>,
    /// Every group named in `capsules`, with its rules.
    pub groups: BTreeMap<String, Vec<FirewallRule>>,
}

/// One rule, as the host enforces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    /// Into or out of the capsule.
    pub direction: Direction,
    /// IP version.
    pub ethertype: Ethertype,
    /// IP protocol number; `None` is any protocol.
    pub protocol: Option<u8>,
    /// First destination port (TCP, UDP, SCTP, DCCP, UDP-Lite), or the ICMP type.
    pub port_range_min: Option<u16>,
    /// Last destination port, or the ICMP code.
    pub port_range_max: Option<u16>,
    /// The peers it lets through: `None` is any; otherwise the remote prefix, or the
    /// addresses of the remote group's capsules (empty when it has none: matches nothing).
    pub remote: Option<Vec<Cidr>>,
}
