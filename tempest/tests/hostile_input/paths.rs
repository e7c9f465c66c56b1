//! Request paths: hostile segments (traversals, encodings, raw bytes, very long runs, unknown
//! UUIDs) in every route of the three APIs, with any method; a segment that can name nothing
//! makes the request a certain 4xx.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::stack::Stack;
use crate::strategies::{hostile_string, pct};
use crate::verdict::Verdict;
use crate::wire::{Api, Wire};

/// Routes with hostile segments: `{x}`, `{y}` generated, `{p}` demo's project.
pub(crate) const ROUTES: &[(Api, &str)] = &[
    (Api::Capsule, "/v1/capsules/{x}"),
    (Api::Capsule, "/v1/capsules/{x}/{y}"),
    (Api::Capsule, "/v1/containers/{x}/logs"),
    (Api::Capsule, "/v1/hosts/{x}"),
    (Api::Capsule, "/v1/{x}"),
    (Api::Capsule, "/{x}"),
    (Api::Capsule, "/{x}/capsules"),
    (Api::Network, "/v2.0/security-groups/{x}"),
    (Api::Network, "/v2.0/security-group-rules/{x}"),
    (Api::Network, "/v2.0/{x}"),
    (Api::Network, "/{x}/security-groups"),
    (Api::Network, "/{x}"),
    (Api::Volume, "/v3/{p}/volumes/{x}"),
    (Api::Volume, "/v3/{p}/volumes/{x}/metadata/{y}"),
    (Api::Volume, "/v3/{p}/volumes/{x}/action"),
    (Api::Volume, "/v3/{x}/volumes"),
    (Api::Volume, "/v3/{x}/volumes/{y}"),
    (Api::Volume, "/v3/{p}/os-quota-sets/{x}"),
    (Api::Volume, "/v3/{p}/types/{x}"),
    (Api::Volume, "/v3/{x}"),
    (Api::Volume, "/{x}"),
];

pub(crate) const PATH_NASTY: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "%2E%2E%2F%2E%2E",
    "..%2f..%2fetc%2fpasswd",
    "../../../../etc/passwd",
    "%00",
    "a%00b",
    "%",
    "%zz",
    "%ff%fe",
    "%c0%ae%c0%ae",
    "~",
    ";",
    ";jsessionid=1",
    "@",
    "*",
    "default",
    "",
    "%20",
    "+",
    "%2F",
    "\\..\\..",
    "detail",
    "summary",
    "action",
    "metadata",
    "null",
    "-1",
    "0",
    "%0d%0aX-Injected:%20yes",
    "%u002e",
    "v1",
    "v2.0",
    "v3",
    "healthcheck",
    "capsules",
    "security-groups",
    "__DEFAULT__",
    "%7B%7B7*7%7D%7D",
    "'%20OR%201=1--",
];

#[derive(Clone, Debug)]
pub(crate) enum Segment {
    /// Sent as it is.
    Nasty(&'static str),
    /// Any string, percent-encoded.
    Encoded(String),
    /// Any string, its UTF-8 bytes sent unencoded.
    Raw(String),
    /// A long run of one byte.
    Long(usize, u8),
    /// A UUID nothing has.
    Uuid(u128),
}

impl Segment {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Segment::Nasty(s) => s.as_bytes().to_vec(),
            Segment::Encoded(s) => pct(s).into_bytes(),
            Segment::Raw(s) => s.as_bytes().to_vec(),
            Segment::Long(n, b) => vec![*b; *n],
            Segment::Uuid(u) => uuid::Uuid::from_u128(*u).to_string().into_bytes(),
        }
    }
}

pub(crate) fn segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        5 => select(PATH_NASTY).prop_map(Segment::Nasty),
        2 => hostile_string().prop_map(Segment::Encoded),
        1 => vec(any::<char>(), 1..12)
            .prop_map(|c| Segment::Raw(c.into_iter().filter(|c| !c.is_ascii_whitespace()).collect())),
        1 => (select(&[256usize, 4096, 9000, 65_000, 100_000, 500_000][..]), select(&[b'a', b'.', b'/'][..]))
            .prop_map(|(n, b)| Segment::Long(n, b)),
        1 => any::<u128>().prop_map(Segment::Uuid),
    ]
}

