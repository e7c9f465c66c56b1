//! Security-group documents through the real broker, with the fake runtime (which keeps the
//! document it would enforce): a host gets its capsules' groups when they are placed there, a
//! rule created through the network API reaches it, and a restarted agent that lost the
//! update sent while it was down is sent the current document again by the conductor, from
//! its heartbeat alone. (A duplicate delivery of a document: `redelivery.rs`.)

use std::time::Duration;

use capsule_types::rpc::{compute_queue, ComputeRequest};
use e2e::tap::Tap;
use e2e::{opens, Stack, DEMO};
use serde_json::json;
use test_support::wait::until_async;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_get_their_groups_rule_changes_and_a_lost_update_after_a_restart() {
    let stack = Stack::start().await;
    let queue = compute_queue("c1");
    let tap = Tap::start(&stack, &queue).await;
    let mut c1 = stack.compute("c1", 4096, 0).await;
    let uuid = stack.create("sg-sync", 64).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    let capsule: uuid::Uuid = uuid.parse().unwrap();

    let default = stack.default_group(DEMO).await;
    let first = c1.wait_firewall("the capsule's groups on its host", LONG, |d| {
        d.capsules.get(&capsule) == Some(&vec![default.clone()])
    });
    assert!(first.groups.contains_key(&default));
    assert!(!opens(&first, &default, 80));

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
    let opened = c1.wait_firewall("the rule on the host", LONG, |d| opens(d, &default, 80));
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
    assert!(!opens(&removal, &default, 80), "{removal:?}");
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
        opens(&c1.firewall(), &default, 80),
        "the host had the removal already"
    );
    c1.restart();
    let after = c1.wait_firewall("the rule's removal after the restart", LONG, |d| {
        !opens(d, &default, 80) && d.capsules.contains_key(&capsule)
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
    c1.wait_firewall("the capsule gone from the document", LONG, |d| {
        !d.capsules.contains_key(&capsule)
    });
    stack.stop().await;
}
