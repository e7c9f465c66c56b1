//! A container's `securityContext`, as Kubernetes spells it, limited to what capsules offer:
//! `{capabilities: {add: ["NET_RAW"]}}`, the one capability a container may ask for on top of
//! the default set (podman's, which leaves `CAP_NET_RAW` out). Whether the caller may have it is
//! the API's policy (`capsule:create:net_raw`), not the template's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::{index, join, quote, Sink};
use super::scalars::{array, object_or_null, string, unexpected};

/// `securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityContext {
    /// `capabilities`.
    #[serde(default)]
    pub capabilities: Capabilities,
}

/// `securityContext.capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `add`: capabilities on top of the default set, each once.
    #[serde(default)]
    pub add: Vec<Capability>,
}

/// A capability a container may add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Capability {
    /// `NET_RAW`: raw and packet sockets (busybox's `ping`, `tcpdump`, ...).
    #[serde(rename = "NET_RAW")]
    NetRaw,
}

impl Capability {
    /// The template spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::NetRaw => "NET_RAW",
        }
    }
}

impl SecurityContext {
    /// Whether it adds `cap`.
    pub fn adds(&self, cap: Capability) -> bool {
        self.capabilities.add.contains(&cap)
    }
}

/// Objects of this part have at most this many keys (there are only one or two good ones).
const MAX_KEYS: usize = 8;

/// `securityContext`: null (none) or `{capabilities: null | {add: null | [..]}}`; any other
/// key, or a capability other than `NET_RAW`, is an error at its path.
pub(crate) fn security_context(v: &Value, path: &str, sink: &mut Sink) -> Option<SecurityContext> {
    let obj = object_or_null(v, MAX_KEYS, path, sink)?;
    let mut out = SecurityContext::default();
    for (key, val) in obj {
        let p = join(path, key);
        match key.as_str() {
            "capabilities" => out.capabilities = capabilities(val, &p, sink),
            _ => unexpected(&p, sink),
        }
    }
    Some(out)
}

fn capabilities(v: &Value, path: &str, sink: &mut Sink) -> Capabilities {
    let mut out = Capabilities::default();
    let Some(obj) = object_or_null(v, MAX_KEYS, path, sink) else {
        return out;
    };
    for (key, val) in obj {
        let p = join(path, key);
        match key.as_str() {
            "add" if val.is_null() => {}
            "add" => out.add = add(val, &p, sink),
            _ => unexpected(&p, sink),
        }
    }
    out
}

fn add(v: &Value, path: &str, sink: &mut Sink) -> Vec<Capability> {
    let mut out = Vec::new();
    let Some(items) = array(v, path, sink) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(s) = string(item, &p, sink) else {
            continue;
        };
        let cap = match s {
            "NET_RAW" => Capability::NetRaw,
            _ => {
                sink.add(
                    &p,
                    format!("capability {} cannot be added: only NET_RAW can", quote(s)),
                );
                continue;
            }
        };
        if !out.contains(&cap) {
            out.push(cap);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{parse_template, Limits};
    use super::*;
    use serde_json::json;

    fn with(security_context: Value) -> Value {
        json!({"kind": "capsule", "metadata": {}, "spec": {
            "initContainers": [{"image": "busybox"}],
            "containers": [{"image": "busybox"},
                           {"image": "busybox", "securityContext": security_context}]}})
    }

    fn errors(t: Value) -> Vec<String> {
        let e = parse_template(&t, &Limits::default()).expect_err("refused");
        e.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn net_raw_is_added_to_that_container_only() {
        let cases = [
            json!({"capabilities": {"add": ["NET_RAW"]}}),
            json!({"capabilities": {"add": ["NET_RAW", "NET_RAW"]}}),
        ];
        for sc in cases {
            let t = parse_template(&with(sc.clone()), &Limits::default()).expect("valid");
            assert!(t.containers[1].adds_net_raw(), "{sc}");
            assert!(!t.containers[0].adds_net_raw());
            assert!(!t.init_containers[0].adds_net_raw());
            let caps = &t.containers[1].security_context.as_ref().unwrap();
            assert_eq!(caps.capabilities.add, [Capability::NetRaw]);
        }
        for nothing in [
            json!(null),
            json!({}),
            json!({"capabilities": null}),
            json!({"capabilities": {"add": null}}),
            json!({"capabilities": {"add": []}}),
        ] {
            let t = parse_template(&with(nothing.clone()), &Limits::default()).expect("valid");
            assert!(!t.containers[1].adds_net_raw(), "{nothing}");
        }
    }

    #[test]
    fn anything_else_is_refused_at_its_path() {
        let p = "spec.containers[1].securityContext";
        for (sc, want) in [
            (
                json!({"capabilities": {"add": ["SYS_ADMIN"]}}),
                format!("{p}.capabilities.add[0]: capability \"SYS_ADMIN\" cannot be added: only NET_RAW can"),
            ),
            (
                json!({"capabilities": {"add": ["net_raw"]}}),
                format!("{p}.capabilities.add[0]: capability \"net_raw\" cannot be added: only NET_RAW can"),
            ),
            (
                json!({"capabilities": {"add": [1]}}),
                format!("{p}.capabilities.add[0]: must be a string (got integer)"),
            ),
            (
                json!({"capabilities": {"add": "NET_RAW"}}),
                format!("{p}.capabilities.add: must be an array (got string)"),
            ),
            (
                json!({"capabilities": {"drop": ["ALL"]}}),
                format!("{p}.capabilities.drop: unexpected property"),
            ),
            (
                json!({"privileged": true}),
                format!("{p}.privileged: unexpected property"),
            ),
            (json!("NET_RAW"), format!("{p}: must be an object or null (got string)")),
        ] {
            assert_eq!(errors(with(sc.clone())), [want], "{sc}");
        }
    }

    #[test]
    fn a_template_without_it_serializes_as_before() {
        let t = parse_template(&with(json!(null)), &Limits::default()).unwrap();
        let json = serde_json::to_value(&t.containers[1]).unwrap();
        assert!(json.get("security_context").is_none(), "{json}");
        let t = parse_template(
            &with(json!({"capabilities": {"add": ["NET_RAW"]}})),
            &Limits::default(),
        )
        .unwrap();
        let json = serde_json::to_value(&t).unwrap();
        let back: super::super::CapsuleTemplate = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }
}
