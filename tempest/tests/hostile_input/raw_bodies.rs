//! Raw bodies: not JSON, wrong types, truncated, BOMs, UTF-16, deep, big numbers, duplicate
//! keys and odd content types, sent to every create, update and action, each judged by what
//! its bytes are before what they hold.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::capsules::base_template;
use crate::oracle::{has_control, Judged};
use crate::oracle_network::{group_body, rule_body, Caller};
use crate::oracle_template::capsule_create;
use crate::oracle_volume::volume_create;
use crate::stack::Stack;
use crate::strategies::{deep_text, hostile_string, Deeps};
use crate::verdict::Verdict;
use crate::volumes::NAME_FOR_VOLUMES;
use crate::wire::{find, Api, Wire};
use crate::{FOREIGN_PROJECT, NOWHERE, NO_GROUP};

/// Where raw bodies go.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    CapsuleCreate,
    GroupCreate,
    GroupUpdate,
    RuleCreate,
    VolumeCreate,
    VolumeAction,
}

impl Target {
    /// The API that serves it.
    pub(crate) fn api(self) -> Api {
        match self {
            Target::CapsuleCreate => Api::Capsule,
            Target::GroupCreate | Target::GroupUpdate | Target::RuleCreate => Api::Network,
            Target::VolumeCreate | Target::VolumeAction => Api::Volume,
        }
    }
}

pub(crate) const TARGETS: &[Target] = &[
    Target::CapsuleCreate,
    Target::GroupCreate,
    Target::GroupUpdate,
    Target::RuleCreate,
    Target::VolumeCreate,
    Target::VolumeAction,
];

#[derive(Clone, Debug)]
pub(crate) enum RawBody {
    Text(String),
    Bytes(Vec<u8>),
    Truncated(usize),
    Utf8Bom,
    Utf16 {
        little: bool,
        bom: bool,
    },
    Deep {
        depth: usize,
        object: bool,
        inside: bool,
    },
    DuplicateKeys,
    Number(&'static str),
    Empty,
    Whitespace,
    Trailing(String),
    Chunked,
    NulInside,
    InvalidUtf8InString,
}

#[derive(Clone, Debug)]
pub(crate) struct RawCase {
    pub(crate) target: Target,
    pub(crate) body: RawBody,
    pub(crate) content_type: Option<&'static str>,
}

pub(crate) const CONTENT_TYPES: &[&str] = &[
    "application/json; charset=utf-16",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "APPLICATION/JSON",
    "application/jsonx",
    "application/vnd.openstack.volume+json",
    "",
    "application/json\u{1}",
    "*/*",
    "application/json, text/plain",
];

pub(crate) fn raw_case() -> impl Strategy<Value = RawCase> {
    let body = prop_oneof![
        2 => prop_oneof![
            any::<String>(),
            select(&["<capsule/>", "template=x&kind=capsule", "kind: capsule\nspec: {}", "{", "}", "[", "\"", "nul", "tru", "{\"a\"}", "{'a': 1}", "{a: 1}"][..]).prop_map(str::to_owned),
        ].prop_map(RawBody::Text),
        1 => vec(any::<u8>(), 0..256).prop_map(RawBody::Bytes),
        3 => any::<usize>().prop_map(RawBody::Truncated),
        1 => Just(RawBody::Utf8Bom),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(little, bom)| RawBody::Utf16 { little, bom }),
        2 => (
            select(&[127usize, 128, 129, 1000, 10_000, 100_000, 400_000][..]),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(depth, object, inside)| RawBody::Deep { depth, object, inside }),
        1 => Just(RawBody::DuplicateKeys),
        2 => select(&["1e400", "-1e400", "-", "01", "1.", ".5", "NaN", "Infinity", "-Infinity", "0x10", "1e", "+1", "18446744073709551616", "-9223372036854775809", "1e-400"][..])
            .prop_map(RawBody::Number),
        1 => Just(RawBody::Empty),
        1 => Just(RawBody::Whitespace),
        1 => hostile_string().prop_map(RawBody::Trailing),
        1 => Just(RawBody::Chunked),
        1 => Just(RawBody::NulInside),
        1 => Just(RawBody::InvalidUtf8InString),
    ];
    (
        select(TARGETS),
        body,
        prop_oneof![6 => Just(Some("application/json")), 2 => select(CONTENT_TYPES).prop_map(Some), 1 => Just(None)],
    )
        .prop_map(|(target, body, content_type)| RawCase {
            target,
            body,
            content_type,
        })
}

