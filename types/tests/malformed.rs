//! Every case of `fixtures/malformed.json` must be refused with a message naming the field.
//!
//! The fixture is shared with the HTTP API's tests: a JSON array of
//! `{"name": "...", "body": <whole POST body>, "path": "<substring the error must contain>"}`.

use capsule_types::template::{parse_create_body, Limits};
use serde_json::Value;
use std::collections::HashSet;

/// Longest error text we accept: messages must never echo oversized input back.
const MAX_MESSAGE_LEN: usize = 2048;

fn cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/malformed.json");
    let text = std::fs::read_to_string(path).expect("read malformed.json");
    let value: Value = serde_json::from_str(&text).expect("malformed.json is JSON");
    value
        .as_array()
        .expect("malformed.json is an array")
        .clone()
}

#[test]
fn fixture_format() {
    let cases = cases();
    assert!(cases.len() >= 130, "only {} cases", cases.len());
    let mut names = HashSet::new();
    for case in &cases {
        let obj = case.as_object().expect("case is an object");
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "body", "path"], "{case}");
        let name = obj["name"].as_str().expect("name is a string");
        assert!(names.insert(name.to_owned()), "duplicate case name {name}");
        let path = obj["path"].as_str().expect("path is a string");
        assert!(!path.is_empty(), "{name}: empty path");
    }
}

#[test]
fn every_case_is_refused_naming_the_field() {
    let limits = Limits::default();
    let mut failures = Vec::new();
    for case in cases() {
        let name = case["name"].as_str().unwrap_or("?");
        let path = case["path"].as_str().unwrap_or("?");
        match parse_create_body(&case["body"], &limits) {
            Ok(t) => failures.push(format!("{name}: accepted ({t:?})")),
            Err(e) => {
                assert!(!e.is_empty(), "{name}: empty error list");
                let message = e.to_string();
                if !message.contains(path) {
                    failures.push(format!("{name}: {message:?} does not contain {path:?}"));
                }
                if message.len() > MAX_MESSAGE_LEN {
                    failures.push(format!("{name}: message is {} bytes long", message.len()));
                }
                for error in e.iter() {
                    if error.path.is_empty() || error.message.is_empty() {
                        failures.push(format!("{name}: empty path or message in {error:?}"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn template_alone_fails_the_same_way() {
    // The same cases through `parse_template`, for those whose body is a valid envelope.
    let limits = Limits::default();
    for case in cases() {
        let Some(template) = case["body"].get("template").filter(|t| t.is_object()) else {
            continue;
        };
        if case["body"].as_object().is_some_and(|o| o.len() != 1) {
            continue;
        }
        let name = case["name"].as_str().unwrap_or("?");
        let path = case["path"].as_str().unwrap_or("?");
        let err = capsule_types::parse_template(template, &limits)
            .expect_err(name)
            .to_string();
        assert!(
            err.contains(path),
            "{name}: {err:?} does not contain {path:?}"
        );
    }
}
