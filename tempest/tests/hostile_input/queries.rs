//! List queries: hostile keys and values, percent-encoded or raw, on every list and one-item
//! read that takes query parameters, judged by each list's documented parameters.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::oracle::{py_int, Judged, PyInt};
use crate::stack::Stack;
use crate::strategies::{hostile_string, query_string};
use crate::verdict::Verdict;
use crate::wire::{clip, Api, Wire};
use crate::{A_CAPSULE, FIXTURE_VOLUME, SCRATCH_GROUP};

/// Lists and one-item reads that take query parameters: API, path (`{p}`: demo's project,
/// `{g}`: the scratch group) and microversion.
pub(crate) const LISTS: &[(Api, &str, &str)] = &[
    (Api::Capsule, "/v1/capsules", "container 1.40"),
    (Api::Capsule, "/v1/capsules", "container 1.1"),
    (Api::Network, "/v2.0/security-groups", ""),
    (Api::Network, "/v2.0/security-group-rules", ""),
    (Api::Network, "/v2.0/security-groups/{g}", ""),
    (Api::Volume, "/v3/{p}/volumes", "volume 3.70"),
    (Api::Volume, "/v3/{p}/volumes/detail", "volume 3.70"),
    (Api::Volume, "/v3/volumes/detail", "volume 3.45"),
    (Api::Volume, "/v3/{p}/volumes/summary", "volume 3.70"),
    (Api::Volume, "/v3/{p}/limits", "volume 3.70"),
    (Api::Volume, "/v3/{p}/os-quota-sets/{p}", "volume 3.70"),
];

pub(crate) const QUERY_KEYS: &[&str] = &[
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "offset",
    "all_projects",
    "all_tenants",
    "project_id",
    "tenant_id",
    "name",
    "status",
    "with_count",
    "fields",
    "id",
    "description",
    "page_reverse",
    "usage",
    "",
    "limit[]",
    "evil",
    "metadata",
];

pub(crate) const QUERY_VALUES: &[&str] = &[
    "-1",
    "0",
    "abc",
    "1e3",
    "99999999999999999999",
    "",
    " 5",
    "1000",
    "1001",
    "00000000-0000-4000-8000-000000000000",
    "garbage-marker",
    FIXTURE_VOLUME,
    A_CAPSULE,
    SCRATCH_GROUP,
    "created_at:asc",
    "name:desc",
    "evil",
    "created_at:desc,id:desc",
    "True",
    "maybe",
    "1",
    "yes",
    ",,,",
    ":",
    "asc",
    "desc",
    "sideways",
    "id:drop table",
    "{'a': 1}",
];

#[derive(Clone, Debug)]
pub(crate) struct QueryCase {
    pub(crate) list: usize,
    pub(crate) pairs: Vec<(String, String)>,
    /// Sent as generated, without percent-encoding.
    pub(crate) raw: bool,
}

pub(crate) fn query_case() -> impl Strategy<Value = QueryCase> {
    let key = prop_oneof![6 => select(QUERY_KEYS).prop_map(str::to_owned), 1 => hostile_string()];
    let value = prop_oneof![
        4 => select(QUERY_VALUES).prop_map(str::to_owned),
        2 => hostile_string(),
        1 => any::<i64>().prop_map(|n| n.to_string()),
    ];
    (
        0..LISTS.len(),
        vec((key, value), 1..=4),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(list, pairs, raw)| QueryCase { list, pairs, raw })
}

/// Neutron's attributes of a group and of a rule (filters on them are allowed), and the keys
/// every Neutron list takes.
const GROUP_ATTRIBUTES: &[&str] = &[
    "id",
    "name",
    "stateful",
    "tenant_id",
    "project_id",
    "description",
    "security_group_rules",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "shared",
];
const RULE_ATTRIBUTES: &[&str] = &[
    "id",
    "tenant_id",
    "project_id",
    "security_group_id",
    "ethertype",
    "direction",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "normalized_cidr",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "belongs_to_default_sg",
];
const NEUTRON_PAGING: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "page_reverse",
];
/// The keys of a volume list (`docs/volumes.md`: "any other filter is a 400"; `project_id`
/// is for admins only, and demo is not one).
const VOLUME_LIST_KEYS: &[&str] = &[
    "marker",
    "name",
    "status",
    "limit",
    "offset",
    "sort",
    "sort_key",
    "sort_dir",
    "all_tenants",
    "with_count",
];

