//! `POST /v2.0/security-group-rules`: a rule parsed and checked as Neutron checks it
//! (direction, ethertype, protocol, port range or ICMP type/code, remote prefix or group).

use serde_json::{Map, Value};

use super::{resource, unrecognized, Cidr, NeutronError, MAX_DESCRIPTION};

/// Which traffic a rule lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Into the capsule.
    Ingress,
    /// Out of the capsule.
    Egress,
}

impl Direction {
    /// `ingress` or `egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// The IP version a rule is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Ethertype {
    /// IPv4 (Neutron's default).
    IPv4,
    /// IPv6.
    IPv6,
}

impl Ethertype {
    /// `IPv4` or `IPv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ethertype::IPv4 => "IPv4",
            Ethertype::IPv6 => "IPv6",
        }
    }
}

/// A rule's protocol: a name Neutron knows, or an IP protocol number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleProtocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1).
    Icmp,
    /// ICMPv6 (58), `ipv6-icmp` or `icmpv6`.
    Icmpv6,
    /// Another IP protocol, by number.
    Number(u8),
}

impl RuleProtocol {
    /// The names accepted, as Neutron lists them in its error.
    pub const NAMES: &'static [&'static str] =
        &["tcp", "udp", "icmp", "ipv6-icmp", "icmpv6", "any"];

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            RuleProtocol::Tcp => 6,
            RuleProtocol::Udp => 17,
            RuleProtocol::Icmp => 1,
            RuleProtocol::Icmpv6 => 58,
            RuleProtocol::Number(n) => n,
        }
    }

    /// Whether it has ports (TCP, UDP, SCTP, DCCP, UDP-Lite, by name or number).
    pub fn has_ports(self) -> bool {
        matches!(self.number(), 6 | 17 | 33 | 132 | 136)
    }

    /// Whether it is ICMP or ICMPv6 (ports are type and code).
    pub fn is_icmp(self) -> bool {
        matches!(self.number(), 1 | 58)
    }
}

/// A rule to create, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRule {
    /// The group it belongs to (an id as given; the API looks it up).
    pub security_group_id: String,
    /// Ingress or egress.
    pub direction: Direction,
    /// IPv4 or IPv6.
    pub ethertype: Ethertype,
    /// `None` is any protocol.
    pub protocol: Option<RuleProtocol>,
    /// The protocol as the user wrote it, lower case (Neutron shows it back as given).
    pub protocol_text: Option<String>,
    /// First port, or the ICMP type.
    pub port_range_min: Option<u16>,
    /// Last port, or the ICMP code.
    pub port_range_max: Option<u16>,
    /// Allowed peers by address.
    pub remote_ip_prefix: Option<Cidr>,
    /// Allowed peers by group (members of that group).
    pub remote_group_id: Option<String>,
    /// Free text.
    pub description: String,
}

impl NewRule {
    /// Whether `other` lets the same traffic through (Neutron's duplicate check: every field
    /// but the id and description).
    pub fn same_as(&self, other: &NewRule) -> bool {
        self.security_group_id == other.security_group_id
            && self.direction == other.direction
            && self.ethertype == other.ethertype
            && self.protocol.map(RuleProtocol::number) == other.protocol.map(RuleProtocol::number)
            && self.port_range_min == other.port_range_min
            && self.port_range_max == other.port_range_max
            && self.remote_ip_prefix == other.remote_ip_prefix
            && self.remote_group_id == other.remote_group_id
    }
}

const FIELDS: &[&str] = &[
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "description",
    "tenant_id",
    "project_id",
];

