//! Request paths: hostile segments (traversals, encodings, raw bytes, very long runs, unknown
//! UUIDs) in every route of the three APIs, with any method.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::stack::Stack;
use crate::strategies::{hostile_string, pct};
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

impl Stack {
    pub(crate) fn path_wire(&self, c: &PathCase) -> Wire {
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
        w
    }
}