impl Stack {
    /// A valid body for `t` that creates nothing (nowhere zone, foreign project, no group);
    /// `NUMBER` marks a field whose raw number text a case may replace.
    pub(crate) fn harmless_body(&self, t: Target) -> Value {
        match t {
            Target::CapsuleCreate => {
                let mut tpl = base_template(false, false, false);
                tpl["spec"]["containers"][0]["resources"] =
                    json!({"requests": {"cpu": "\u{0}NUMBER\u{0}"}});
                json!({"template": tpl})
            }
            Target::GroupCreate => json!({"security_group": {
                "name": "\u{0}NUMBER\u{0}", "description": "hostile", "tenant_id": FOREIGN_PROJECT}}),
            Target::GroupUpdate => json!({"security_group": {"description": "\u{0}NUMBER\u{0}"}}),
            Target::RuleCreate => json!({"security_group_rule": {
                "security_group_id": NO_GROUP, "direction": "ingress", "protocol": "tcp",
                "port_range_min": "\u{0}NUMBER\u{0}", "port_range_max": 9000}}),
            Target::VolumeCreate => json!({"volume": {
                "size": "\u{0}NUMBER\u{0}", "name": NAME_FOR_VOLUMES, "availability_zone": NOWHERE}}),
            Target::VolumeAction => json!({"os-extend": {"new_size": "\u{0}NUMBER\u{0}"}}),
        }
    }

    pub(crate) fn target_wire(&self, t: Target, body: Vec<u8>) -> Wire {
        let p = &self.project;
        let (api, method, path, version) = match t {
            Target::CapsuleCreate => (
                Api::Capsule,
                "POST",
                "/v1/capsules".to_owned(),
                Some("container 1.40"),
            ),
            Target::GroupCreate => (
                Api::Network,
                "POST",
                "/v2.0/security-groups".to_owned(),
                None,
            ),
            Target::GroupUpdate => (
                Api::Network,
                "PUT",
                format!(
                    "/v2.0/security-groups/{}",
                    self.scratch_group.lock().unwrap()
                ),
                None,
            ),
            Target::RuleCreate => (
                Api::Network,
                "POST",
                "/v2.0/security-group-rules".to_owned(),
                None,
            ),
            Target::VolumeCreate => (
                Api::Volume,
                "POST",
                format!("/v3/{p}/volumes"),
                Some("volume 3.70"),
            ),
            Target::VolumeAction => (
                Api::Volume,
                "POST",
                format!("/v3/{p}/volumes/{NO_GROUP}/action"),
                Some("volume 3.70"),
            ),
        };
        let mut w = self.wire(api, method, path.as_bytes(), Some(body));
        if let Some(v) = version {
            w.headers
                .push(("OpenStack-API-Version".into(), v.as_bytes().to_vec()));
        }
        w
    }

    /// What the contract says of a valid body of `t` (a raw case may leave it as it is).
    fn target_judged(&self, t: Target, body: &Value) -> Judged {
        let (d, scratch) = (Deeps::default(), self.scratch_group.lock().unwrap().clone());
        let caller = Caller {
            project: &self.project,
            group: &scratch,
        };
        match t {
            Target::CapsuleCreate => capsule_create(body, &d, false),
            Target::GroupCreate => group_body(body, &d, false, &caller),
            Target::GroupUpdate => group_body(body, &d, true, &caller),
            Target::RuleCreate => rule_body(body, &d, &caller),
            Target::VolumeCreate => volume_create(body, &d),
            Target::VolumeAction => Err("volume actions are all refused".into()),
        }
    }

    /// What a raw case must get: its content type, then its bytes, then (when they are the
    /// valid body, or JSON) what they hold.
    fn raw_judged(&self, c: &RawCase, sent: &[u8], valid: &str) -> Judged {
        content_type(c.target.api(), c.content_type)?;
        let as_valid = || {
            let v: Value = serde_json::from_str(valid).expect("the valid body is JSON");
            self.target_judged(c.target, &v)
        };
        match &c.body {
            RawBody::Truncated(_) => Err("a truncated JSON text".into()),
            RawBody::Empty | RawBody::Whitespace => Err("no JSON text".into()),
            RawBody::NulInside => Err("a NUL byte outside a JSON string".into()),
            RawBody::Utf16 { .. } => Err("JSON in UTF-16 (RFC 8259: UTF-8)".into()),
            RawBody::Deep { depth, .. } => {
                Err(format!("{depth} levels where the resource belongs"))
            }
            RawBody::Number(n) if NUMBERS_IN_GRAMMAR.contains(n) => {
                Err(format!("the number {n}, out of its field's range"))
            }
            RawBody::Number(n) => Err(format!("{n:?}, not a JSON number")),
            RawBody::InvalidUtf8InString if sent != valid.as_bytes() => {
                Err("invalid UTF-8 in a string".into())
            }
            RawBody::Trailing(t) if !t.chars().all(|c| " \t\r\n".contains(c)) => {
                Err("text after the JSON value".into())
            }
            // RFC 8259 lets a parser ignore a BOM; which of two equal keys wins is the
            // parser's choice, and either one is invalid when the valid body is.
            RawBody::Utf8Bom
            | RawBody::DuplicateKeys
            | RawBody::Chunked
            | RawBody::Trailing(_)
            | RawBody::InvalidUtf8InString => as_valid(),
            RawBody::Text(_) | RawBody::Bytes(_) => match serde_json::from_slice::<Value>(sent) {
                Ok(v) => self.target_judged(c.target, &v),
                Err(_) => Err("not JSON".into()),
            },
        }
    }

