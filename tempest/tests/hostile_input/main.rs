//! Bad input at scale against the running stack (issue 9, item 3). Property-based generators
//! (proptest) of malformed and hostile requests — capsule templates, raw request bodies, volume
//! creates and changes, security-group and rule bodies, list queries, request paths and headers
//! (tokens, forged bearer JWTs, hosts, versions) — are sent with demo's real Keystone token to
//! the capsule, network and block-storage APIs, over a raw HTTP/1.1 client so that nothing is
//! normalized on the way. No answer may be a 5xx, a hang or a connection dropped without an
//! answer. Each generated request is judged before it is sent (`verdict`, `oracle*`): one the
//! documented contract makes certainly invalid (malformed or truncated JSON, invalid UTF-8, a
//! NUL, a type or value the schema refuses, an oversized value, a forged token, a path that
//! names nothing, an unsupported microversion) must get a 4xx, and a 2xx or 3xx fails the run;
//! one that may be valid (a hostile edit the API may legitimately accept) may succeed, and the
//! share of each property's cases that did is bounded and reported by the edit kinds that made
//! them valid. Fixed cases pin the sizes and depths (a body over `[api] max_body_bytes` is a
//! 413), spoofed identity headers are not believed, and `metadata.annotations` nested deeper
//! than 32 levels are refused while a capsule exactly 32 deep is accepted and reaches its host.
//! An input that turns out to be valid is created, deleted again and counted; afterwards demo's
//! project has exactly the capsules, volumes, security groups and rules it had before, and
//! every API still answers a list quickly. The run is reproducible (fixed seed, no failure
//! files) and prints how many requests it sent, what they got and the verdicts' tallies.
//!
//! Valid inputs are made cheap and harmless on purpose: most capsule templates name an
//! availability zone no host has (a valid one is then a `202` capsule in `Error` that no host
//! ever sees), most volumes the same, most groups a foreign project (`403` after the body is
//! checked) and most rules a group that does not exist (`404` after the body is checked). Only
//! templates that run `busybox` with `sleep`, without host ports, volumes or deep values, may
//! reach a real compute host. Rules and changes go to a scratch group and a fixture volume made
//! for the run.

mod aimed;
mod annotations;
mod capsules;
mod fixed;
mod groups;
mod headers;
mod oracle;
mod oracle_network;
mod oracle_template;
mod oracle_volume;
mod paths;
mod queries;
mod raw_bodies;
mod stack;
mod strategies;
mod verdict;
mod volumes;
mod wire;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use tempest::{env, token, unique_name, User};

use crate::capsules::capsule_case;
use crate::fixed::want_text;
use crate::groups::{GroupCase, RuleCase, GROUP_LOCS, RULE_LOCS};
use crate::headers::header_case;
use crate::paths::path_case;
use crate::queries::query_case;
use crate::raw_bodies::{raw_case, Target};
use crate::stack::{Ledger, Stack, Stats};
use crate::strategies::edits;
use crate::volumes::{volume_case, volume_change_case, VOLUME_CHANGES};
use crate::wire::{clip, split_url, Api, Outcome};

/// An availability zone no compute host is in.
pub(crate) const NOWHERE: &str = "hostile-input-nowhere";
/// A project id that is not demo's (a group naming it is refused after its body is checked).
pub(crate) const FOREIGN_PROJECT: &str = "0000000000000000000000000000f00d";
/// A security group id that does not exist.
pub(crate) const NO_GROUP: &str = "00000000-0000-4000-8000-00000000dead";
/// Stands for demo's project id in generated values.
pub(crate) const OWN_PROJECT: &str = "\u{0}OWN-PROJECT\u{0}";
/// Stands for the fixture volume's id in generated values.
pub(crate) const FIXTURE_VOLUME: &str = "\u{0}FIXTURE-VOLUME\u{0}";
/// Stands for the id of a capsule of demo's in generated values.
pub(crate) const A_CAPSULE: &str = "\u{0}A-CAPSULE\u{0}";
/// Stands for the scratch security group's id in generated values.
pub(crate) const SCRATCH_GROUP: &str = "\u{0}SCRATCH-GROUP\u{0}";

/// demo's project id, from Keystone's own answer about demo's token.
async fn project_of(tok: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{}/auth/tokens", env("ZUN_TEST_KEYSTONE_URL")))
        .header("X-Auth-Token", tok)
        .header("X-Subject-Token", tok)
        .send()
        .await
        .expect("Keystone answers");
    assert_eq!(resp.status().as_u16(), 200, "validate demo's own token");
    let v: Value = resp.json().await.expect("token JSON");
    v["token"]["project"]["id"]
        .as_str()
        .expect("a project-scoped token")
        .to_owned()
}

