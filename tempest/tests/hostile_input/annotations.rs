//! What an accepted capsule then does: `metadata.annotations` at the depth limit. zun-api refuses
//! annotations nested deeper than 32 levels (`types::template::MAX_ANNOTATION_DEPTH`), because a
//! deeper template could not be decoded by the compute host; one exactly 32 deep is accepted
//! and must reach its host.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::stack::Stack;
use crate::strategies::deep_text;
use crate::wire::{clip, Api, Outcome, Wire};

/// How deeply `metadata.annotations` may nest (`types::template::MAX_ANNOTATION_DEPTH`),
/// counted as the validator counts: a flat object or array is one level, and the
/// `annotations` object itself is one.
const ANNOTATION_DEPTH: usize = 32;
/// How long the accepted capsule may stay `Creating`, and how long it may take to go.
const WAIT: Duration = Duration::from_secs(30);

impl Stack {
    /// `POST /v1/capsules` of a capsule a compute host can run (busybox, sleep, nothing
    /// published) whose `metadata.annotations` nest exactly `levels` deep:
    /// `{"x": [[…]]}`, the object and `levels - 1` arrays.
    fn annotated(&self, levels: usize) -> Wire {
        assert!(
            levels >= 2,
            "the annotations object holds at least one array"
        );
        let body = format!(
            "{{\"template\":{{\"kind\":\"capsule\",\"metadata\":{{\"name\":\"hostile-deep\",\
             \"annotations\":{{\"x\":{}}}}},\"spec\":{{\"containers\":[{{\"image\":\"busybox\",\
             \"command\":[\"sleep\",\"3600\"]}}]}}}}}}",
            deep_text(levels - 1, false)
        );
        let mut w = self.wire(
            Api::Capsule,
            "POST",
            b"/v1/capsules",
            Some(body.into_bytes()),
        );
        w.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        w.headers
            .push(("OpenStack-API-Version".into(), b"container 1.40".to_vec()));
        w
    }

    /// The capsule of an unexpected 202: recorded as a probe so that the clean-up deletes it.
    fn probe_of(&self, answer: &[u8]) -> Option<String> {
        let v: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
        let uuid = v["uuid"].as_str()?.to_owned();
        self.ledger.lock().unwrap().probes.push(uuid.clone());
        Some(uuid)
    }

    /// The depth limit of `metadata.annotations`: one level more is a 400 naming the field; a
    /// capsule exactly at the limit is a 202 that leaves `Creating` for `Running` within 30 s
    /// (its host decoded it), and is then deleted and seen gone. Returns the problems.
    pub(crate) fn deep_annotations(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let over = ANNOTATION_DEPTH + 1;
        let w = self.annotated(over);
        match self.send(&w) {
            Outcome::Answer { status: 400, body }
                if String::from_utf8_lossy(&body).contains("metadata.annotations") =>
            {
                println!(
                    "annotations {over} deep: 400 {}",
                    clip(&String::from_utf8_lossy(&body), 200)
                );
            }
            Outcome::Answer { status, body } => {
                let made = match status {
                    200..=299 => self.probe_of(&body),
                    _ => None,
                };
                problems.push(format!(
                    "annotations {over} deep: want a 400 naming metadata.annotations, got \
                     {status} {}{} for {w:?}",
                    clip(&String::from_utf8_lossy(&body), 300),
                    made.map_or_else(String::new, |u| format!(" (capsule {u})"))
                ));
            }
            other => problems.push(format!("annotations {over} deep: {other:?} for {w:?}")),
        }

        let w = self.annotated(ANNOTATION_DEPTH);
        let (status, answer) = match self.send(&w) {
            Outcome::Answer { status, body } => (status, body),
            other => {
                problems.push(format!(
                    "annotations {ANNOTATION_DEPTH} deep: {other:?} for {w:?}"
                ));
                return problems;
            }
        };
        let uuid = match (status, self.probe_of(&answer)) {
            (202, Some(uuid)) => uuid,
            (_, made) => {
                problems.push(format!(
                    "annotations {ANNOTATION_DEPTH} deep: want a 202 with the capsule, got \
                     {status} {}{} for {w:?}",
                    clip(&String::from_utf8_lossy(&answer), 300),
                    made.map_or_else(String::new, |u| format!(" (capsule {u})"))
                ));
                return problems;
            }
        };
        let path = format!("/v1/capsules/{uuid}");
        let deadline = Instant::now() + WAIT;
        let mut state = String::from("Creating");
        while Instant::now() < deadline {
            let (code, v) = self
                .rt
                .block_on(self.call(Api::Capsule, false, "GET", &path, None));
            state = if code == 200 {
                v["status"].as_str().unwrap_or("?").to_owned()
            } else {
                format!("GET {code}: {}", clip(&v.to_string(), 200))
            };
            if state != "Creating" {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        println!("a capsule with annotations {ANNOTATION_DEPTH} deep: {state}");
        if state != "Running" {
            problems.push(format!(
                "capsule {uuid} with metadata.annotations nested {ANNOTATION_DEPTH} deep (the \
                 deepest POST /v1/capsules accepts: 202) was {state} after up to {WAIT:?}, not \
                 Running{}. Request: {w:?}",
                if state == "Creating" {
                    " (its host never took it; zun-compute logs \"dropping message \
                     reason=undecodable message\" when it cannot decode a create)"
                } else {
                    ""
                }
            ));
        }

        let (code, v) = self
            .rt
            .block_on(self.call(Api::Capsule, false, "DELETE", &path, None));
        if !(200..300).contains(&code) {
            problems.push(format!(
                "DELETE {path}: {code} {}",
                clip(&v.to_string(), 300)
            ));
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, v) = self
                .rt
                .block_on(self.call(Api::Capsule, false, "GET", &path, None));
            if code == 404 {
                break;
            }
            if Instant::now() > deadline {
                problems.push(format!(
                    "capsule {uuid} with annotations {ANNOTATION_DEPTH} deep still there \
                     {WAIT:?} after its DELETE: {code} {}",
                    clip(&v.to_string(), 300)
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        problems
    }
}
