//! The nft script for a [`HostFirewall`]: pure text, no I/O.
//!
//! The table is judged at the capsule's own address, after DNAT, so published ports are seen as
//! the capsule's IP and container port. Layout (`T` is the configured table):
//!
//! ```text
//! table inet T {}              # makes the delete below work when T does not exist yet
//! delete table inet T
//! table inet T {
//!     set capsules  { type ipv4_addr ... }           # capsules that have chains
//!     map egress    { type ipv4_addr : verdict ... } # capsule IP -> jump eg_<uuid>
//!     map ingress   { type ipv4_addr : verdict ... } # capsule IP -> jump in_<uuid>
//!     chain forward { hook forward, priority filter - 5 }  # egress, then ingress
//!     chain input   { hook input,   priority filter - 5 }  # the host guard (below)
//!     chain output  { hook output,  priority filter - 5 }  # ingress only (from the host)
//!     chain eg_<uuid> { <egress rules> return ...; counter drop }
//!     chain in_<uuid> { <ingress rules> accept ...; counter drop }
//! }
//! ```
//!
//! All of it is one nft transaction: the old table stays in force until the new one is
//! complete, and a script nft refuses changes nothing.
//!
//! The host guard (chain `input`) keeps capsules off the host itself, whatever their groups
//! say: nothing that arrives from outside the host reaches its loopback (netavark turns
//! `route_localnet` on for the capsule bridge, so without this a capsule that routes
//! 127.0.0.1 via its gateway reaches every loopback-only service: the class of
//! CVE-2020-8558), and no new connection from the capsule bridge reaches any address of the
//! host. Published ports are not affected: they are DNAT'd to a capsule in prerouting and
//! pass through `forward`, never `input`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use capsule_types::secgroup::{Cidr, Direction, Ethertype, FirewallRule, HostFirewall};
use uuid::Uuid;

/// Name of the set of capsule addresses that have chains.
const SET: &str = "capsules";
/// Name of the map from capsule address to its egress chain.
const EGRESS_MAP: &str = "egress";
/// Name of the map from capsule address to its ingress chain.
const INGRESS_MAP: &str = "ingress";

/// The host's capsule network, as the firewall sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapsuleNet {
    /// The capsule network (IPv4).
    pub subnet: Cidr,
    /// The host's address on it.
    pub gateway: Ipv4Addr,
    /// The bridge the capsules hang off (a valid interface name).
    pub bridge: String,
}

