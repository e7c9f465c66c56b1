//! zun-compute's metrics and health on devstack's compute host, and devstack's real Prometheus
//! scraping zun-api and every zun-compute: a capsule created with the unchanged
//! python-zunclient shows in Prometheus's query API with its CPU time and working set, and
//! leaves the agent's metrics once deleted.

use std::time::Duration;

use serde_json::Value;
use tempest::{
    env, examples_dir, unique_name, wait_gone, wait_status, zun, CapsuleGuard, TemplateFile, User,
};
use test_support::openmetrics::{samples, Sample};
use test_support::wait;

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `GET url`: its status and body.
fn get(url: &str) -> (u16, String) {
    let resp = http()
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (resp.status().as_u16(), resp.text().unwrap())
}

/// The compute host's scrape.
fn compute_scrape() -> (String, Vec<Sample>) {
    let url = format!("{}/metrics", env("ZUN_TEST_COMPUTE_METRICS_URL"));
    let (status, text) = get(&url);
    assert_eq!(status, 200, "{url}: {text}");
    let s = samples(&text);
    (text, s)
}

/// The series of `sample` whose `capsule` label is `capsule`.
fn of_capsule<'a>(s: &'a [Sample], name: &str, capsule: &str) -> Vec<&'a Sample> {
    s.iter()
        .filter(|x| x.name == name && x.labels.get("capsule").map(String::as_str) == Some(capsule))
        .collect()
}

/// Prometheus's answer to instant query `promql`: its `data.result` (a vector).
fn query(promql: &str) -> Result<Vec<Value>, String> {
    let url = format!("{}/api/v1/query", env("ZUN_TEST_PROMETHEUS_URL"));
    let resp = http()
        .get(&url)
        .query(&[("query", promql)])
        .send()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let body: Value = resp.json().map_err(|e| format!("{url}: {e}"))?;
    if body["status"] != "success" {
        return Err(format!("{promql}: {body}"));
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The value of one result of a vector query.
fn value_of(r: &Value) -> f64 {
    r["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn the_compute_host_serves_its_health_and_its_own_counters() {
    let url = format!("{}/healthz", env("ZUN_TEST_COMPUTE_METRICS_URL"));
    let (status, body) = get(&url);
    assert_eq!(status, 200, "{url}: {body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok", "{body}");
    assert!(
        health["last_heartbeat_seconds_ago"].as_f64().is_some(),
        "{body}"
    );

    let (text, s) = compute_scrape();
    let has = |name: &str, labels: &[(&str, &str)]| {
        s.iter().any(|x| {
            x.name == name
                && x.value > 0.0
                && labels
                    .iter()
                    .all(|(k, v)| x.labels.get(*k).map(String::as_str) == Some(*v))
        })
    };
    assert!(
        has("zun_compute_heartbeats_total", &[("outcome", "ok")]),
        "{text}"
    );
    assert!(
        has("zun_compute_reconcile_passes_total", &[("outcome", "ok")]),
        "{text}"
    );
    assert!(
        has("zun_compute_amqp_publishes_confirmed_total", &[]),
        "{text}"
    );
    // devstack's own capsule runs here: its shim answers, and its create was timed.
    assert!(has("zun_compute_shims", &[]), "{text}");
    assert!(
        has(
            "zun_compute_rpc_handled_total",
            &[("method", "create_capsule"), ("outcome", "ack")]
        ) || has(
            "zun_compute_rpc_handled_total",
            &[("method", "set_firewall")]
        ),
        "{text}"
    );
    // No label value a user chose: devstack's capsule's name is nowhere in the scrape.
    assert!(!text.contains("\"minimal\""), "{text}");
}

#[test]
fn prometheus_scrapes_both_binaries_and_sees_a_new_capsules_cpu_and_memory() {
    let name = unique_name("prom");
    // A container that spends some CPU before it sleeps.
    let file = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, |v| {
        v["spec"]["containers"][0]["command"] = serde_json::json!([
            "sh",
            "-c",
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep infinity"
        ]);
    });
    let guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
    let c = wait_status(User::Demo, &name, "Running", Duration::from_secs(90));
    let uuid = c["uuid"].as_str().unwrap().to_owned();

    // Both binaries are scraped and up.
    for job in ["zun-api", "zun-compute"] {
        let up = wait::until(Duration::from_secs(60), Duration::from_secs(1), || {
            let r = query(&format!("up{{job=\"{job}\"}}"))?;
            if !r.is_empty() && r.iter().all(|r| value_of(r) == 1.0) {
                Ok(r)
            } else {
                Err(format!("{job} not up in Prometheus: {r:?}"))
            }
        });
        assert!(!up.is_empty());
    }
    let requests = query("sum(zun_api_requests_total{api=\"container\"})").unwrap();
    assert!(
        requests.first().map(value_of).unwrap_or(0.0) > 0.0,
        "{requests:?}"
    );

    // The new capsule's container, with its CPU time and working set, on its host.
    for series in [
        "zun_compute_container_cpu_seconds_total",
        "zun_compute_container_memory_working_set_bytes",
    ] {
        let found = wait::until(Duration::from_secs(90), Duration::from_secs(2), || {
            let r = query(&format!("{series}{{capsule=\"{uuid}\"}}"))?;
            match r.first() {
                Some(x) if value_of(x) > 0.0 => Ok(x.clone()),
                _ => Err(format!("{series} of capsule {uuid}: {r:?}")),
            }
        });
        assert_eq!(found["metric"]["job"], "zun-compute", "{found}");
        assert!(
            found["metric"]["host"]
                .as_str()
                .is_some_and(|h| !h.is_empty()),
            "{found}"
        );
    }

    // Deleted, it leaves the agent's scrape.
    zun(User::Demo, &["capsule-delete", &name]).ok();
    wait_gone(User::Demo, &name, Duration::from_secs(60));
    drop(guard);
    wait::until(Duration::from_secs(30), Duration::from_millis(500), || {
        let (text, s) = compute_scrape();
        if of_capsule(&s, "zun_compute_container_running", &uuid).is_empty() {
            Ok(())
        } else {
            Err(format!("capsule {uuid} still in the scrape: {text}"))
        }
    });
}
