//! zun-api's Prometheus metrics on devstack's metrics listener, after the real clients used
//! the API: python-zunclient's requests under their route templates, Keystone token checks,
//! and devstack's running capsule counted by its host and status.

use std::time::Duration;

use tempest::{env, zun, User};
use test_support::openmetrics::{samples, value, Sample};

fn scrape() -> (String, Vec<Sample>) {
    let url = format!("{}/metrics", env("ZUN_TEST_API_METRICS_URL"));
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(&url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), 200, "{url}");
    let text = resp.text().unwrap();
    let s = samples(&text);
    (text, s)
}

#[test]
fn zunclients_requests_tokens_and_capsules_show_in_the_metrics() {
    let (_, before) = scrape();
    let listed = |s: &[Sample]| {
        value(
            s,
            "zun_api_requests_total",
            &[
                ("api", "container"),
                ("route", "/v1/capsules"),
                ("method", "GET"),
                ("status", "200"),
            ],
        )
    };
    let valid = |s: &[Sample]| {
        value(
            s,
            "zun_api_token_checks_total",
            &[("kind", "keystone"), ("outcome", "valid")],
        )
    };
    zun(User::Demo, &["capsule-list"]).ok();
    zun(User::Demo, &["capsule-list"]).ok();
    let (text, after) = scrape();
    assert!(listed(&after) >= listed(&before) + 2.0, "{text}");
    assert!(valid(&after) >= valid(&before) + 2.0, "{text}");
    assert!(
        after
            .iter()
            .any(|s| s.name == "zun_api_keystone_token_cache_hits_total"),
        "{text}"
    );
    // devstack's own capsule (`minimal`) runs on its compute host.
    let running: f64 = after
        .iter()
        .filter(|s| s.name == "zun_api_capsules")
        .filter(|s| s.labels.get("status").map(String::as_str) == Some("Running"))
        .filter(|s| s.labels.get("host").is_some_and(|h| !h.is_empty()))
        .map(|s| s.value)
        .sum();
    assert!(running >= 1.0, "{text}");
    assert!(
        after.iter().any(|s| s.name == "zun_api_outbox_depth"),
        "{text}"
    );
    assert!(
        after
            .iter()
            .any(|s| s.name == "zun_api_conductor_reports_total"
                && s.labels.get("kind").map(String::as_str) == Some("heartbeat")),
        "{text}"
    );
}
