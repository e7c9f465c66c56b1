//! What each generated request must get, and the tally of what the requests got. A request the
//! contract makes certainly invalid ([`Verdict::Invalid`], see `oracle`) must be answered 4xx:
//! a success or a redirect fails the run (after what it made is undone). One that may be valid
//! ([`Verdict::MayBeValid`]) may succeed; the share of each property's cases that succeeded is
//! bounded ([`VALID_SHARE`]) and reported by the kinds of edit that made them valid.

use std::collections::BTreeMap;

use proptest::test_runner::TestCaseError;
use serde_json::Value;

use crate::oracle::Judged;
use crate::stack::Stack;
use crate::wire::{clip, Outcome, Wire, TIMEOUT};

/// The most of each property's cases that may turn out valid (answered 2xx). Chosen from the
/// run of the fixed seed against devstack (valid count of the cases in brackets) with about
/// half as much again for margin, so that an API grown more lenient where the contract lets it
/// still passes but one that starts taking what it used to refuse does not; all under a half:
/// a property whose inputs are mostly valid is not hostile input. Properties not listed (the
/// fixed cases, spoofing, the annotations probe) have exact expectations of their own.
pub(crate) const VALID_SHARE: &[(&str, f64)] = &[
    // (24/256, 9.4%) templates whose edits Zun's schema allows, most in a zone no host has.
    ("capsule_templates", 0.15),
    // (6/256, 2.3%) only capsule creates can succeed: a chunked body or a duplicate key
    // around a valid template.
    ("raw_bodies", 0.05),
    // (7/256, 2.7%) the other volumes name a zone that does not exist.
    ("volume_creates", 0.06),
    // (14/128, 10.9%) most groups name another project; the network API ignores a
    // `tenant_id` or `project_id` that is not a string (Neutron refuses it).
    ("group_bodies", 0.18),
    // (4/256, 1.6%) most rules name a group that does not exist.
    ("rule_bodies", 0.04),
    // (90/256, 35.2%) a list with odd parameters it ignores (unknown keys of the capsule
    // list, as Zun; anything on limits, quotas and one group) is a list.
    ("list_queries", 0.45),
    // (5/256, 2.0%) an empty or name-like segment may route to something real.
    ("paths", 0.05),
    // (71/256, 27.7%) demo's own token with odd but allowed headers (and, left to the API,
    // a missing, doubled or malformed Host: see `headers::header_judged`).
    ("headers", 0.38),
    // (13/256, 5.1%) names, descriptions and metadata of the fixture volume.
    ("volume_changes", 0.08),
];

/// What the contract says about one generated request.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    /// Certainly invalid, for this reason: it must be answered 4xx.
    Invalid(String),
    /// May be valid; the kinds of hostile edit it carries.
    MayBeValid(Vec<String>),
}

impl Verdict {
    /// From a judge's finding and the kinds of edit the case made.
    pub(crate) fn of(judged: Judged, kinds: Vec<String>) -> Self {
        match judged {
            Err(why) => Verdict::Invalid(why),
            Ok(()) => Verdict::MayBeValid(kinds),
        }
    }
}

/// What one property's requests got.
#[derive(Default)]
pub(crate) struct Tally {
    /// Requests judged.
    pub(crate) cases: u64,
    /// Of them, certainly invalid (each got its 4xx, or the run failed).
    pub(crate) invalid: u64,
    /// Of them, answered 2xx: may-be-valid inputs that were valid.
    pub(crate) valid: u64,
    /// Why the invalid ones were, by the place the judge named.
    pub(crate) reasons: BTreeMap<String, u64>,
    /// The edit kinds the valid inputs carried.
    pub(crate) kinds: BTreeMap<String, u64>,
    /// The first few valid inputs.
    pub(crate) examples: Vec<String>,
}

