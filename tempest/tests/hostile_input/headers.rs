//! Headers: tokens, forged bearer JWTs, hosts, versions and encodings on every list (a
//! request without demo's token, or with a Host or Content-Length RFC 9112 refuses, is a
//! certain 4xx), and the check that spoofed identity headers are not believed.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::oracle::{digits, Judged};
use crate::queries::LISTS;
use crate::stack::Stack;
use crate::strategies::{deep_text, edge_number, hostile_string, hostile_value, replace_marks};
use crate::verdict::Verdict;
use crate::wire::{clip, Api, Outcome, Wire};
use crate::FOREIGN_PROJECT;

/// Stands for the OpenID Connect issuer the stack trusts, in generated JWT claims.
pub(crate) const ISSUER: &str = "\u{0}ISSUER\u{0}";

/// RFC 4648 base64url without padding.
pub(crate) fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len() * 4 / 3 + 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A bearer token: a forged JWS (header, claims, signature), one with a deeply nested header,
/// or any string.
#[derive(Clone, Debug)]
pub(crate) enum Bearer {
    Jwt {
        header: Value,
        claims: Value,
        signature: String,
    },
    DeepHeader(usize),
    Raw(String),
}

pub(crate) fn bearer() -> BoxedStrategy<Bearer> {
    let alg = prop_oneof![
        3 => select(&["RS256", "ES256", "PS256", "EdDSA", "none", "None", "HS256", "HS512", "ES512", "RS256 ", "rs256", ""][..])
            .prop_map(Value::from),
        1 => hostile_value(),
    ];
    let kid = prop_oneof![
        2 => select(&["kid-unknown", "../../../../dev/null", "' OR 1=1 --", "", "\u{0}"][..]).prop_map(Value::from),
        1 => hostile_value(),
        1 => Just(Value::Null),
    ];
    let typ = select(&["JWT", "at+jwt", "application/at+jwt", "x", "", "JWT\u{0}"][..]);
    let header = (
        alg,
        kid,
        typ,
        prop::option::weighted(0.2, hostile_value()),
        any::<bool>(),
    )
        .prop_map(|(alg, kid, typ, crit, jku)| {
            let mut h = json!({"alg": alg, "kid": kid, "typ": typ});
            if let Some(c) = crit {
                h["crit"] = c;
            }
            if jku {
                // Only ever loopback: a service that fetched it would reach nothing.
                h["jku"] = json!("http://127.0.0.1:1/jwks.json");
                h["x5u"] = json!("http://127.0.0.1:1/cert.pem");
            }
            h
        });
    let claims = (
        prop_oneof![3 => Just(Value::from(ISSUER)), 1 => hostile_value()],
        prop_oneof![Just(Value::from("http://127.0.0.1:9517")), hostile_value()],
        edge_number(),
        hostile_value(),
    )
        .prop_map(|(iss, aud, exp, sub)| {
            json!({"iss": iss, "aud": aud, "exp": exp, "iat": 0, "nbf": exp,
                   "sub": sub, "client_id": "capsule-ci", "scope": "capsule"})
        });
    let signature = prop_oneof![
        Just(String::new()),
        vec(any::<u8>(), 0..300).prop_map(|b| b64url(&b)),
        select(&["!!!", "====", ".", "AAAA"][..]).prop_map(str::to_owned),
    ];
    prop_oneof![
        4 => (header, claims, signature).prop_map(|(header, claims, signature)| Bearer::Jwt {
            header,
            claims,
            signature
        }),
        1 => select(&[127usize, 128, 129, 10_000][..]).prop_map(Bearer::DeepHeader),
        1 => hostile_string().prop_map(Bearer::Raw),
        1 => select(&["a.b.c", "..", "....", "e30.e30.", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30."][..])
            .prop_map(|s| Bearer::Raw(s.to_owned())),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
pub(crate) enum Auth {
    Demo,
    Missing,
    Token(String),
    Bearer(Bearer),
    DemoAndBearer(Bearer),
    Scheme(&'static str),
}

#[derive(Clone, Debug)]
pub(crate) enum Host {
    Real,
    Missing,
    Twice,
    Value(String),
}

#[derive(Clone, Debug)]
pub(crate) struct HeaderCase {
    pub(crate) list: usize,
    pub(crate) head: bool,
    pub(crate) auth: Auth,
    pub(crate) host: Host,
    pub(crate) extra: Vec<(&'static str, String)>,
}

/// Headers a client may send, with values aimed at each. (No `Connection`, `Upgrade`,
/// `Transfer-Encoding` or positive `Content-Length`: those would make a correct server wait.)
pub(crate) const EXTRA_HEADERS: &[(&str, &[&str])] = &[
    (
        "Accept-Encoding",
        &[
            "gzip",
            "gzip;q=0",
            "gzip;q=NaN",
            "gzip;q=-1",
            "gzip;q=1e400",
            "*",
            "br, gzip;q=abc",
            "identity;q=0, *;q=0",
            "GZIP;Q=0.5",
        ],
    ),
    (
        "OpenStack-API-Version",
        &[
            "container latest",
            "volume latest",
            "container 1.999999999999",
            "volume 3.4294967296",
            "container -1.1",
            "compute 2.1, container 1.40",
            ",,,",
            "container 1.40 extra",
        ],
    ),
    (
        "X-OpenStack-Request-ID",
        &[
            "req-00000000-0000-0000-0000-000000000000",
            "'; DROP TABLE x; --",
            "req-\u{1b}[31m",
        ],
    ),
    ("X-Roles", &["admin", "admin,member", "service"]),
    (
        "X-Project-Id",
        &["0000000000000000000000000000f00d", "admin"],
    ),
    ("X-User-Id", &["admin", "0"]),
    ("X-Identity-Status", &["Confirmed", "Invalid"]),
    ("X-Service-Roles", &["admin", "service"]),
    ("X-Is-Admin-Project", &["True"]),
    (
        "X-Forwarded-For",
        &["127.0.0.1", "1.1.1.1, 2.2.2.2", "unknown"],
    ),
    ("X-Forwarded-Host", &["evil.example.com", "127.0.0.1:1"]),
    ("X-Forwarded-Proto", &["https", "gopher"]),
    (
        "Forwarded",
        &["for=1.1.1.1;host=evil.example.com;proto=https"],
    ),
    (
        "Content-Type",
        &[
            "application/json",
            "text/plain",
            "application/json; charset=utf-16",
        ],
    ),
    (
        "Content-Length",
        &["0", "-1", "abc", "0, 0", "00", "+0", " 0"],
    ),
    ("Expect", &["100-continue", "evil"]),
    (
        "Accept",
        &[
            "application/xml",
            "*/*",
            "text/html",
            "application/json;q=0",
        ],
    ),
    ("Accept-Language", &["*", "xx-XX", "en;q=abc"]),
    ("Cookie", &["session=1; admin=true"]),
    ("Range", &["bytes=0-1", "bytes=-1", "bytes=999999999999-"]),
    ("If-None-Match", &["*", "\"x\""]),
    ("Origin", &["http://evil.example.com", "null"]),
];

pub(crate) fn header_case() -> impl Strategy<Value = HeaderCase> {
    let auth = prop_oneof![
        3 => Just(Auth::Demo),
        1 => Just(Auth::Missing),
        2 => prop_oneof![
            hostile_string(),
            select(&["", " ", "gAAAAA", "gAAAAABxxxxxxxx", "null", "None"][..]).prop_map(str::to_owned),
        ]
        .prop_map(Auth::Token),
        3 => bearer().prop_map(Auth::Bearer),
        1 => bearer().prop_map(Auth::DemoAndBearer),
        1 => select(&["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer ", "bearer x.y.z", "Bearer  x.y.z", "Negotiate x", "Digest username=admin", "Bearer x.y.z, Bearer a.b.c"][..])
            .prop_map(Auth::Scheme),
    ];
    let host = prop_oneof![
        6 => Just(Host::Real),
        1 => Just(Host::Missing),
        1 => Just(Host::Twice),
        2 => prop_oneof![
            select(&["evil.example.com", "127.0.0.1:1", "[::1]:9517", "localhost:99999", "a b", "ho\u{0}st", "", "127.0.0.1:9517/../../x"][..])
                .prop_map(str::to_owned),
            hostile_string(),
        ]
        .prop_map(Host::Value),
    ];
    let extra = vec(
        select(EXTRA_HEADERS).prop_flat_map(|(name, values)| {
            prop_oneof![
                3 => select(values).prop_map(str::to_owned),
                1 => hostile_string(),
            ]
            .prop_map(move |v| (name, v))
        }),
        0..4,
    );
    (0..LISTS.len(), prop::bool::weighted(0.1), auth, host, extra).prop_map(
        |(list, head, auth, host, extra)| HeaderCase {
            list,
            head,
            auth,
            host,
            extra,
        },
    )
}

/// The name of an enum value's variant (what `Debug` prints before its fields).
fn variant(v: &impl std::fmt::Debug) -> String {
    let text = format!("{v:?}");
    text.split(['(', ' ']).next().unwrap_or_default().to_owned()
}

/// What a header case must get. Without demo's token (none, a forged Keystone token, a
/// forged bearer token, a scheme nobody is known by) a list is a 401. RFC 9112 §6.3 (with RFC
/// 9110 §8.6) makes a request whose `Content-Length` is not digits, or holds two different
/// numbers, a 400.
///
/// RFC 9112 §3.2 also says a server MUST answer 400 to a request with no `Host`, two, or one
/// that is not `host[:port]` ([`host_value`]); hyper, under all three APIs, does not check
/// `Host`, so those are left to the API and show in the report as `host Missing`, `host
/// Twice` and `host Value` (a finding for the APIs, not a verdict this suite can hold them to
/// until they check it).
fn header_judged(c: &HeaderCase) -> Judged {
    match &c.auth {
        Auth::Missing => return Err("no credentials".into()),
        Auth::Token(_) => return Err("a forged Keystone token".into()),
        Auth::Bearer(_) => return Err("a forged bearer token".into()),
        Auth::Scheme(s) => return Err(format!("credentials of nobody: {s:?}")),
        Auth::Demo | Auth::DemoAndBearer(_) => {}
    }
    let mut lengths = Vec::new();
    for (_, v) in c.extra.iter().filter(|(k, _)| *k == "Content-Length") {
        for part in v.split(',') {
            match digits(part.trim_matches([' ', '\t'])) {
                Some(n) => lengths.push(n),
                None => return Err(format!("the Content-Length {v:?}")),
            }
        }
    }
    if lengths.windows(2).any(|w| w[0] != w[1]) {
        return Err("Content-Length headers that differ".into());
    }
    Ok(())
}

/// RFC 9112's `Host`: `uri-host [ ":" port ]`, a reg-name of unreserved characters, escapes
/// and sub-delimiters (an IP literal in brackets is taken as one). Used for the kind only.
fn host_value(h: &str) -> bool {
    if h.starts_with('[') {
        return true;
    }
    let (host, port) = h.rsplit_once(':').unwrap_or((h, ""));
    port.bytes().all(|b| b.is_ascii_digit())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b))
}

impl Stack {
    pub(crate) fn bearer_text(&self, b: &Bearer) -> String {
        let marks = self.marks();
        match b {
            Bearer::Jwt {
                header,
                claims,
                signature,
            } => {
                let mut claims = claims.clone();
                replace_marks(&mut claims, &marks);
                format!(
                    "{}.{}.{signature}",
                    b64url(header.to_string().as_bytes()),
                    b64url(claims.to_string().as_bytes())
                )
            }
            Bearer::DeepHeader(depth) => {
                let header = format!("{{\"alg\":\"RS256\",\"x\":{}}}", deep_text(*depth, false));
                let claims = json!({"iss": marks.iter().find(|(m, _)| *m == ISSUER).map(|(_, v)| v.clone())});
                format!(
                    "{}.{}.AAAA",
                    b64url(header.as_bytes()),
                    b64url(claims.to_string().as_bytes())
                )
            }
            Bearer::Raw(s) => s.clone(),
        }
    }

    /// The request of a header case, and what it must get.
    pub(crate) fn header_wire(&self, c: &HeaderCase) -> (Wire, Verdict) {
        let (api, path, version) = LISTS[c.list];
        let method = if c.head { "HEAD" } else { "GET" };
        let mut w = self.wire(api, method, self.fill(path).as_bytes(), None);
        let demo = w.headers.clone();
        w.headers = match &c.auth {
            Auth::Demo => demo,
            Auth::Missing => Vec::new(),
            Auth::Token(t) => vec![("X-Auth-Token".into(), t.clone().into_bytes())],
            Auth::Bearer(b) => vec![(
                "Authorization".into(),
                format!("Bearer {}", self.bearer_text(b)).into_bytes(),
            )],
            Auth::DemoAndBearer(b) => {
                let mut h = demo;
                h.push((
                    "Authorization".into(),
                    format!("Bearer {}", self.bearer_text(b)).into_bytes(),
                ));
                h
            }
            Auth::Scheme(s) => vec![("Authorization".into(), s.as_bytes().to_vec())],
        };
        if !version.is_empty() {
            w.headers
                .push(("OpenStack-API-Version".into(), version.as_bytes().to_vec()));
        }
        let real = self.authority(api).as_bytes().to_vec();
        match &c.host {
            Host::Real => {}
            Host::Missing => w.own_host = true,
            Host::Twice => {
                w.own_host = true;
                w.headers.push(("Host".into(), real.clone()));
                w.headers
                    .push(("Host".into(), b"evil.example.com".to_vec()));
            }
            Host::Value(h) => {
                w.own_host = true;
                w.headers.push(("Host".into(), h.clone().into_bytes()));
            }
        }
        for (k, v) in &c.extra {
            w.headers.push(((*k).to_owned(), v.clone().into_bytes()));
        }
        let host = match &c.host {
            Host::Value(h) if !host_value(h) => "host Value (not host[:port])".to_owned(),
            h => format!("host {}", variant(h)),
        };
        let mut kinds = vec![format!("auth {}", variant(&c.auth)), host];
        kinds.extend(c.extra.iter().map(|(k, _)| format!("header {k}")));
        (w, Verdict::of(header_judged(c), kinds))
    }

    /// Identity headers a client sends are never believed: demo stays demo, and no token is
    /// no identity, whatever `X-Roles`, `X-Project-Id` or `X-Identity-Status` say.
    pub(crate) fn spoofing(&self) -> Vec<String> {
        let spoof: Vec<(String, Vec<u8>)> = [
            ("X-Identity-Status", "Confirmed"),
            ("X-Roles", "admin,member,reader"),
            ("X-Role", "admin"),
            ("X-Service-Roles", "admin,service"),
            ("X-Is-Admin", "True"),
            ("X-Is-Admin-Project", "True"),
            ("X-User-Id", "admin"),
            ("X-User-Name", "admin"),
            ("X-Project-Id", FOREIGN_PROJECT),
            ("X-Project-Name", "admin"),
            ("X-Tenant-Id", FOREIGN_PROJECT),
            ("X-Domain-Id", "default"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
        .collect();
        let mut problems = Vec::new();
        let mut ask = |api: Api, path: String, with_token: bool, bearer: Option<&str>| {
            let mut w = self.wire(api, "GET", path.as_bytes(), None);
            if !with_token {
                w.headers.clear();
            }
            if let Some(b) = bearer {
                w.headers
                    .push(("Authorization".into(), format!("Bearer {b}").into_bytes()));
            }
            w.headers.extend(spoof.iter().cloned());
            if api == Api::Capsule {
                w.headers
                    .push(("OpenStack-API-Version".into(), b"container 1.40".to_vec()));
            }
            match self.send(&w) {
                Outcome::Answer { status, body } => {
                    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
                }
                other => {
                    problems.push(format!("{w:?}: {other:?}"));
                    (0, Value::Null)
                }
            }
        };
        let mut checks = Vec::new();
        let (status, _) = ask(
            Api::Capsule,
            "/v1/capsules?all_projects=1".into(),
            true,
            None,
        );
        checks.push((
            status == 403,
            format!("demo listing all projects' capsules: {status}"),
        ));
        let (status, v) = ask(Api::Network, "/v2.0/security-groups".into(), true, None);
        let foreign: Vec<&Value> = v["security_groups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|g| g["project_id"] != self.project.as_str())
                    .collect()
            })
            .unwrap_or_default();
        checks.push((
            status == 200 && foreign.is_empty() && v["security_groups"].is_array(),
            format!("demo's groups listed with spoofed headers: {status}, foreign {foreign:?}"),
        ));
        let (status, v) = ask(
            Api::Volume,
            format!("/v3/volumes/detail?all_tenants=1&project_id={FOREIGN_PROJECT}"),
            true,
            None,
        );
        checks.push((
            status == 400
                || (status == 200
                    && v["volumes"].as_array().is_some_and(|a| {
                        a.iter()
                            .all(|x| x["name"].as_str().is_some_and(|n| n.starts_with("hostile")))
                    })),
            format!(
                "demo listing another project's volumes: {status} {}",
                clip(&v.to_string(), 300)
            ),
        ));
        for (api, path) in [
            (Api::Capsule, "/v1/capsules".to_owned()),
            (Api::Network, "/v2.0/security-groups".to_owned()),
            (Api::Volume, format!("/v3/{}/volumes", self.project)),
        ] {
            let (status, _) = ask(api, path.clone(), false, None);
            checks.push((
                status == 401,
                format!("{path} without a token but with identity headers: {status}"),
            ));
            let demo = self.demo.clone();
            let (status, _) = ask(api, path.clone(), false, Some(&demo));
            checks.push((
                status == 401,
                format!("{path} with a Keystone token as a bearer token: {status}"),
            ));
        }
        problems.extend(
            checks
                .into_iter()
                .filter(|(ok, _)| !ok)
                .map(|(_, what)| what),
        );
        problems
    }
}