/// Parses and checks a `{"security_group_rule": {...}}` body.
pub fn parse_rule_create(body: &Value) -> Result<NewRule, NeutronError> {
    let o = resource(body, "security_group_rule")?;
    if let Some(k) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(unrecognized(k));
    }
    let security_group_id = match o.get("security_group_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(missing("security_group_id")),
    };
    let direction = match o.get("direction").and_then(Value::as_str) {
        Some("ingress") => Direction::Ingress,
        Some("egress") => Direction::Egress,
        None if !o.contains_key("direction") => return Err(missing("direction")),
        _ => {
            return Err(invalid(
                "direction",
                &o["direction"],
                "is not in valid values [ingress, egress]",
            ))
        }
    };
    let ethertype = match o.get("ethertype") {
        None | Some(Value::Null) => Ethertype::IPv4,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("ipv4") => Ethertype::IPv4,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("ipv6") => Ethertype::IPv6,
        Some(v) => {
            return Err(invalid(
                "ethertype",
                v,
                "is not in valid values [IPv4, IPv6]",
            ))
        }
    };
    let (protocol, protocol_text) = protocol(o)?;
    let port_range_min = port(o, "port_range_min")?;
    let port_range_max = port(o, "port_range_max")?;
    let remote_ip_prefix = match o.get("remote_ip_prefix") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Cidr::parse(s).ok_or_else(|| {
            NeutronError::bad(
                "InvalidCIDR",
                format!("Invalid CIDR {} given as IP prefix.", shown(s)),
            )
        })?),
        Some(v) => return Err(invalid("remote_ip_prefix", v, "is not a string")),
    };
    let remote_group_id = match o.get("remote_group_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(v) => return Err(invalid("remote_group_id", v, "is not a security group id")),
    };
    let description = match o.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.chars().count() <= MAX_DESCRIPTION => s.clone(),
        Some(v) => {
            return Err(invalid(
                "description",
                v,
                &format!("is not a string of at most {MAX_DESCRIPTION} characters"),
            ))
        }
    };
    let rule = NewRule {
        security_group_id,
        direction,
        ethertype,
        protocol,
        protocol_text,
        port_range_min,
        port_range_max,
        remote_ip_prefix,
        remote_group_id,
        description,
    };
    check(&rule)?;
    Ok(rule)
}