/// The place a judge's reason names, with indices as `N` (`spec.containers.N.image`).
fn place(why: &str) -> String {
    let head = why.split(": ").next().unwrap_or(why);
    head.split('.')
        .map(|s| {
            if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
                "N"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl Stack {
    /// Sends a hostile request and judges its answer: a 5xx, a hang or a dropped connection
    /// fails the case; a success runs `undo` with its JSON (`Value::Null` if none) first, so
    /// nothing stays made; then a certainly invalid request must have had a 4xx.
    pub(crate) fn probe(
        &self,
        w: &Wire,
        verdict: &Verdict,
        undo: impl FnOnce(&Value) -> Result<(), TestCaseError>,
    ) -> Result<(), TestCaseError> {
        let (status, body) = match self.send(w) {
            Outcome::Answer { status, body } if status >= 500 => {
                return Err(TestCaseError::fail(format!(
                    "{status} from {w:?}\n    answer: {}",
                    clip(&String::from_utf8_lossy(&body), 800)
                )))
            }
            Outcome::Answer { status, body } => (status, body),
            Outcome::Hang => {
                return Err(TestCaseError::fail(format!(
                    "no answer within {TIMEOUT:?} to {w:?}"
                )))
            }
            Outcome::Dropped(why) => {
                return Err(TestCaseError::fail(format!(
                    "connection dropped without an answer ({why}) to {w:?}"
                )))
            }
        };
        let success = (200..300).contains(&status);
        let undone = if success {
            undo(&serde_json::from_slice(&body).unwrap_or(Value::Null))
        } else {
            Ok(())
        };
        let property = *self.property.lock().unwrap();
        let mut stats = self.stats.lock().unwrap();
        let t = stats.tallies.entry(property).or_default();
        t.cases += 1;
        match verdict {
            Verdict::Invalid(why) => {
                t.invalid += 1;
                *t.reasons.entry(place(why)).or_default() += 1;
                if !(400..500).contains(&status) {
                    return Err(TestCaseError::fail(format!(
                        "must be a 4xx ({why}), got {status} for {w:?}\n    answer: {}",
                        clip(&String::from_utf8_lossy(&body), 300)
                    )));
                }
            }
            Verdict::MayBeValid(kinds) if success => {
                t.valid += 1;
                for k in kinds {
                    *t.kinds.entry(k.clone()).or_default() += 1;
                }
                if t.examples.len() < 3 {
                    t.examples
                        .push(format!("{kinds:?}: {}", clip(&format!("{w:?}"), 400)));
                }
            }
            Verdict::MayBeValid(_) => {}
        }
        undone
    }

    /// Prints each property's tally and returns the bounds it broke.
    pub(crate) fn judge_shares(&self) -> Vec<String> {
        let stats = self.stats.lock().unwrap();
        let mut problems = Vec::new();
        println!("  per property: must be 4xx (all were) / may be valid / were valid, of all:");
        for (name, t) in &stats.tallies {
            let share = t.valid as f64 / t.cases.max(1) as f64;
            let bound = VALID_SHARE.iter().find(|(p, _)| p == name).map(|(_, b)| *b);
            println!(
                "  {name}: {} / {} / {} of {} ({:.1}% valid, bound {})",
                t.invalid,
                t.cases - t.invalid,
                t.valid,
                t.cases,
                100.0 * share,
                bound.map_or_else(|| "none".to_owned(), |b| format!("{:.0}%", 100.0 * b))
            );
            let mut reasons: Vec<(&String, &u64)> = t.reasons.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let top: Vec<String> = reasons
                .iter()
                .take(4)
                .map(|(r, n)| format!("{r} ×{n}"))
                .collect();
            if !top.is_empty() {
                println!("    invalid, most often at: {}", top.join(", "));
            }
            if t.valid > 0 {
                let mut kinds: Vec<(&String, &u64)> = t.kinds.iter().collect();
                kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let all: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
                println!("    valid by edit kind: {}", all.join(", "));
                for e in &t.examples {
                    println!("    e.g. {e}");
                }
            }
            match bound {
                Some(b) if share > b => problems.push(format!(
                    "property {name}: {} of its {} hostile inputs were valid ({:.1}%), more than \
                     its bound of {:.0}%; valid by edit kind: {:?}",
                    t.valid,
                    t.cases,
                    100.0 * share,
                    100.0 * b,
                    t.kinds
                )),
                None => problems.push(format!("property {name} has no bound on its valid share")),
                Some(_) => {}
            }
        }
        problems
    }
}
