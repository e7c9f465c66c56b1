//! The stack under test: its three APIs, demo's and the admin's tokens, the figures of the run
//! (`Stats`, with each property's tally of verdicts), what valid-by-accident inputs made
//! (`Ledger`), demo's counts, and the clean-up that undoes it all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::Value;

use crate::headers::ISSUER;
use crate::verdict::Tally;
use crate::wire::{clip, exchange, Api, Outcome, Wire};
use crate::{A_CAPSULE, FIXTURE_VOLUME, OWN_PROJECT, SCRATCH_GROUP};

/// The seed of every property: the same requests on every run.
pub(crate) const SEED: &[u8; 32] = b"capsule-issue9-hostile-input-001";

#[derive(Default)]
pub(crate) struct Stats {
    /// Hostile requests per API and answer.
    pub(crate) histogram: BTreeMap<Api, BTreeMap<String, u64>>,
    /// Hostile requests per property.
    pub(crate) per_property: BTreeMap<&'static str, u64>,
    /// Slowest hostile answer.
    pub(crate) slowest: (Duration, String),
    /// Requests to set up, count and clean up (not hostile).
    pub(crate) housekeeping: u64,
    /// What each property's judged requests got.
    pub(crate) tallies: BTreeMap<&'static str, Tally>,
}

/// What valid-by-accident inputs created, and what was undone.
#[derive(Default)]
pub(crate) struct Ledger {
    pub(crate) capsules: Vec<String>,
    pub(crate) volumes: Vec<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) rules: Vec<String>,
    /// Groups and rules deleted at once (capsules and volumes are waited for at the end).
    pub(crate) deleted_at_once: BTreeMap<&'static str, usize>,
    /// Accepted updates of the scratch group and the fixture volume (no row created).
    pub(crate) updates: u64,
    /// The status of each capsule created, as its 202 said (`Error`: no host was asked).
    pub(crate) capsule_status: BTreeMap<String, u64>,
    /// Creates whose id could not be read from the answer.
    pub(crate) unreadable: Vec<String>,
    /// Capsules made on purpose (not by accident) to see what a host does with them.
    pub(crate) probes: Vec<String>,
    /// Capsules and volumes of `capsules`, `volumes` and `probes` seen gone at the end.
    pub(crate) gone: BTreeMap<&'static str, usize>,
}

pub(crate) struct Stack {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) auth: BTreeMap<Api, (String, String)>,
    pub(crate) demo: String,
    pub(crate) admin: String,
    pub(crate) project: String,
    pub(crate) scratch_group: Mutex<String>,
    /// The volume of demo's made for the run.
    pub(crate) fixture: Mutex<String>,
    /// A capsule of demo's that was there before (a real paging marker), if any.
    pub(crate) a_capsule: Mutex<String>,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) ledger: Mutex<Ledger>,
    pub(crate) property: Mutex<&'static str>,
}

/// Demo's counts as the admin sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) capsules: BTreeSet<String>,
    pub(crate) volumes: BTreeSet<String>,
    pub(crate) groups: BTreeSet<String>,
    pub(crate) rules: BTreeSet<String>,
}

impl Stack {
    pub(crate) fn authority(&self, api: Api) -> &str {
        &self.auth[&api].0
    }

    /// A request of demo's to `path` (below the API's prefix).
    pub(crate) fn wire(&self, api: Api, method: &str, path: &[u8], body: Option<Vec<u8>>) -> Wire {
        let mut target = self.auth[&api].1.as_bytes().to_vec();
        target.extend_from_slice(path);
        Wire {
            api,
            method: method.to_owned(),
            target,
            headers: vec![("X-Auth-Token".into(), self.demo.clone().into_bytes())],
            body,
            chunked: false,
            own_host: false,
        }
    }

    /// Sends a hostile request and counts its answer.
    pub(crate) fn send(&self, w: &Wire) -> Outcome {
        let started = Instant::now();
        let outcome = self.rt.block_on(exchange(self.authority(w.api), w));
        let took = started.elapsed();
        let mut s = self.stats.lock().unwrap();
        *s.histogram
            .entry(w.api)
            .or_default()
            .entry(outcome.label())
            .or_default() += 1;
        let property = *self.property.lock().unwrap();
        *s.per_property.entry(property).or_default() += 1;
        if took > s.slowest.0 {
            s.slowest = (took, format!("{w:?} -> {}", outcome.label()));
        }
        outcome
    }

