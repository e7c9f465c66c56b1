//! The `zun-api` binary as operators run it: `db sync`, then serving with
//! `--log-format json` (one JSON object per line on stderr, with the request's span: its id,
//! method, path and, once authenticated, project) and `[metrics] listen` (its own listener).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::free_port;
use test_support::openmetrics::{samples, value};

use crate::common::DEMO;

/// The server, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn json_logs_carry_the_request_span_and_metrics_have_their_own_listener() {
    let dir = test_support::TempDir::new("zun-api-process");
    let (api, metrics) = (free_port(), free_port());
    let config = dir.path().join("zun-api.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nlisten = \"127.0.0.1:{api}\"\n[auth]\nstrategy = \"noauth\"\n\
             [database]\nurl = \"sqlite://{}/zun.db\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_zun-api");
    let synced = Command::new(bin)
        .args(["--config", config.to_str().unwrap(), "db", "sync"])
        .output()
        .unwrap();
    assert!(synced.status.success(), "{synced:?}");
    let mut child = Command::new(bin)
        .args(["--log-format", "json", "--config", config.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{api}/v1/capsules");
    let deadline = Instant::now() + Duration::from_secs(60);
    let resp = loop {
        let r = http
            .get(&url)
            .header("x-user-id", DEMO.user)
            .header("x-project-id", DEMO.project)
            .header("x-roles", DEMO.roles)
            .header("openstack-api-version", "container 1.40")
            .send()
            .await;
        match r {
            Ok(r) => break r,
            Err(e) => assert!(Instant::now() < deadline, "never served: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    // The request's line: JSON, with the request's span.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let handled = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line for the request: {seen:#?}"));
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");
        let span = &v["spans"][0];
        if v["message"] == "handled" && span["request_id"] == request_id.as_str() {
            break v;
        }
        seen.push(line);
    };
    let span = &handled["spans"][0];
    assert_eq!(span["name"], "request");
    assert_eq!(span["method"], "GET");
    assert_eq!(span["path"], "/v1/capsules");
    assert_eq!(span["project"], DEMO.project);
    assert_eq!(handled["status"], 200);

    // The metrics, on their own listener, count it; the API's listener does not serve them.
    let text = http
        .get(format!("http://127.0.0.1:{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let s = samples(&text);
    let listed = value(
        &s,
        "zun_api_requests_total",
        &[
            ("api", "container"),
            ("route", "/v1/capsules"),
            ("method", "GET"),
            ("status", "200"),
        ],
    );
    assert_eq!(listed, 1.0, "{text}");
    let on_api = http
        .get(format!("http://127.0.0.1:{api}/metrics"))
        .header("x-user-id", DEMO.user)
        .header("x-project-id", DEMO.project)
        .header("x-roles", DEMO.roles)
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404);
    drop(server);
}
