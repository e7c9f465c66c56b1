//! Security-group documents through the real broker, with the fake runtime (which keeps the
//! document it would enforce): a host gets its capsules' groups when they are placed there, a
//! rule created through the network API reaches it, and a restarted agent that lost the
//! update sent while it was down is sent the current document again by the conductor, from
//! its heartbeat alone. (A duplicate delivery of a document: `redelivery.rs`.)

use std::time::{Duration, Instant};

use capsule_types::rpc::{compute_queue, ComputeRequest};
use capsule_types::secgroup::{Direction, HostFirewall};
use e2e::tap::Tap;
use e2e::{Compute, Stack, DEMO};
use serde_json::json;
use test_support::wait::until_async;

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
async fn hosts_get_their_groups_rule_changes_and_a_lost_update_after_a_restart() {
    let stack = Stack::start().await;
    let queue = compute_queue("c1");
    let tap = Tap::start(&stack, &queue).await;
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

    // The agent goes down and the rule is deleted meanwhile; the update sent to it is lost
    // (purged from its queue before anyone took it). Only the conductor's check of the
    // restarted agent's heartbeat (no epoch yet) can bring it the current document.
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
    let removal = tap
        .wait_for("the rule's removal", |m| {
            match rpc::decode::<ComputeRequest>(&m.payload).ok()?.body {
                ComputeRequest::SetFirewall { firewall } if firewall.epoch > opened.epoch => {
                    Some(*firewall)
                }
                _ => None,
            }
        })
        .await;
    assert!(!port_80(&removal, &default), "{removal:?}");
    until_async(LONG, Duration::from_millis(100), async || {
        match stack.queue_messages(&queue).await {
            Some(n) if n > 0 => Ok(()),
            n => Err(format!("the rule's removal never reached {queue}: {n:?}")),
        }
    })
    .await;
    let lost = stack.purge_queue(&queue).await;
    assert!(lost >= 1, "nothing was purged");
    assert_eq!(stack.queue_messages(&queue).await, Some(0));
    assert!(
        port_80(&doc(&c1), &default),
        "the host had the removal already"
    );
    c1.restart();
    let after = wait_doc(&c1, "the rule's removal after the restart", |d| {
        !port_80(d, &default) && d.capsules.contains_key(&capsule)
    });
    // A document made after the lost one, not the lost one delivered after all.
    assert!(
        after.epoch > removal.epoch,
        "{} {}",
        after.epoch,
        removal.epoch
    );

    // A capsule deleted leaves the document.
    assert_eq!(stack.delete(&uuid, false).await, 204);
    stack.wait_gone(&uuid, LONG).await;
    wait_doc(&c1, "the capsule gone from the document", |d| {
        !d.capsules.contains_key(&capsule)
    });
    stack.stop().await;
}