/// The rules Neutron applies across fields.
fn check(r: &NewRule) -> Result<(), NeutronError> {
    if r.remote_ip_prefix.is_some() && r.remote_group_id.is_some() {
        return Err(NeutronError::bad(
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ));
    }
    if let Some(c) = r.remote_ip_prefix {
        if c.is_ipv4() != (r.ethertype == Ethertype::IPv4) {
            return Err(NeutronError::bad(
                "SecurityGroupRuleParameterConflict",
                format!(
                    "Conflicting value ethertype {} for CIDR {c}",
                    r.ethertype.as_str()
                ),
            ));
        }
    }
    if let Some(p) = r.protocol {
        let v6_only = p == RuleProtocol::Icmpv6;
        let v4_only = p == RuleProtocol::Icmp && r.protocol_text.as_deref() == Some("icmp");
        if (v6_only && r.ethertype == Ethertype::IPv4)
            || (v4_only && r.ethertype == Ethertype::IPv6)
        {
            return Err(NeutronError::bad(
                "SecurityGroupEthertypeConflictWithProtocol",
                format!(
                    "Invalid ethertype {} for protocol {}.",
                    r.ethertype.as_str(),
                    r.protocol_text.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    let (min, max) = (r.port_range_min, r.port_range_max);
    if min.is_none() && max.is_none() {
        return Ok(());
    }
    let Some(p) = r.protocol else {
        return Err(NeutronError::bad(
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        ));
    };
    if p.has_ports() {
        for v in [min, max].into_iter().flatten() {
            if v == 0 {
                return Err(port_value(0));
            }
        }
        match (min, max) {
            (Some(a), Some(b)) if a > b => Err(NeutronError::bad(
                "SecurityGroupInvalidPortRange",
                "For TCP/UDP protocols, port_range_min must be <= port_range_max",
            )),
            (None, Some(_)) => Err(NeutronError::bad(
                "SecurityGroupInvalidPortRange",
                "port_range_min must be given with port_range_max",
            )),
            _ => Ok(()),
        }
    } else if p.is_icmp() {
        for (field, attr, v) in [
            ("type", "port_range_min", min),
            ("code", "port_range_max", max),
        ] {
            if let Some(v) = v.filter(|v| *v > 255) {
                return Err(NeutronError::bad(
                    "SecurityGroupInvalidIcmpValue",
                    format!("Invalid value for ICMP {field} ({attr}) {v}. It must be 0 to 255."),
                ));
            }
        }
        if let (None, Some(code)) = (min, max) {
            return Err(NeutronError::bad(
                "SecurityGroupMissingIcmpType",
                format!(
                    "ICMP code (port-range-max) {code} is provided but ICMP type (port-range-min) is missing."
                ),
            ));
        }
        Ok(())
    } else {
        Err(NeutronError::bad(
            "SecurityGroupInvalidProtocolForPort",
            format!(
                "Ports cannot be specified for protocol {}; only TCP, UDP, SCTP, DCCP, UDP-Lite and ICMP have them.",
                r.protocol_text.as_deref().unwrap_or("")
            ),
        ))
    }
}

fn protocol(
    o: &Map<String, Value>,
) -> Result<(Option<RuleProtocol>, Option<String>), NeutronError> {
    let bad = |v: &Value| {
        NeutronError::bad(
            "SecurityGroupRuleInvalidProtocol",
            format!(
                "Security group rule protocol {} not supported. Only protocol values [None, {}] and their integer representation (0 to 255) are supported.",
                shown_value(v),
                RuleProtocol::NAMES.join(", ")
            ),
        )
    };
    let text = match o.get("protocol") {
        None | Some(Value::Null) => return Ok((None, None)),
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => return Err(bad(v)),
    };
    let p = match text.as_str() {
        "any" => return Ok((None, None)),
        "tcp" => RuleProtocol::Tcp,
        "udp" => RuleProtocol::Udp,
        "icmp" => RuleProtocol::Icmp,
        "icmpv6" | "ipv6-icmp" => RuleProtocol::Icmpv6,
        t => match t.parse::<u8>() {
            Ok(6) => RuleProtocol::Tcp,
            Ok(17) => RuleProtocol::Udp,
            Ok(1) => RuleProtocol::Icmp,
            Ok(58) => RuleProtocol::Icmpv6,
            Ok(n) if t.bytes().all(|b| b.is_ascii_digit()) => RuleProtocol::Number(n),
            _ => return Err(bad(&o["protocol"])),
        },
    };
    Ok((Some(p), Some(text)))
}

fn port(o: &Map<String, Value>, field: &str) -> Result<Option<u16>, NeutronError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= 65535 => Ok(Some(v as u16)),
            _ => Err(port_value_text(&n.to_string())),
        },
        Some(Value::String(s)) => match s.trim().parse::<u32>() {
            Ok(v) if v <= 65535 => Ok(Some(v as u16)),
            _ => Err(port_value_text(&shown(s))),
        },
        Some(v) => Err(port_value_text(&shown_value(v))),
    }
}

fn port_value(v: u32) -> NeutronError {
    port_value_text(&v.to_string())
}

fn port_value_text(v: &str) -> NeutronError {
    NeutronError::bad(
        "SecurityGroupInvalidPortValue",
        format!("Invalid value for port {v}."),
    )
}

fn missing(field: &str) -> NeutronError {
    NeutronError::bad(
        "HTTPBadRequest",
        format!("Failed to parse request. Required attribute '{field}' not specified"),
    )
}

fn invalid(field: &str, v: &Value, why: &str) -> NeutronError {
    NeutronError::bad(
        "HTTPBadRequest",
        format!(
            "Invalid input for {field}. Reason: {} {why}.",
            shown_value(v)
        ),
    )
}

/// A user's string in a message: quoted, at most 64 characters, control characters escaped.
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    format!("{cut:?}")
}

fn shown_value(v: &Value) -> String {
    match v {
        Value::String(s) => shown(s),
        other => {
            let t = other.to_string();
            if t.chars().count() > 64 {
                format!("{}…", t.chars().take(64).collect::<String>())
            } else {
                t
            }
        }
    }
}
