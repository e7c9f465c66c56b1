//! Security-group documents through the real broker, with the fake runtime (which keeps the
//! document it would enforce): a host gets its capsules' groups when they are placed there, a
//! rule created through the network API reaches it, a duplicate delivery changes nothing, and
//! a restarted agent is sent the current document again by the conductor.

use std::time::{Duration, Instant};

use capsule_types::secgroup::{Direction, HostFirewall};
use e2e::{Compute, Stack, DEMO};
use serde_json::json;

const LONG: Duration = Duration::from_secs(60);

fn doc(c: &Compute) -> HostFirewall {
    std::fs::read(c.state_dir.join("runtime/firewall.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn wait_doc(c: &Compute, what: &str, pred: impl Fn(&HostFirewall) -> bool) -> HostFirewall {
    let deadline = Instant::now() + LONG;
    loop {
        let d = doc(c);
        if pred(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "{what}: last document {d:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_80(d: &HostFirewall, group: &str) -> bool {
    d.groups.get(group).is_some_and(|rules| {
        rules
            .iter()
            .any(|r| r.direction == Direction::Ingress && r.port_range_min == Some(80))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_get_their_groups_rule_changes_and_a_fresh_copy_after_a_restart() {
    let stack = Stack::start().await;
    let mut c1 = stack.compute("c1", 4096, 0).await;
    let uuid = stack.create("sg-sync", 64).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    let capsule: uuid::Uuid = uuid.parse().unwrap();

    let (status, groups) = stack
        .net_call(
            DEMO,
            reqwest::Method::GET,
            "/v2.0/security-groups?name=default",
            None,
        )
        .await;
    assert_eq!(status, 200, "{groups}");
    let default = groups["security_groups"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = wait_doc(&c1, "the capsule's groups on its host", |d| {
        d.capsules.get(&capsule) == Some(&vec![default.clone()])
    });
    assert!(first.groups.contains_key(&default));
    assert!(!port_80(&first, &default));

    // A rule through the network API reaches the host, with a newer epoch.
    let rule = json!({"security_group_rule": {"security_group_id": default, "direction": "ingress",
        "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}});
    let (status, created) = stack
        .net_call(
            DEMO,
            reqwest::Method::POST,
            "/v2.0/security-group-rules",
            Some(&rule),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let opened = wait_doc(&c1, "the rule on the host", |d| port_80(d, &default));
    assert!(opened.epoch > first.epoch);

    // The agent restarts: the conductor sees a heartbeat without an epoch and sends the
    // current document again (the saved one is older than what the next one brings).
    c1.kill9();
    let (status, _) = stack
        .net_call(
            DEMO,
            reqwest::Method::DELETE,
            &format!(
                "/v2.0/security-group-rules/{}",
                created["security_group_rule"]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 204);
    c1.restart();
    let after = wait_doc(&c1, "the rule's removal after the restart", |d| {
        !port_80(d, &default) && d.capsules.contains_key(&capsule)
    });
    assert!(after.epoch > opened.epoch);

    // A capsule deleted leaves the document.
    assert_eq!(stack.delete(&uuid, false).await, 204);
    stack.wait_gone(&uuid, LONG).await;
    wait_doc(&c1, "the capsule gone from the document", |d| {
        !d.capsules.contains_key(&capsule)
    });
    stack.stop().await;
}
