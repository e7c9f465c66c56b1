//! List queries: hostile keys and values, percent-encoded or raw, on every list and one-item
//! read that takes query parameters.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::stack::Stack;
use crate::strategies::{hostile_string, query_string};
use crate::wire::{Api, Wire};
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

impl Stack {
    pub(crate) fn query_wire(&self, c: &QueryCase) -> Wire {
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
        let mut w = self.wire(api, "GET", &target, None);
        if !version.is_empty() {
            w.headers
                .push(("OpenStack-API-Version".into(), version.as_bytes().to_vec()));
        }
        w
    }
}
