//! Security groups and rules as Neutron takes them (`docs/security-groups.md`): one resource
//! object under its key, unrecognized attributes refused, names and descriptions of at most
//! 255 characters, rules by Neutron's field and cross-field rules. A member naming another
//! project is refused (403), a rule of a group that does not exist or is not the caller's is
//! 404. Where Neutron is lenient (Python's `int()` on ports and protocols, `netaddr` on
//! prefixes, protocol names this service does not serve) nothing is said.

use serde_json::{Map, Value};

use crate::oracle::{
    digits, integer, object, py_int, shape, string, unexpected, wrong, Judged, PyInt, Shape,
};
use crate::strategies::Deeps;

/// Who is asking, and the one group of theirs the generated bodies may name.
pub(crate) struct Caller<'a> {
    /// demo's project id.
    pub(crate) project: &'a str,
    /// The scratch group's id.
    pub(crate) group: &'a str,
}

/// The object under `key` of a body that must hold only it.
pub(crate) fn resource<'a>(
    body: &'a Value,
    d: &Deeps,
    key: &str,
) -> Result<&'a Map<String, Value>, String> {
    let top = object(body, d, "body")?;
    if let Some(k) = top.keys().find(|k| *k != key) {
        return Err(unexpected("body", k));
    }
    object(top.get(key).ok_or(format!("body.{key}: missing"))?, d, key)
}

/// A name or description: a string of at most 255 characters (null is left to the API).
fn text(v: &Value, d: &Deeps, p: &str) -> Judged {
    match shape(v, d) {
        Shape::Json(Value::Null) => Ok(()),
        Shape::Json(Value::String(s)) if s.chars().count() <= 255 => Ok(()),
        Shape::Json(Value::String(_)) => Err(format!("{p}: longer than 255 characters")),
        _ => Err(wrong(v, d, p, "a string")),
    }
}