    /// The request of a raw case, and what it must get.
    pub(crate) fn raw_wire(&self, c: &RawCase) -> (Wire, Verdict) {
        const MARK: &str = "\"\\u0000NUMBER\\u0000\"";
        let valid = self.harmless_body(c.target).to_string().replace(MARK, "1");
        let mut chunked = false;
        let body: Vec<u8> = match &c.body {
            RawBody::Text(s) => s.clone().into_bytes(),
            RawBody::Bytes(b) => b.clone(),
            RawBody::Truncated(n) => valid.as_bytes()[..n % valid.len()].to_vec(),
            RawBody::Utf8Bom => [&b"\xEF\xBB\xBF"[..], valid.as_bytes()].concat(),
            RawBody::Utf16 { little, bom } => {
                let mut out = Vec::new();
                if *bom {
                    out.extend_from_slice(if *little {
                        &[0xFF, 0xFE]
                    } else {
                        &[0xFE, 0xFF]
                    });
                }
                for u in valid.encode_utf16() {
                    out.extend_from_slice(&if *little {
                        u.to_le_bytes()
                    } else {
                        u.to_be_bytes()
                    });
                }
                out
            }
            RawBody::Deep {
                depth,
                object,
                inside,
            } => {
                let d = deep_text(*depth, *object);
                if *inside {
                    let key = match c.target {
                        Target::CapsuleCreate => "template",
                        Target::GroupCreate | Target::GroupUpdate => "security_group",
                        Target::RuleCreate => "security_group_rule",
                        Target::VolumeCreate => "volume",
                        Target::VolumeAction => "os-extend",
                    };
                    format!("{{\"{key}\": {d}}}").into_bytes()
                } else {
                    d.into_bytes()
                }
            }
            RawBody::DuplicateKeys => {
                // The same top-level key twice: junk first, the valid body last.
                let inner = valid.trim_start_matches('{');
                let key_end = inner.find(':').unwrap_or(0);
                format!("{{{}: [\"junk\"], {inner}", &inner[..key_end]).into_bytes()
            }
            RawBody::Number(n) => self
                .harmless_body(c.target)
                .to_string()
                .replace(MARK, n)
                .into_bytes(),
            RawBody::Empty => Vec::new(),
            RawBody::Whitespace => b" \r\n\t ".to_vec(),
            RawBody::Trailing(s) => format!("{valid}{s}").into_bytes(),
            RawBody::Chunked => {
                chunked = true;
                valid.clone().into_bytes()
            }
            RawBody::NulInside => valid.replacen(':', ":\u{0}", 1).into_bytes(),
            RawBody::InvalidUtf8InString => {
                let mut b = valid.clone().into_bytes();
                if let Some(i) = find(&b, b"hostile") {
                    b[i] = 0xC3;
                    b[i + 1] = 0x28;
                }
                b
            }
        };
        let judged = self.raw_judged(c, &body, &valid);
        let kind = format!(
            "{} to {:?} as {:?}",
            format!("{:?}", c.body)
                .split(['(', ' '])
                .next()
                .unwrap_or_default(),
            c.target,
            c.content_type.unwrap_or("no content type")
        );
        let mut w = self.target_wire(c.target, body);
        w.chunked = chunked;
        if let Some(ct) = c.content_type {
            w.headers
                .push(("Content-Type".into(), ct.as_bytes().to_vec()));
        }
        (w, Verdict::of(judged, vec![kind]))
    }
}

/// Numbers of `RawBody::Number` that JSON's grammar has (the others are not JSON); each is out
/// of the range of the field it replaces (cpu, a name, a port, a size), or no number at all.
const NUMBERS_IN_GRAMMAR: &[&str] = &[
    "1e400",
    "-1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "1e-400",
];

/// The `Content-Type` of a body: one that is not JSON is refused (415) by all three APIs, as
/// by Zun, Neutron and Cinder; the capsule API documents that it wants exactly
/// `application/json` (parameters aside) and refuses a body without one. Values with control
/// characters (which RFC 9110 lets a recipient keep) and `+json` types are left to the API.
fn content_type(api: Api, ct: Option<&str>) -> Judged {
    let Some(ct) = ct else {
        return match api {
            Api::Capsule => Err("a body without a Content-Type".into()),
            _ => Ok(()),
        };
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = media == "application/json";
    let maybe_json = json || media.ends_with("+json") || has_control(ct);
    match api {
        Api::Capsule if !json => Err(format!("Content-Type {ct:?}, not application/json")),
        _ if !maybe_json => Err(format!("Content-Type {ct:?}, not JSON")),
        _ => Ok(()),
    }
}