/// The nft script (input of `nft -f -`) that atomically replaces table `inet table` with the
/// enforcement of `doc` for the capsules in `local` (capsule uuid -> its IPv4 address).
///
/// `net.subnet` is the capsule network and `net.gateway` the host's address on it: a new
/// connection from or to an address of the subnet other than the gateway that has no chains
/// is dropped (fail closed). Nothing from `net.bridge` reaches the host itself (see the
/// module's doc). Capsules in `local` but not in `doc` get no chains; capsules in `doc`
/// but not in `local` are ignored; an address that two capsules of `local` claim gets no chains
/// either. The output is deterministic: capsules in uuid order, a capsule's groups in the
/// order the document lists them, identical rules of one chain once.
pub fn render(
    table: &str,
    net: &CapsuleNet,
    doc: &HostFirewall,
    local: &BTreeMap<Uuid, Ipv4Addr>,
) -> String {
    let shared = shared_addresses(local);
    let capsules: Vec<Capsule> = local
        .iter()
        .filter(|(_, ip)| !shared.contains(ip))
        .filter_map(|(id, ip)| {
            let groups = doc.capsules.get(id)?;
            Some(Capsule::new(*id, *ip, groups, doc))
        })
        .collect();

    let mut s = String::new();
    let mut w = |line: &str| {
        s.push_str(line);
        s.push('\n');
    };
    w(&format!(
        "# Security groups of this host's capsules (document epoch {}).",
        doc.epoch
    ));
    w(&format!("table inet {table} {{}}"));
    w(&format!("delete table inet {table}"));
    w(&format!("table inet {table} {{"));

    w("\t# The capsules that have chains; any other address of the subnet but the gateway");
    w("\t# takes and makes no new connections.");
    w(&format!("\tset {SET} {{"));
    w("\t\ttype ipv4_addr");
    let addrs: BTreeSet<Ipv4Addr> = capsules.iter().map(|c| c.ip).collect();
    if !addrs.is_empty() {
        let list: Vec<String> = addrs.iter().map(Ipv4Addr::to_string).collect();
        w(&format!("\t\telements = {{ {} }}", list.join(", ")));
    }
    w("\t}");
    for (map, prefix) in [(EGRESS_MAP, "eg"), (INGRESS_MAP, "in")] {
        w(&format!("\tmap {map} {{"));
        w("\t\ttype ipv4_addr : verdict");
        if !capsules.is_empty() {
            let mut sorted: Vec<&Capsule> = capsules.iter().collect();
            sorted.sort_by_key(|c| c.ip);
            let list: Vec<String> = sorted
                .iter()
                .map(|c| format!("{} : jump {}", c.ip, chain_name(prefix, c.id)))
                .collect();
            w(&format!("\t\telements = {{ {} }}", list.join(", ")));
        }
        w("\t}");
    }

    let (gateway, bridge) = (net.gateway, &net.bridge);
    let subnet = net.subnet.to_string();
    let fail_closed = |field: &str| {
        format!("\t\tip {field} {subnet} ip {field} != {gateway} ip {field} != @{SET} counter drop")
    };
    let egress = format!("\t\tip saddr vmap @{EGRESS_MAP}");
    let ingress = format!("\t\tip daddr vmap @{INGRESS_MAP}");
    // Capsule to capsule (bridged, through br_netfilter), routed and DNAT'd traffic: the
    // source's egress first (its chain returns on a match), then the destination's ingress.
    base_chain(
        &mut w,
        "forward",
        &["\t# Routed, DNAT'd (published ports) and bridged (br_netfilter) traffic."],
        &[
            &egress,
            &fail_closed("saddr"),
            &ingress,
            &fail_closed("daddr"),
        ],
    );
    // The host guard. Replies pass (those of the host's own connections to 127.0.0.1:hostPort
    // come back from the bridge with loopback addresses once conntrack undoes the NAT), as
    // does what was DNAT'd; as kube-proxy does since CVE-2020-8558.
    w("\t# To the host itself: its loopback only from itself; from capsules only what is");
    w("\t# published (DNAT'd to a capsule, so never seen here) and replies.");
    w("\tchain input {");
    w("\t\ttype filter hook input priority filter - 5; policy accept;");
    w("\t\tct state established,related accept");
    w("\t\tiifname != \"lo\" ip daddr 127.0.0.0/8 ct status & dnat == 0 counter drop");
    w("\t\tiifname != \"lo\" ip saddr 127.0.0.0/8 ct status & dnat == 0 counter drop");
    w(&format!(
        "\t\tiifname \"{bridge}\" ct status & dnat == 0 counter drop"
    ));
    w(&format!(
        "\t\tip saddr {subnet} ip saddr != {gateway} ct status & dnat == 0 counter drop"
    ));
    w("\t}");
    base_chain(
        &mut w,
        "output",
        &["\t# From the host to capsules, 127.0.0.1:hostPort included (DNAT'd in nat output)."],
        &[&ingress, &fail_closed("daddr")],
    );

    for c in &capsules {
        for (prefix, rules) in [("eg", &c.egress), ("in", &c.ingress)] {
            w(&format!("\tchain {} {{", chain_name(prefix, c.id)));
            for r in rules {
                w(&format!("\t\t{r}"));
            }
            w("\t\tcounter drop");
            w("\t}");
        }
    }
    w("}");
    s
}

/// Writes base chain `hook` (named after its hook) with `comment` lines and `rules` after
/// the connection-tracking accept.
fn base_chain(w: &mut impl FnMut(&str), hook: &str, comment: &[&str], rules: &[&str]) {
    for c in comment {
        w(c);
    }
    w(&format!("\tchain {hook} {{"));
    w(&format!(
        "\t\ttype filter hook {hook} priority filter - 5; policy accept;"
    ));
    w("\t\tct state established,related accept");
    for r in rules {
        w(r);
    }
    w("\t}");
}

/// The chain of `capsule` for a direction: `eg_<uuid>` or `in_<uuid>` with `_` for `-`.
pub(crate) fn chain_name(prefix: &str, capsule: Uuid) -> String {
    format!("{prefix}_{}", capsule.to_string().replace('-', "_"))
}

/// Addresses that more than one capsule of `local` claims: none of those capsules gets
/// chains, so traffic to and from the address is judged fail-closed.
pub(crate) fn shared_addresses(local: &BTreeMap<Uuid, Ipv4Addr>) -> BTreeSet<Ipv4Addr> {
    let mut seen = BTreeSet::new();
    let mut shared = BTreeSet::new();
    for ip in local.values() {
        if !seen.insert(*ip) {
            shared.insert(*ip);
        }
    }
    shared
}