/// `tenant_id` / `project_id`: a member naming only other projects than their own is refused
/// (403). Left to the API, though Neutron refuses them (400): an id that is not a string, and
/// the two naming different projects; this service ignores the one and takes `project_id`
/// over `tenant_id` in the other (leniencies the run reports under their edit kinds).
fn owner(o: &Map<String, Value>, d: &Deeps, what: &str, c: &Caller<'_>) -> Judged {
    let named: Vec<&str> = ["tenant_id", "project_id"]
        .iter()
        .filter_map(|k| match shape(o.get(*k)?, d) {
            Shape::Json(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
        .collect();
    if !named.is_empty() && named.iter().all(|p| *p != c.project) {
        Err(format!("{what}.tenant_id: another project"))
    } else {
        Ok(())
    }
}

/// `POST /v2.0/security-groups`, or (`update`) `PUT` of the scratch group.
pub(crate) fn group_body(body: &Value, d: &Deeps, update: bool, c: &Caller<'_>) -> Judged {
    let o = resource(body, d, "security_group")?;
    let allowed: &[&str] = if update {
        &["name", "description"]
    } else {
        &["name", "description", "tenant_id", "project_id", "stateful"]
    };
    for (k, v) in o {
        let p = format!("security_group.{k}");
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{p}: unrecognized attribute"));
        }
        match k.as_str() {
            "name" | "description" => text(v, d, &p)?,
            "stateful" if v == &Value::Bool(false) => {
                return Err(format!("{p}: stateless groups are refused"))
            }
            _ => {}
        }
    }
    owner(o, d, "security_group", c)?;
    if o.get("name").and_then(Value::as_str) == Some("default") {
        return Err("security_group.name: default (there is one, and it is not this)".into());
    }
    if update && !o.contains_key("name") && !o.contains_key("description") {
        return Err("security_group: an update that changes nothing".into());
    }
    Ok(())
}

/// What a rule field is: certainly this, or left to the API.
#[derive(Clone, Copy, PartialEq)]
enum Known<T> {
    Absent,
    Is(T),
    Unsure,
}

const RULE_KEYS: &[&str] = &[
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

/// Protocol names Neutron takes besides numbers (`any` is no protocol).
const PROTOCOL_NAMES: &[(&str, u8)] = &[
    ("tcp", 6),
    ("udp", 17),
    ("icmp", 1),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("sctp", 132),
    ("dccp", 33),
    ("udplite", 136),
    ("ah", 51),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("vrrp", 112),
];

/// `POST /v2.0/security-group-rules`.
pub(crate) fn rule_body(body: &Value, d: &Deeps, c: &Caller<'_>) -> Judged {
    let o = resource(body, d, "security_group_rule")?;
    if let Some(k) = o.keys().find(|k| !RULE_KEYS.contains(&k.as_str())) {
        return Err(format!("security_group_rule.{k}: unrecognized attribute"));
    }
    let p = |k: &str| format!("security_group_rule.{k}");
    if o.get("security_group_id").and_then(Value::as_str) != Some(c.group) {
        return Err(format!(
            "{}: no group of the caller's",
            p("security_group_id")
        ));
    }
    match o.get("direction").map(|v| shape(v, d)) {
        Some(Shape::Json(Value::String(s))) if s == "ingress" || s == "egress" => {}
        _ => return Err(format!("{}: not ingress or egress", p("direction"))),
    }
    let v4 = match o.get("ethertype").map(|v| shape(v, d)) {
        None | Some(Shape::Json(Value::Null)) => true,
        Some(Shape::Json(Value::String(s))) if s.eq_ignore_ascii_case("ipv4") => true,
        Some(Shape::Json(Value::String(s))) if s.eq_ignore_ascii_case("ipv6") => false,
        _ => return Err(format!("{}: not IPv4 or IPv6", p("ethertype"))),
    };
    let proto = protocol(o.get("protocol"), d, &p("protocol"))?;
    let min = port(o.get("port_range_min"), d, &p("port_range_min"))?;
    let max = port(o.get("port_range_max"), d, &p("port_range_max"))?;
    let prefix = cidr(o.get("remote_ip_prefix"), d, &p("remote_ip_prefix"))?;
    match o.get("remote_group_id") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_str() == Some(c.group) => {}
        Some(_) => {
            return Err(format!(
                "{}: no group of the caller's",
                p("remote_group_id")
            ))
        }
    }
    if let Some(v) = o.get("description") {
        text(v, d, &p("description"))?;
    }
    owner(o, d, "security_group_rule", c)?;
    let remote_group = o.get("remote_group_id").is_some_and(|v| !v.is_null());
    if prefix != Known::Absent && remote_group {
        return Err("security_group_rule: both remote_ip_prefix and remote_group_id".into());
    }
    if let Known::Is(prefix_v4) = prefix {
        if prefix_v4 != v4 {
            return Err("security_group_rule: the prefix's family is not the ethertype".into());
        }
    }
    if proto == Known::Is(58) && v4 {
        return Err("security_group_rule: ICMPv6 with ethertype IPv4".into());
    }
    ports(proto, min, max)
}

/// Neutron's port rules for the protocol.
fn ports(proto: Known<u8>, min: Known<i128>, max: Known<i128>) -> Judged {
    if min == Known::Absent && max == Known::Absent {
        return Ok(());
    }
    let n = match proto {
        Known::Absent => return Err("security_group_rule: ports without a protocol".into()),
        Known::Unsure => return Ok(()),
        Known::Is(n) => n,
    };
    let max_alone = min == Known::Absent;
    if [6, 17, 33, 132, 136].contains(&n) {
        if max_alone {
            return Err("security_group_rule: port_range_max without port_range_min".into());
        }
        if min == Known::Is(0) || max == Known::Is(0) {
            return Err("security_group_rule: port 0".into());
        }
        if let (Known::Is(a), Known::Is(b)) = (min, max) {
            if a > b {
                return Err("security_group_rule: port_range_min above port_range_max".into());
            }
        }
    } else if [1, 58].contains(&n) {
        if [min, max]
            .iter()
            .any(|v| matches!(v, Known::Is(x) if *x > 255))
        {
            return Err("security_group_rule: an ICMP type or code above 255".into());
        }
        if max_alone {
            return Err("security_group_rule: an ICMP code without a type".into());
        }
    }
    Ok(())
}

/// Python's `int()` of `s` (Neutron converts ports and protocols with it).
fn python_int(s: &str, p: &str) -> Result<Known<i128>, String> {
    match py_int(s) {
        PyInt::Is(n) => Ok(Known::Is(n)),
        PyInt::Unsure => Ok(Known::Unsure),
        PyInt::Not => Err(format!("{p}: not a number")),
    }
}

fn protocol(v: Option<&Value>, d: &Deeps, p: &str) -> Result<Known<u8>, String> {
    let number = |n: Known<i128>| match n {
        Known::Is(n) => u8::try_from(n)
            .map(Known::Is)
            .map_err(|_| format!("{p}: not 0..=255")),
        other => Ok(match other {
            Known::Absent => Known::Absent,
            _ => Known::Unsure,
        }),
    };
    let Some(v) = v else {
        return Ok(Known::Absent);
    };
    match shape(v, d) {
        Shape::Json(Value::Null) => Ok(Known::Absent),
        Shape::Json(Value::Bool(_)) => Ok(Known::Unsure),
        Shape::Json(Value::Number(n)) => match integer(v) {
            Some(i) => number(Known::Is(i)),
            None if (0.0..256.0).contains(&n.as_f64().unwrap_or(-1.0)) => Ok(Known::Unsure),
            None => Err(format!("{p}: not 0..=255")),
        },
        Shape::Json(Value::String(s)) => {
            let lower = s.to_lowercase();
            if lower == "any" {
                return Ok(Known::Absent);
            }
            if let Some((_, n)) = PROTOCOL_NAMES.iter().find(|(name, _)| *name == lower) {
                // Served by name here: tcp, udp, icmp and ICMPv6; the others are Neutron's.
                return Ok(if [6, 17, 1, 58].contains(n) {
                    Known::Is(*n)
                } else {
                    Known::Unsure
                });
            }
            match python_int(s, p)? {
                Known::Is(n) if s.bytes().all(|b| b.is_ascii_digit()) => number(Known::Is(n)),
                Known::Is(n) if !(0..=255).contains(&n) => Err(format!("{p}: not 0..=255")),
                _ => Ok(Known::Unsure),
            }
        }
        _ => Err(wrong(v, d, p, "a protocol")),
    }
}

fn port(v: Option<&Value>, d: &Deeps, p: &str) -> Result<Known<i128>, String> {
    let Some(v) = v else {
        return Ok(Known::Absent);
    };
    let n = match shape(v, d) {
        Shape::Json(Value::Null) => return Ok(Known::Absent),
        Shape::Json(Value::Number(n)) => match integer(v) {
            Some(i) => Known::Is(i),
            None if (0.0..65536.0).contains(&n.as_f64().unwrap_or(-1.0)) => Known::Unsure,
            None => return Err(format!("{p}: not 0..=65535")),
        },
        Shape::Json(Value::String(s)) => python_int(s, p)?,
        _ => return Err(wrong(v, d, p, "a port")),
    };
    match n {
        Known::Is(x) if !(0..=65535).contains(&x) => Err(format!("{p}: not 0..=65535")),
        other => Ok(other),
    }
}

/// `remote_ip_prefix`: `Is(v4)` when the family is certain.
fn cidr(v: Option<&Value>, d: &Deeps, p: &str) -> Result<Known<bool>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Known::Absent);
    };
    let s = string(v, d, p)?;
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let notation = |c: char| c.is_ascii_hexdigit() || ".:x%".contains(c);
    if addr.is_empty()
        || s.len() > 100
        || s.chars().any(char::is_whitespace)
        || !addr.chars().all(notation)
    {
        return Err(format!("{p}: not an IP prefix"));
    }
    let len = match len {
        None => None,
        Some(l) => match digits(l) {
            Some(n) if l.len() <= 3 => Some(n),
            _ => return Err(format!("{p}: a prefix length that is not a number")),
        },
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if len.is_some_and(|l| l > max) {
                return Err(format!("{p}: a prefix length over {max}"));
            }
            Ok(Known::Is(ip.is_ipv4()))
        }
        Err(_) => Ok(Known::Unsure),
    }
}
