//! Fixed cases: the sizes and depths every run must meet (bodies over `[api] max_body_bytes`,
//! deep nesting, floods, odd tokens), each with the answers it must get.

use serde_json::{json, Value};

use crate::capsules::{base_template, flood, Flood};
use crate::raw_bodies::Target;
use crate::stack::Stack;
use crate::strategies::deep_text;
use crate::wire::{Api, Wire};

/// `[api] max_body_bytes` of zun-api (its default; devstack does not set it).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// A fixed case: what it is, the request, the statuses it may get and what a 2xx creates.
pub(crate) type Fixed = (String, Wire, Vec<u16>, Option<&'static str>);

/// Statuses in words: `400..=499` for a whole range.
pub(crate) fn want_text(want: &[u16]) -> String {
    match (want.first(), want.last()) {
        (Some(a), Some(b)) if want.len() > 3 => format!("{a}..={b}"),
        _ => format!("{want:?}"),
    }
}

impl Stack {
    /// `body` padded with spaces inside its first object to exactly `len` bytes.
    pub(crate) fn padded(valid: &str, len: usize) -> Vec<u8> {
        let pad = len.saturating_sub(valid.len());
        format!("{{{}{}", " ".repeat(pad), &valid[1..]).into_bytes()
    }

    /// The cases with a fixed expectation: what, the request, the acceptable statuses and
    /// what a 2xx creates.
    pub(crate) fn fixed_cases(&self) -> Vec<Fixed> {
        const MARK: &str = "\"\\u0000NUMBER\\u0000\"";
        let mut out = Vec::new();
        let creates = [
            Target::CapsuleCreate,
            Target::GroupCreate,
            Target::RuleCreate,
            Target::VolumeCreate,
        ];
        for t in creates {
            let valid = self.harmless_body(t).to_string().replace(MARK, "1");
            for (len, label) in [
                (MAX_BODY + 1, "1 MiB + 1 byte"),
                (3 * MAX_BODY, "3 MiB"),
                (10 * MAX_BODY, "10 MiB"),
            ] {
                for chunked in [false, true] {
                    let mut w = self.target_wire(t, Self::padded(&valid, len));
                    w.chunked = chunked;
                    w.headers
                        .push(("Content-Type".into(), b"application/json".to_vec()));
                    let how = if chunked {
                        "chunked"
                    } else {
                        "with its length"
                    };
                    out.push((format!("{t:?}: {label} body {how}"), w, vec![413], None));
                }
            }
            // Just under the limit: judged by its content (the capsule's is valid: 202).
            let mut w = self.target_wire(t, Self::padded(&valid, MAX_BODY - 16));
            w.headers
                .push(("Content-Type".into(), b"application/json".to_vec()));
            let (ok, kind): (Vec<u16>, _) = match t {
                Target::CapsuleCreate => (vec![202], Some("capsule")),
                // Its name is the number 1: not a string.
                Target::GroupCreate => (vec![400], None),
                Target::RuleCreate => (vec![404], None),
                _ => (vec![400], None),
            };
            out.push((format!("{t:?}: body just under 1 MiB"), w, ok, kind));
            for depth in [10_000usize, 100_000, 500_000] {
                for object in [false, true] {
                    let mut w = self.target_wire(t, deep_text(depth, object).into_bytes());
                    w.headers
                        .push(("Content-Type".into(), b"application/json".to_vec()));
                    out.push((
                        format!(
                            "{t:?}: {depth} levels of {}",
                            if object { "objects" } else { "arrays" }
                        ),
                        w,
                        // Beyond the body limit the size is refused first.
                        vec![if deep_text(depth, object).len() > MAX_BODY {
                            413
                        } else {
                            400
                        }],
                        None,
                    ));
                }
            }
        }
        let capsule = |t: Value| {
            let mut w = self.wire(
                Api::Capsule,
                "POST",
                b"/v1/capsules",
                Some(json!({"template": t}).to_string().into_bytes()),
            );
            w.headers
                .push(("Content-Type".into(), b"application/json".to_vec()));
            w.headers
                .push(("OpenStack-API-Version".into(), b"container 1.40".to_vec()));
            w
        };
        let mut t = base_template(false, false, false);
        flood(&mut t, Flood::Containers(1000));
        out.push(("1000 containers".into(), capsule(t), vec![400], None));
        let mut t = base_template(false, false, false);
        t["metadata"]["labels"]["big"] = Value::String("x".repeat(MAX_BODY - 2000));
        out.push((
            "a label value of almost 1 MiB".into(),
            capsule(t),
            vec![400],
            None,
        ));
        let mut t = base_template(false, false, false);
        t["spec"]["containers"][0]["env"] =
            Value::Object((0..20_000).map(|i| (format!("V{i}"), json!("x"))).collect());
        out.push((
            "20000 environment variables".into(),
            capsule(t),
            vec![400],
            None,
        ));
        let inner = deep_text(200_000, false);
        out.push((
            "a template string holding 200000 levels".into(),
            capsule(Value::String(inner)),
            vec![400],
            None,
        ));
        // Tokens and versions: refused, never a 5xx.
        let mut w = self.wire(Api::Capsule, "GET", b"/v1/capsules", None);
        w.headers = vec![("X-Auth-Token".into(), b"'; DROP TABLE tokens; --".to_vec())];
        out.push(("a garbage token".into(), w, vec![401], None));
        let mut w = self.wire(Api::Volume, "GET", b"/v3/volumes", None);
        w.headers = vec![("X-Auth-Token".into(), vec![b'a'; 60_000])];
        out.push(("a 60 kB token".into(), w, (400..500).collect(), None));
        let mut w = self.wire(Api::Network, "GET", b"/v2.0/security-groups", None);
        w.headers.push(("X-Auth-Token".into(), b"second".to_vec()));
        out.push(("two tokens".into(), w, (200..500).collect(), None));
        out
    }
}