/// One capsule's rendered rules.
struct Capsule {
    id: Uuid,
    ip: Ipv4Addr,
    /// Egress rules, each ending in `return`.
    egress: Vec<String>,
    /// Ingress rules, each ending in `accept`.
    ingress: Vec<String>,
}

impl Capsule {
    fn new(id: Uuid, ip: Ipv4Addr, groups: &[String], doc: &HostFirewall) -> Self {
        let mut egress = Vec::new();
        let mut ingress = Vec::new();
        let mut seen_groups = BTreeSet::new();
        for group in groups {
            if !seen_groups.insert(group.as_str()) {
                continue;
            }
            // A group the document does not carry contributes no rules.
            let Some(rules) = doc.groups.get(group) else {
                continue;
            };
            for rule in rules {
                let Some(m) = matcher(rule) else { continue };
                let (list, verdict) = match rule.direction {
                    Direction::Egress => (&mut egress, "return"),
                    Direction::Ingress => (&mut ingress, "accept"),
                };
                let line = if m.is_empty() {
                    verdict.to_owned()
                } else {
                    format!("{m} {verdict}")
                };
                if !list.contains(&line) {
                    list.push(line);
                }
            }
        }
        Self {
            id,
            ip,
            egress,
            ingress,
        }
    }
}

/// The match expression of `rule` (empty: matches everything), or `None` if it matches
/// nothing on this network and is left out.
pub(crate) fn matcher(rule: &FirewallRule) -> Option<String> {
    // The capsule network is IPv4-only: an IPv6 rule has no traffic to match.
    if rule.ethertype != Ethertype::IPv4 {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(remote) = &rule.remote {
        let field = match rule.direction {
            Direction::Ingress => "saddr",
            Direction::Egress => "daddr",
        };
        if let Some(set) = peers(remote)? {
            parts.push(format!("ip {field} {set}"));
        }
    }
    if let Some(proto) = rule.protocol {
        parts.push(protocol(proto, rule.port_range_min, rule.port_range_max)?);
    }
    Some(parts.join(" "))
}

/// The anonymous set of the IPv4 peers in `remote`: `None` if there are none (the rule
/// matches nothing), `Some(None)` if one of them is `0.0.0.0/0` (any peer). Prefixes inside
/// another one of the list are dropped, so the set has no overlapping intervals.
fn peers(remote: &[Cidr]) -> Option<Option<String>> {
    let mut v4: Vec<(u32, u8)> = remote
        .iter()
        .filter_map(|c| match c.addr {
            IpAddr::V4(a) if c.len <= 32 => Some((u32::from(a), c.len)),
            _ => None,
        })
        .collect();
    if v4.is_empty() {
        return None;
    }
    if v4.iter().any(|(_, len)| *len == 0) {
        return Some(None);
    }
    v4.sort_by_key(|(addr, len)| (*len, *addr));
    let mut kept: Vec<(u32, u8)> = Vec::new();
    for (addr, len) in v4 {
        let inside = kept.iter().any(|(k, klen)| mask(addr, *klen) == *k);
        if !inside {
            kept.push((mask(addr, len), len));
        }
    }
    kept.sort();
    let items: Vec<String> = kept
        .iter()
        .map(|(a, len)| format!("{}/{len}", Ipv4Addr::from(*a)))
        .collect();
    Some(Some(format!("{{ {} }}", items.join(", "))))
}

/// `addr` with all but the first `len` bits clear.
fn mask(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(len.min(32))))
    }
}

/// The protocol (and port or ICMP type and code) match; `None` if it can match nothing.
fn protocol(proto: u8, min: Option<u16>, max: Option<u16>) -> Option<String> {
    match proto {
        1 => {
            let mut s = "meta l4proto icmp".to_owned();
            if let Some(t) = min {
                let t = u8::try_from(t).ok()?;
                let _ = write!(s, " icmp type {t}");
            }
            if let Some(c) = max {
                let c = u8::try_from(c).ok()?;
                let _ = write!(s, " icmp code {c}");
            }
            Some(s)
        }
        6 | 17 | 33 | 132 | 136 => {
            // As Neutron: without a first port, the whole protocol.
            let ports = match (min, max) {
                (None, _) => String::new(),
                (Some(a), None) => format!(" th dport {a}"),
                (Some(a), Some(b)) if a == b => format!(" th dport {a}"),
                (Some(a), Some(b)) if a < b => format!(" th dport {a}-{b}"),
                // An inverted range holds no port.
                (Some(_), Some(_)) => return None,
            };
            Some(format!("meta l4proto {proto}{ports}"))
        }
        n => Some(format!("meta l4proto {n}")),
    }
}