    /// A well-formed request (set-up, counting, clean-up): status and JSON answer.
    pub(crate) async fn call(
        &self,
        api: Api,
        as_admin: bool,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut w = self.wire(
            api,
            method,
            path.as_bytes(),
            body.map(|b| b.to_string().into_bytes()),
        );
        if as_admin {
            w.headers = vec![("X-Auth-Token".into(), self.admin.clone().into_bytes())];
        }
        w.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        match api {
            Api::Capsule => w
                .headers
                .push(("OpenStack-API-Version".into(), b"container 1.40".to_vec())),
            Api::Volume => w
                .headers
                .push(("OpenStack-API-Version".into(), b"volume 3.70".to_vec())),
            Api::Network => {}
        }
        self.stats.lock().unwrap().housekeeping += 1;
        match exchange(self.authority(api), &w).await {
            Outcome::Answer { status, body } => {
                (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
            }
            other => panic!("{w:?}: {other:?}"),
        }
    }

    /// Every item of a paged list, following its next links.
    pub(crate) async fn all_pages(
        &self,
        api: Api,
        first: String,
        items: &str,
        next: &str,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = Some(first);
        let mut pages = 0;
        while let Some(p) = path.take() {
            let (status, v) = self.call(api, true, "GET", &p, None).await;
            assert!(
                status == 200 && v[items].is_array(),
                "GET {p}: {status} {v} (a JSON list is needed to count)"
            );
            out.extend(v[items].as_array().cloned().unwrap_or_default());
            let link = match next {
                "next" => v["next"].as_str().map(str::to_owned),
                key => v[key].as_array().and_then(|links| {
                    links
                        .iter()
                        .find(|l| l["rel"] == "next")
                        .and_then(|l| l["href"].as_str().map(str::to_owned))
                }),
            };
            pages += 1;
            assert!(pages < 100, "{p}: more than 100 pages");
            path = link.map(|href| {
                let prefix = format!("http://{}{}", self.authority(api), self.auth[&api].1);
                href.strip_prefix(&prefix).unwrap_or(&href).to_owned()
            });
        }
        out
    }

    /// Demo's capsules, volumes, security groups and rules, as the admin lists them.
    pub(crate) async fn counts(&self) -> Counts {
        let ids = |items: Vec<Value>, key: &str, project: Option<&str>| -> BTreeSet<String> {
            items
                .iter()
                .filter(|i| project.is_none_or(|p| i["project_id"] == p))
                .filter_map(|i| i[key].as_str().map(str::to_owned))
                .collect()
        };
        let p = self.project.clone();
        let capsules = self
            .all_pages(
                Api::Capsule,
                "/v1/capsules?all_projects=1".into(),
                "capsules",
                "next",
            )
            .await;
        let volumes = self
            .all_pages(
                Api::Volume,
                format!("/v3/volumes/detail?all_tenants=1&project_id={p}"),
                "volumes",
                "volumes_links",
            )
            .await;
        let groups = self
            .all_pages(
                Api::Network,
                format!("/v2.0/security-groups?project_id={p}"),
                "security_groups",
                "security_groups_links",
            )
            .await;
        let rules = self
            .all_pages(
                Api::Network,
                format!("/v2.0/security-group-rules?project_id={p}"),
                "security_group_rules",
                "security_group_rules_links",
            )
            .await;
        Counts {
            capsules: ids(capsules, "uuid", Some(p.as_str())),
            // Admin-only attribute: the volume's project.
            volumes: volumes
                .iter()
                .filter(|v| {
                    v["os-vol-tenant-attr:tenant_id"]
                        .as_str()
                        .is_none_or(|t| t == p)
                })
                .filter_map(|v| v["id"].as_str().map(str::to_owned))
                .collect(),
            groups: ids(groups, "id", Some(p.as_str())),
            rules: ids(rules, "id", Some(p.as_str())),
        }
    }

    /// Records what a 2xx create made; groups and rules are deleted at once.
    pub(crate) fn created(&self, kind: &'static str, answer: &Value, w: &Wire) {
        let id = match kind {
            "capsule" => answer["uuid"].as_str(),
            "volume" => answer["volume"]["id"].as_str(),
            "group" => answer["security_group"]["id"].as_str(),
            _ => answer["security_group_rule"]["id"].as_str(),
        };
        let Some(id) = id.map(str::to_owned) else {
            self.ledger
                .lock()
                .unwrap()
                .unreadable
                .push(format!("{kind}: {w:?} -> {answer}"));
            return;
        };
        let (api, path) = match kind {
            "capsule" => (Api::Capsule, format!("/v1/capsules/{id}")),
            "volume" => (Api::Volume, String::new()),
            "group" => (Api::Network, format!("/v2.0/security-groups/{id}")),
            _ => (Api::Network, format!("/v2.0/security-group-rules/{id}")),
        };
        {
            let mut l = self.ledger.lock().unwrap();
            match kind {
                "capsule" => {
                    let status = answer["status"].as_str().unwrap_or("?").to_owned();
                    *l.capsule_status.entry(status).or_default() += 1;
                    l.capsules.push(id)
                }
                "volume" => l.volumes.push(id),
                "group" => l.groups.push(id),
                _ => l.rules.push(id),
            }
        }
        if path.is_empty() {
            return; // volumes are deleted once available, at the end
        }
        let (status, v) = self
            .rt
            .block_on(self.call(api, false, "DELETE", &path, None));
        if kind != "capsule" {
            assert_eq!(status, 204, "DELETE {path}: {v}");
            *self
                .ledger
                .lock()
                .unwrap()
                .deleted_at_once
                .entry(kind)
                .or_default() += 1;
        }
    }

    /// Runs one property with the fixed configuration; a failure is returned in words, with
    /// the minimal input proptest shrank it to.
    pub(crate) fn property<S: Strategy>(
        &self,
        name: &'static str,
        cases: u32,
        strategy: S,
        test: impl Fn(&S::Value) -> Result<(), TestCaseError>,
    ) -> Option<String>
    where
        S::Value: std::fmt::Debug,
    {
        *self.property.lock().unwrap() = name;
        let config = Config {
            cases,
            failure_persistence: None,
            fork: false,
            timeout: 0,
            max_shrink_iters: 256,
            max_shrink_time: 120_000,
            max_global_rejects: 10_000,
            rng_algorithm: RngAlgorithm::ChaCha,
            ..Config::default()
        };
        let mut seed = *SEED;
        for (i, b) in name.bytes().enumerate() {
            seed[i % 32] ^= b;
        }
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        match runner.run(&strategy, |v| test(&v)) {
            Ok(()) => None,
            Err(TestError::Fail(why, minimal)) => Some(format!(
                "property {name}: {why}\n    minimal input: {}",
                clip(&format!("{minimal:?}"), 2000)
            )),
            Err(TestError::Abort(why)) => Some(format!("property {name} aborted: {why}")),
        }
    }

    /// The placeholders generated values may hold, with what they stand for.
    pub(crate) fn marks(&self) -> Vec<(&'static str, String)> {
        vec![
            (OWN_PROJECT, self.project.clone()),
            (SCRATCH_GROUP, self.scratch_group.lock().unwrap().clone()),
            (FIXTURE_VOLUME, self.fixture.lock().unwrap().clone()),
            (A_CAPSULE, self.a_capsule.lock().unwrap().clone()),
            (
                ISSUER,
                std::env::var("ZUN_TEST_OIDC_ISSUER")
                    .unwrap_or_else(|_| "http://127.0.0.1:9100".into()),
            ),
        ]
    }

    pub(crate) fn fill(&self, path: &str) -> String {
        path.replace("{p}", &self.project)
            .replace("{g}", &self.scratch_group.lock().unwrap())
    }
}

impl Stack {
    /// Waits until every capsule and volume valid inputs made is gone (deleting volumes once
    /// they can be), and until demo's counts are back where they were; returns what is not.
    pub(crate) async fn clean_up(&self, before: &Counts, fixtures: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        let (capsules, volumes, probes) = {
            let l = self.ledger.lock().unwrap();
            (l.capsules.clone(), l.volumes.clone(), l.probes.clone())
        };
        let mut pending_capsules: BTreeSet<String> = capsules.iter().cloned().collect();
        pending_capsules.extend(probes.iter().cloned());
        let mut pending_volumes: BTreeSet<String> = volumes.iter().cloned().collect();
        pending_volumes.extend(fixtures.iter().cloned());
        let gone = |kind: &'static str, id: &str, made: &[String]| {
            if made.iter().any(|m| m == id) {
                *self.ledger.lock().unwrap().gone.entry(kind).or_default() += 1;
            }
        };
        loop {
            for id in pending_capsules.clone() {
                let (status, v) = self
                    .call(
                        Api::Capsule,
                        false,
                        "GET",
                        &format!("/v1/capsules/{id}"),
                        None,
                    )
                    .await;
                match status {
                    404 => {
                        pending_capsules.remove(&id);
                        gone("capsule", &id, &capsules);
                        gone("probe", &id, &probes);
                    }
                    200 if v["status"] != "Deleting" => {
                        let _ = self
                            .call(
                                Api::Capsule,
                                false,
                                "DELETE",
                                &format!("/v1/capsules/{id}"),
                                None,
                            )
                            .await;
                    }
                    _ => {}
                }
            }
            for id in pending_volumes.clone() {
                let path = format!("/v3/{}/volumes/{id}", self.project);
                let (status, v) = self.call(Api::Volume, false, "GET", &path, None).await;
                match (status, v["volume"]["status"].as_str()) {
                    (404, _) => {
                        pending_volumes.remove(&id);
                        gone("volume", &id, &volumes);
                    }
                    (200, Some("available" | "error")) => {
                        let _ = self.call(Api::Volume, false, "DELETE", &path, None).await;
                    }
                    _ => {}
                }
            }
            if pending_capsules.is_empty() && pending_volumes.is_empty() {
                // Everything made is gone; the counts must agree (a delete the admin's list
                // still shows gets a few seconds).
                let settle = Instant::now() + Duration::from_secs(15);
                loop {
                    let now = self.counts().await;
                    if now == *before {
                        break;
                    }
                    if Instant::now() > settle {
                        let diff = |what: &str, a: &BTreeSet<String>, b: &BTreeSet<String>| {
                            format!(
                                "{what}: gone {:?}, new {:?}",
                                a.difference(b).collect::<Vec<_>>(),
                                b.difference(a).collect::<Vec<_>>()
                            )
                        };
                        problems.push(format!(
                            "demo's project differs after the run (another suite running in \
                             project demo at the same time also shows here): {}; {}; {}; {}",
                            diff("capsules", &before.capsules, &now.capsules),
                            diff("volumes", &before.volumes, &now.volumes),
                            diff("security groups", &before.groups, &now.groups),
                            diff("rules", &before.rules, &now.rules),
                        ));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                break;
            }
            if Instant::now() > deadline {
                problems.push(format!(
                    "not gone within 90 s: capsules {pending_capsules:?}, volumes {pending_volumes:?}"
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        problems.sort();
        problems.dedup();
        problems
    }

    /// Each API answers a plain list, quickly.
    pub(crate) async fn still_answers(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (api, path) in [
            (Api::Capsule, "/v1/capsules".to_owned()),
            (Api::Network, "/v2.0/security-groups".to_owned()),
            (Api::Volume, format!("/v3/{}/volumes", self.project)),
        ] {
            let started = Instant::now();
            let (status, v) = self.call(api, false, "GET", &path, None).await;
            let took = started.elapsed();
            println!("after the run: GET {path} -> {status} in {took:?}");
            if status != 200 || took > Duration::from_secs(2) {
                problems.push(format!("GET {path}: {status} after {took:?}: {v}"));
            }
        }
        problems
    }
}