/// A query key and what makes one of its values invalid.
type Check = (&'static str, fn(&str) -> bool);

/// Whether `v` is not an integer of at least `min` to Python's `int()`.
fn int_below(v: &str, min: i128) -> bool {
    match py_int(v) {
        PyInt::Is(n) => n < min,
        PyInt::Unsure => false,
        PyInt::Not => true,
    }
}

/// A boolean as OpenStack reads one (`strutils.bool_from_string`, strict): true, false, or
/// `None` for anything else.
fn os_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// What a list's query string must get. Unknown keys are a 400 where the API says so
/// (Neutron's filter validation, the volume API's documented filters); a key whose every value
/// is invalid is a 400 (`limit` not a positive or non-negative integer, `sort_dir` not asc or
/// desc, the volume API's one sort order); demo asking for all projects' capsules is a 403.
/// Sent unencoded, a query is parsed as the server splits it: left to the API.
fn query_judged(list: usize, pairs: &[(String, String)], raw: bool) -> Judged {
    if raw {
        return Ok(());
    }
    let all_bad = |key: &str, bad: &dyn Fn(&str) -> bool| {
        let mut vals = pairs.iter().filter(|(k, _)| k == key).peekable();
        vals.peek().is_some() && vals.all(|(_, v)| bad(v))
    };
    let (api, path, _) = LISTS[list];
    let checks: Vec<Check> = match (api, path) {
        (Api::Capsule, _) => vec![
            ("limit", |v| int_below(v, 1)),
            ("sort_dir", |v| v != "asc" && v != "desc"),
            ("all_projects", |v| os_bool(v) != Some(false)),
        ],
        (Api::Network, "/v2.0/security-groups" | "/v2.0/security-group-rules") => {
            let attributes = if path.ends_with("rules") {
                RULE_ATTRIBUTES
            } else {
                GROUP_ATTRIBUTES
            };
            if let Some((k, _)) = pairs.iter().find(|(k, _)| {
                !attributes.contains(&k.as_str()) && !NEUTRON_PAGING.contains(&k.as_str())
            }) {
                return Err(format!("?(unknown filter) on {path}: {}", clip(k, 40)));
            }
            vec![("limit", |v| int_below(v, 0))]
        }
        (Api::Volume, p) if p.ends_with("/volumes") || p.ends_with("/volumes/detail") => {
            if let Some((k, _)) = pairs
                .iter()
                .find(|(k, _)| !VOLUME_LIST_KEYS.contains(&k.as_str()))
            {
                return Err(format!("?(unknown filter) on {path}: {}", clip(k, 40)));
            }
            let has = |k: &str| pairs.iter().any(|(key, _)| key == k);
            if has("sort") && (has("sort_key") || has("sort_dir")) {
                return Err(format!("?sort on {path}: with sort_key or sort_dir"));
            }
            vec![
                ("limit", |v| int_below(v, 0)),
                ("offset", |v| {
                    !matches!(py_int(v), PyInt::Is(0) | PyInt::Unsure)
                }),
                ("sort", |v| !newest_first(v)),
                ("sort_key", |v| v != "created_at"),
                ("sort_dir", |v| v != "desc"),
                ("all_tenants", |v| os_bool(v).is_none()),
                ("with_count", |v| os_bool(v).is_none()),
            ]
        }
        _ => Vec::new(),
    };
    match checks.iter().find(|(k, bad)| all_bad(k, bad)) {
        Some((k, _)) => Err(format!("?{k} on {path}: no valid value")),
        None => Ok(()),
    }
}

/// Whether a volume list's `sort` asks for the one order served: newest first.
fn newest_first(sort: &str) -> bool {
    let keys: Vec<(&str, &str)> = sort
        .split(',')
        .map(|k| {
            let (key, dir) = k.split_once(':').unwrap_or((k, "desc"));
            (key.trim(), dir.trim())
        })
        .collect();
    matches!(
        keys.as_slice(),
        [("created_at", "desc")] | [("created_at", "desc"), ("id", "desc")]
    )
}

impl Stack {
    /// The request of a query case, and what it must get.
    pub(crate) fn query_wire(&self, c: &QueryCase) -> (Wire, Verdict) {
        let (api, path, version) = LISTS[c.list];
        let mut target = self.fill(path).into_bytes();
        target.push(b'?');
        let marks = self.marks();
        let pairs: Vec<(String, String)> = c
            .pairs
            .iter()
            .map(|(k, v)| {
                let v = marks
                    .iter()
                    .find(|(m, _)| m == v)
                    .map_or_else(|| v.clone(), |(_, real)| real.clone());
                (k.clone(), v)
            })
            .collect();
        if c.raw {
            let mut first = true;
            for (k, v) in &pairs {
                if !first {
                    target.push(b'&');
                }
                first = false;
                target.extend_from_slice(k.as_bytes());
                target.push(b'=');
                target.extend_from_slice(v.as_bytes());
            }
        } else {
            target.extend_from_slice(query_string(&pairs).as_bytes());
        }
        let judged = query_judged(c.list, &pairs, c.raw);
        let mut kinds: Vec<String> = pairs
            .iter()
            .map(|(k, _)| match QUERY_KEYS.contains(&k.as_str()) {
                true => format!("{path} ?{k}"),
                false => format!("{path} ?(a hostile key)"),
            })
            .collect();
        if c.raw {
            kinds.push("unencoded".into());
        }
        let mut w = self.wire(api, "GET", &target, None);
        if !version.is_empty() {
            w.headers
                .push(("OpenStack-API-Version".into(), version.as_bytes().to_vec()));
        }
        (w, Verdict::of(judged, kinds))
    }
}