#[test]
pub(crate) fn invalid_hostile_requests_get_4xx_few_are_valid_nothing_stays_and_the_apis_answer() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (demo, admin) = rt.block_on(async { (token(User::Demo).await, token(User::Admin).await) });
    let project = rt.block_on(project_of(&demo));
    let auth = [
        (Api::Capsule, split_url(&env("ZUN_TEST_API_URL"))),
        (Api::Network, split_url(&env("ZUN_TEST_NETWORK_API_URL"))),
        (Api::Volume, split_url(&env("ZUN_TEST_VOLUME_API_URL"))),
    ]
    .into_iter()
    .collect();
    let s = Stack {
        rt,
        auth,
        demo,
        admin,
        project,
        scratch_group: Mutex::new(String::new()),
        fixture: Mutex::new(String::new()),
        a_capsule: Mutex::new(NO_GROUP.to_owned()),
        stats: Mutex::new(Stats::default()),
        ledger: Mutex::new(Ledger::default()),
        property: Mutex::new("fixed"),
    };

    // demo's default group exists before anything is counted (it is made on first use).
    let (status, _) =
        s.rt.block_on(s.call(Api::Network, false, "GET", "/v2.0/security-groups", None));
    assert_eq!(status, 200);
    let before = s.rt.block_on(s.counts());
    println!(
        "demo's project {} before: {} capsules, {} volumes, {} security groups, {} rules",
        s.project,
        before.capsules.len(),
        before.volumes.len(),
        before.groups.len(),
        before.rules.len()
    );
    // A scratch group of demo's for rules and updates; deleted at the end.
    let scratch = unique_name("hostile-scratch");
    let (status, v) = s.rt.block_on(s.call(
        Api::Network,
        false,
        "POST",
        "/v2.0/security-groups",
        Some(json!({"security_group": {"name": scratch, "description": "hostile input test"}})),
    ));
    assert_eq!(status, 201, "{v}");
    *s.scratch_group.lock().unwrap() = v["security_group"]["id"].as_str().unwrap().to_owned();

    // A volume of demo's to change with hostile bodies; deleted at the end.
    let fixture = s.rt.block_on(s.fixture_volume());
    *s.fixture.lock().unwrap() = fixture.clone();
    if let Some(c) = before.capsules.iter().next() {
        *s.a_capsule.lock().unwrap() = c.clone();
    }

    let mut failures = Vec::new();

    // Fixed sizes and depths.
    for (what, w, want, kind) in s.fixed_cases() {
        match s.send(&w) {
            Outcome::Answer { status, body } if want.contains(&status) => {
                if let (true, Some(kind)) = ((200..300).contains(&status), kind) {
                    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    s.created(kind, &v, &w);
                }
            }
            other => failures.push(format!(
                "fixed case {what}: want {}, got {} for {w:?}",
                want_text(&want),
                match &other {
                    Outcome::Answer { status, body } =>
                        format!("{status}: {}", clip(&String::from_utf8_lossy(body), 300)),
                    o => format!("{o:?}"),
                }
            )),
        }
    }
    println!("fixed cases done after {:?}", started.elapsed());

    // The properties: each case is judged (`verdict`, `oracle`) before it is sent.
    let props: Vec<Option<String>> = vec![
        s.property("capsule_templates", 256, capsule_case(), |c| {
            let (w, verdict) = s.capsule_wire(c);
            s.probe(&w, &verdict, |v| {
                s.created("capsule", v, &w);
                Ok(())
            })
        }),
        s.property("raw_bodies", 256, raw_case(), |c| {
            let (w, verdict) = s.raw_wire(c);
            s.probe(&w, &verdict, |v| {
                match c.target {
                    Target::CapsuleCreate => s.created("capsule", v, &w),
                    Target::GroupCreate => s.created("group", v, &w),
                    Target::RuleCreate => s.created("rule", v, &w),
                    Target::VolumeCreate => s.created("volume", v, &w),
                    Target::GroupUpdate => s.ledger.lock().unwrap().updates += 1,
                    Target::VolumeAction => {
                        return Err(TestCaseError::fail(format!(
                            "an action was accepted: {w:?}"
                        )))
                    }
                }
                Ok(())
            })
        }),
        s.property("volume_creates", 256, volume_case(), |c| {
            let (w, verdict) = s.volume_wire(c);
            s.probe(&w, &verdict, |v| {
                s.created("volume", v, &w);
                Ok(())
            })
        }),
        s.property(
            "group_bodies",
            128,
            (
                prop::bool::weighted(0.2),
                prop::bool::weighted(0.25),
                edits(GROUP_LOCS, 3),
            )
                .prop_map(|(real, update, edits)| GroupCase {
                    real,
                    update,
                    edits,
                }),
            |c| {
                let (w, verdict) = s.group_wire(c);
                s.probe(&w, &verdict, |v| {
                    if c.update {
                        s.ledger.lock().unwrap().updates += 1;
                    } else {
                        s.created("group", v, &w);
                    }
                    Ok(())
                })
            },
        ),
        s.property(
            "rule_bodies",
            256,
            (prop::bool::weighted(0.3), edits(RULE_LOCS, 3))
                .prop_map(|(real, edits)| RuleCase { real, edits }),
            |c| {
                let (w, verdict) = s.rule_wire(c);
                s.probe(&w, &verdict, |v| {
                    s.created("rule", v, &w);
                    Ok(())
                })
            },
        ),
        s.property("list_queries", 256, query_case(), |c| {
            let (w, verdict) = s.query_wire(c);
            s.probe(&w, &verdict, |_| Ok(()))
        }),
        s.property("paths", 256, path_case(), |c| {
            let (w, verdict) = s.path_wire(c);
            s.probe(&w, &verdict, |_| {
                if matches!(c.method, "POST" | "PUT" | "PATCH" | "DELETE") {
                    return Err(TestCaseError::fail(format!("a change was accepted: {w:?}")));
                }
                Ok(())
            })
        }),
        s.property("headers", 256, header_case(), |c| {
            let (w, verdict) = s.header_wire(c);
            s.probe(&w, &verdict, |_| Ok(()))
        }),
        s.property("volume_changes", 256, volume_change_case(), |c| {
            let (w, verdict) = s.volume_change_wire(c, &fixture);
            s.probe(&w, &verdict, |_| {
                if VOLUME_CHANGES[c.change].1 == "/action" {
                    return Err(TestCaseError::fail(format!(
                        "an action was accepted: {w:?}"
                    )));
                }
                s.ledger.lock().unwrap().updates += 1;
                Ok(())
            })
        }),
    ];
    failures.extend(props.into_iter().flatten());
    *s.property.lock().unwrap() = "spoofing";
    failures.extend(s.spoofing());
    // What an accepted capsule then does (real host; waits up to 30 s if it never gets there).
    *s.property.lock().unwrap() = "deep_annotations";
    failures.extend(s.deep_annotations());
    let probing = started.elapsed();

    // Undo what valid inputs made, then the scratch group; count again.
    let scratch_id = s.scratch_group.lock().unwrap().clone();
    let (status, v) = s.rt.block_on(s.call(
        Api::Network,
        false,
        "DELETE",
        &format!("/v2.0/security-groups/{scratch_id}"),
        None,
    ));
    if status != 204 {
        failures.push(format!("deleting the scratch group: {status} {v}"));
    }
    failures.extend(s.rt.block_on(s.clean_up(&before, std::slice::from_ref(&fixture))));
    failures.extend(s.rt.block_on(s.still_answers()));

    println!("\n== verdicts");
    failures.extend(s.judge_shares());
    let stats = s.stats.lock().unwrap();
    let ledger = s.ledger.lock().unwrap();
    let hostile: u64 = stats.histogram.values().flat_map(|h| h.values()).sum();
    println!(
        "\n== hostile input: {hostile} hostile requests ({} more to set up, count and clean up)",
        stats.housekeeping
    );
    for (api, h) in &stats.histogram {
        let total: u64 = h.values().sum();
        println!("  {api:?} API ({total}): {h:?}");
    }
    let mut overall: BTreeMap<&str, u64> = BTreeMap::new();
    for h in stats.histogram.values() {
        for (k, n) in h {
            *overall.entry(k.as_str()).or_default() += n;
        }
    }
    println!("  all: {overall:?}");
    println!("  requests per property: {:?}", stats.per_property);
    println!(
        "  slowest answer: {:?} for {}",
        stats.slowest.0,
        clip(&stats.slowest.1, 300)
    );
    let n = |m: &BTreeMap<&str, usize>, k: &str| m.get(k).copied().unwrap_or(0);
    println!(
        "  valid by accident (created, then deleted): {} capsules ({} seen gone), {} volumes \
         ({} seen gone), {} security groups ({} deleted), {} rules ({} deleted); {} changes of \
         the scratch group and the fixture volume accepted",
        ledger.capsules.len(),
        n(&ledger.gone, "capsule"),
        ledger.volumes.len(),
        n(&ledger.gone, "volume"),
        ledger.groups.len(),
        n(&ledger.deleted_at_once, "group"),
        ledger.rules.len(),
        n(&ledger.deleted_at_once, "rule"),
        ledger.updates
    );
    println!(
        "  capsules created, by status at creation: {:?}",
        ledger.capsule_status
    );
    println!(
        "  probes (capsules made on purpose, then deleted): {} ({} seen gone)",
        ledger.probes.len(),
        n(&ledger.gone, "probe")
    );
    println!(
        "  time: {probing:?} sending, {:?} in all",
        started.elapsed()
    );
    if n(&ledger.gone, "probe") != ledger.probes.len() {
        failures.push(format!(
            "{} capsules were made on purpose but {} were seen gone: {:?}",
            ledger.probes.len(),
            n(&ledger.gone, "probe"),
            ledger.probes
        ));
    }
    if !ledger.unreadable.is_empty() {
        failures.push(format!(
            "creates without an id in the answer: {:#?}",
            ledger.unreadable
        ));
    }
    for (kind, made, undone) in [
        (
            "capsules",
            ledger.capsules.len(),
            ledger.gone.get("capsule"),
        ),
        ("volumes", ledger.volumes.len(), ledger.gone.get("volume")),
        (
            "groups",
            ledger.groups.len(),
            ledger.deleted_at_once.get("group"),
        ),
        (
            "rules",
            ledger.rules.len(),
            ledger.deleted_at_once.get("rule"),
        ),
    ] {
        if undone.copied().unwrap_or(0) != made {
            failures.push(format!(
                "{made} {kind} were created by valid inputs but {} were deleted",
                undone.copied().unwrap_or(0)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
