//! Probes through the API: a template's liveness probe becomes the container's Zun
//! `healthcheck` and turns `auto_heal` on; a bad probe is a 400 naming the field and creates
//! nothing; the readiness a host reports shows per container and rolled up on the capsule.

use serde_json::json;
use uuid::Uuid;

use crate::common::{TestApi, DEMO};
use crate::fake_host::Stack;

#[tokio::test]
async fn a_liveness_probe_is_the_containers_healthcheck() {
    let api = TestApi::new("").await;
    let template = json!({
        "kind": "capsule",
        "metadata": {"name": "probed"},
        "spec": {"containers": [
            {"name": "web", "image": "nginx",
             "livenessProbe": {"httpGet": {"path": "/healthz", "port": 80},
                               "periodSeconds": 5, "failureThreshold": 4,
                               "initialDelaySeconds": 2},
             "readinessProbe": {"tcpSocket": {"port": 80}}},
            {"name": "plain", "image": "busybox"},
        ]},
    });
    let r = api.create(DEMO, template).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let uuid = r.json["uuid"].as_str().unwrap();
    let c = api
        .get(&format!("/v1/capsules/{uuid}"), DEMO, Some("1.40"))
        .await
        .json;
    let web = &c["containers"][0];
    assert_eq!(
        web["healthcheck"],
        json!({"cmd": "GET http://127.0.0.1:80/healthz", "interval": 5, "retries": 4,
               "timeout": 1, "start_period": 2}),
        "{c}"
    );
    assert_eq!(web["auto_heal"], true);
    assert!(web["ready"].is_null(), "no host has said yet: {web}");
    let plain = &c["containers"][1];
    assert_eq!(plain["healthcheck"], json!({}));
    assert_eq!(plain["auto_heal"], false);
    assert!(c["ready"].is_null(), "{c}");
}

#[tokio::test]
async fn a_bad_probe_is_a_400_naming_it_and_creates_nothing() {
    let api = TestApi::new("").await;
    let template = json!({
        "kind": "capsule",
        "metadata": {"name": "bad"},
        "spec": {"containers": [{"image": "busybox",
            "livenessProbe": {"tcpSocket": {"port": 80, "host": "10.0.0.1"}}}]},
    });
    let r = api.create(DEMO, template).await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert!(
        r.detail()
            .contains("spec.containers[0].livenessProbe.tcpSocket.host"),
        "{}",
        r.detail()
    );
    assert_eq!(api.capsule_count().await, 0);
}

#[tokio::test]
async fn the_readiness_a_host_reports_shows_on_containers_and_the_capsule() {
    let s = Stack::start().await;
    let capsule: Uuid = s.capsule.parse().unwrap();
    for (ready, want) in [(Some(true), true), (Some(false), false), (Some(true), true)] {
        s.host.report_readiness(capsule, ready).await;
        s.until("the readiness shows", |s| async move {
            let c = s.show().await;
            c["ready"] == want
                && c["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|x| x["ready"] == want)
        })
        .await;
    }
    s.stop().await;
}