#[derive(Clone, Debug)]
pub(crate) struct PathCase {
    pub(crate) route: usize,
    pub(crate) method: &'static str,
    pub(crate) x: Segment,
    pub(crate) y: Segment,
    pub(crate) trailing_slash: bool,
}

pub(crate) fn path_case() -> impl Strategy<Value = PathCase> {
    (
        0..ROUTES.len(),
        prop_oneof![
            6 => Just("GET"),
            2 => Just("DELETE"),
            1 => select(&["PUT", "POST", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"][..]),
        ],
        segment(),
        segment(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(route, method, x, y, trailing_slash)| PathCase {
            route,
            method,
            x,
            y,
            trailing_slash,
        })
}

/// Percent-decodes `b` (a malformed escape stays as it is).
pub(crate) fn pct_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or_default());
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

impl Segment {
    /// Whether no resource, collection, version or project can be named by this segment, so
    /// a path holding it is a 4xx whatever its route and method: a UUID nothing has, a run of
    /// 256 and more letters or dots, malformed percent-encoding, or (decoded) characters no
    /// id, name or collection has (ids are UUIDs, names Zun's pattern, hosts host names).
    /// A segment that may route elsewhere once a server normalizes it (empty, dot segments,
    /// `/` raw or encoded, `;` parameters, backslashes, `?` and `#`) is left to the API.
    pub(crate) fn names_nothing(&self) -> bool {
        let raw = match self {
            Segment::Uuid(_) => return true,
            Segment::Long(_, b) => return *b != b'/',
            _ => self.bytes(),
        };
        if raw.iter().any(|b| b"/?#;\\".contains(b)) {
            return false;
        }
        let hex_at = |i: usize| raw.get(i).is_some_and(u8::is_ascii_hexdigit);
        let malformed = raw
            .iter()
            .enumerate()
            .any(|(i, b)| *b == b'%' && !(hex_at(i + 1) && hex_at(i + 2)));
        let decoded = pct_decode(&raw);
        let Ok(text) = std::str::from_utf8(&decoded) else {
            return true;
        };
        if malformed {
            return true;
        }
        if text.is_empty() || text == "." || text == ".." || text.contains(['/', ';', '\\']) {
            return false;
        }
        !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.~-".contains(&b))
    }
}

impl Stack {
    /// The request of a path case, and what it must get: a 4xx when a segment names nothing
    /// (the metadata key of `/metadata/{y}` aside: keys may hold spaces and `:`).
    pub(crate) fn path_wire(&self, c: &PathCase) -> (Wire, Verdict) {
        let (api, route) = ROUTES[c.route];
        let route = route.replace("{p}", &self.project);
        let mut target = Vec::new();
        let mut rest = route.as_str();
        while let Some(i) = rest.find('{') {
            target.extend_from_slice(&rest.as_bytes()[..i]);
            let seg = if rest[i..].starts_with("{x}") {
                &c.x
            } else {
                &c.y
            };
            target.extend_from_slice(&seg.bytes());
            rest = &rest[i + 3..];
        }
        target.extend_from_slice(rest.as_bytes());
        if c.trailing_slash {
            target.push(b'/');
        }
        let body = matches!(c.method, "PUT" | "POST" | "PATCH").then(|| b"{}".to_vec());
        let mut w = self.wire(api, c.method, &target, body);
        w.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        let (_, template) = ROUTES[c.route];
        let judged_segments: Vec<&Segment> = [("{x}", &c.x), ("{y}", &c.y)]
            .into_iter()
            .filter(|(p, _)| {
                template.contains(p) && !(*p == "{y}" && template.ends_with("/metadata/{y}"))
            })
            .map(|(_, s)| s)
            .collect();
        let judged = match judged_segments.iter().find(|s| s.names_nothing()) {
            Some(s) => Err(format!("a path segment that names nothing: {s:?}")),
            None => Ok(()),
        };
        let kinds = vec![
            format!("{} {template}", c.method),
            format!(
                "segments {}",
                judged_segments
                    .iter()
                    .map(|s| format!("{s:?}")
                        .split('(')
                        .next()
                        .unwrap_or_default()
                        .to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ];
        (w, Verdict::of(judged, kinds))
    }
}
