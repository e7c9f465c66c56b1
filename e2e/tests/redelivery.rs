//! Every compute request delivered a second time changes nothing, as a broker's redelivery
//! after a lost acknowledgement would deliver it: a tap on the host's queue keeps a copy of
//! each request the API sends, byte for byte, and the test publishes that copy on the queue
//! again once the first delivery's effect is visible. The host must do nothing twice, and the
//! API must not change its record of what exists: `create_capsule` (re-reported, not built
//! again; and, late after the delete, not built at all), `delete_capsule`, `sync_capsules`,
//! `set_firewall` (the newest and older documents), `create_volume` (and, late after the
//! delete, not made again), `delete_volume`, the `container_logs` call (answered each time,
//! reads only), a `container_action` (stop: the container stays stopped, the history keeps one
//! action) and a `container_call` (top: answered the same each time).

use std::time::{Duration, Instant};

use capsule_types::rpc::{
    compute_queue, ComputeRequest, ContainerCall, ContainerReply, Envelope, LogsReply,
    CONDUCTOR_QUEUE,
};
use capsule_types::secgroup::{Direction, HostFirewall};
use e2e::tap::{Tap, Tapped};
use e2e::{journal_counts, Compute, Stack, DEMO};
use serde_json::{json, Value};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);

/// The request a tapped message carries.
fn request(m: &Tapped) -> Option<ComputeRequest> {
    rpc::decode::<ComputeRequest>(&m.payload)
        .ok()
        .map(|e| e.body)
}

/// A request of our own, as the API would send it (for one the API never sends itself).
fn ours(body: ComputeRequest) -> Tapped {
    Tapped {
        payload: rpc::encode(&Envelope::new(body, None)).expect("encode"),
        wants_reply: false,
    }
}

/// Waits until what was sent to the host's queue, and what the host then reported, has been
/// handled: both queues are empty (a consumer acknowledges only after the effect).
async fn settle(stack: &Stack, queue: &str) {
    stack.wait_drained(&[queue, CONDUCTOR_QUEUE], LONG).await;
}

/// How many journal lines of the host are exactly `line`.
fn journaled(c: &Compute, line: &str) -> usize {
    c.journal().iter().filter(|l| *l == line).count()
}

/// A view without its `updated_at` times (a report that changes nothing still stamps them).
fn unstamped(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "updated_at")
                .map(|(k, v)| (k.clone(), unstamped(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(unstamped).collect()),
        other => other.clone(),
    }
}

/// Waits until the capsule as an admin sees it satisfies `pred`.
async fn wait_view(stack: &Stack, uuid: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + LONG;
    loop {
        let c = stack.show(uuid).await;
        if let Some(c) = c.as_ref().filter(|c| pred(c)) {
            return c.clone();
        }
        assert!(
            Instant::now() < deadline,
            "capsule {uuid}: never {what}; last: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capsule_requests_delivered_twice_change_nothing() {
    let stack = Stack::start().await;
    let queue = compute_queue("c1");
    let tap = Tap::start(&stack, &queue).await;
    let c1 = stack.compute("c1", 4096, 0).await;
    let uuid = stack.create("twice", 64).await;
    let id: Uuid = uuid.parse().unwrap();
    let running = stack.wait_status(&uuid, "Running", LONG).await;
    let create = tap
        .wait_for("the create", |m| match request(m)? {
            ComputeRequest::CreateCapsule { capsule } if capsule.uuid == id => Some(m.clone()),
            _ => None,
        })
        .await;
    settle(&stack, &queue).await;

    // create_capsule again: the host reports the capsule's state again (the API's record is
    // stamped anew: the duplicate was handled), and builds nothing.
    let files = c1.files();
    tap.cast_again(&create).await;
    let stamp = running["updated_at"].as_str().unwrap().to_owned();
    let again = wait_view(&stack, &uuid, "re-reported", |c| {
        c["updated_at"].as_str().is_some_and(|t| t > stamp.as_str())
    })
    .await;
    settle(&stack, &queue).await;
    assert_eq!(
        journal_counts(&c1.journal()).get(&uuid),
        Some(&(1, 0)),
        "{:?}",
        c1.journal()
    );
    assert_eq!(c1.live(), vec![uuid.clone()]);
    assert_eq!(c1.files(), files, "the host changed");
    assert_eq!(unstamped(&again), unstamped(&running));

    // sync_capsules (the capsule's, then all of them), twice each: nothing was owed, so
    // nothing changes. (The API sends none today; it is the conductor's to send.)
    let files = c1.files();
    for body in [
        ComputeRequest::SyncCapsules { capsules: vec![id] },
        ComputeRequest::SyncCapsules { capsules: vec![] },
    ] {
        let m = ours(body);
        tap.cast_again(&m).await;
        tap.cast_again(&m).await;
    }
    settle(&stack, &queue).await;
    assert_eq!(c1.files(), files, "the host changed");
    let synced = stack.show(&uuid).await.unwrap();
    assert_eq!(unstamped(&synced), unstamped(&running));

    // container_logs, a call: answered again, the same, and nothing on the host changes.
    let name = running["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, answer) = stack
        .call(
            DEMO,
            reqwest::Method::GET,
            &format!("/v1/containers/{name}/logs"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    let logs = tap
        .wait_for("the logs call", |m| match request(m)? {
            ComputeRequest::ContainerLogs { capsule, .. } if capsule == id && m.wants_reply => {
                Some(m.clone())
            }
            _ => None,
        })
        .await;
    let files = c1.files();
    let mut replies = Vec::new();
    for _ in 0..2 {
        let reply = tap.call_again(&logs).await;
        replies.push(rpc::decode::<LogsReply>(&reply).expect("a logs reply").body);
    }
    assert_eq!(replies[0], replies[1]);
    match &replies[0] {
        LogsReply::Unavailable { message } => assert_eq!(
            answer["errors"][0]["detail"].as_str(),
            Some(message.as_str()),
            "{answer}"
        ),
        other => panic!("the fake runtime keeps no logs: {other:?}"),
    }
    settle(&stack, &queue).await;
    assert_eq!(c1.files(), files, "a read changed the host");

    // delete_capsule again, after the capsule is gone: nothing is torn down twice and the
    // API does not bring it back.
    assert_eq!(stack.delete(&uuid, false).await, 204);
    stack.wait_gone(&uuid, LONG).await;
    let delete = tap
        .wait_for("the delete", |m| match request(m)? {
            ComputeRequest::DeleteCapsule { capsule } if capsule == id => Some(m.clone()),
            _ => None,
        })
        .await;
    settle(&stack, &queue).await;
    let files = c1.files();
    tap.cast_again(&delete).await;
    settle(&stack, &queue).await;
    assert!(stack.show(&uuid).await.is_none());
    assert_eq!(journal_counts(&c1.journal()).get(&uuid), Some(&(1, 1)));
    assert!(c1.live().is_empty());
    assert_eq!(c1.files(), files, "the host changed");

    // The create, delivered late (after the delete): not honoured.
    tap.cast_again(&create).await;
    settle(&stack, &queue).await;
    assert!(stack.show(&uuid).await.is_none());
    assert_eq!(journal_counts(&c1.journal()).get(&uuid), Some(&(1, 1)));
    assert!(c1.live().is_empty());
    assert_eq!(c1.files(), files, "the late create changed the host");
    stack.stop().await;
}

/// The security-group document the fake runtime keeps, byte for byte.
fn doc(c: &Compute) -> Vec<u8> {
    std::fs::read(c.state_dir.join("runtime/firewall.json")).unwrap_or_default()
}

/// Whether any group of `d` opens ingress port 80.
fn port_80(d: &HostFirewall) -> bool {
    d.groups
        .values()
        .flatten()
        .any(|r| r.direction == Direction::Ingress && r.port_range_min == Some(80))
}

/// The firewall documents the host was sent so far, oldest first.
fn documents(tap: &Tap) -> Vec<(u64, Tapped)> {
    tap.messages()
        .into_iter()
        .filter_map(|m| match request(&m)? {
            ComputeRequest::SetFirewall { firewall } => Some((firewall.epoch, m)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_documents_delivered_twice_change_nothing() {
    let stack = Stack::start().await;
    let queue = compute_queue("c1");
    let tap = Tap::start(&stack, &queue).await;
    let c1 = stack.compute("c1", 4096, 0).await;
    let uuid = stack.create("walled", 64).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    let default = stack.default_group(DEMO).await;
    let rule = json!({"security_group_rule": {"security_group_id": default,
        "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
        "remote_ip_prefix": "0.0.0.0/0"}});
    let (status, created) = stack
        .net_call(
            DEMO,
            reqwest::Method::POST,
            "/v2.0/security-group-rules",
            Some(&rule),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    // The newest document, with the rule, is on the host.
    let newest = tap
        .wait_for("the document with the rule", |m| match request(m)? {
            ComputeRequest::SetFirewall { firewall } if port_80(&firewall) => Some(firewall.epoch),
            _ => None,
        })
        .await;
    c1.wait_firewall("the newest document on the host", LONG, |d| {
        d.epoch == newest
    });
    settle(&stack, &queue).await;
    let sent = documents(&tap);
    assert!(
        sent.iter().any(|(e, _)| *e < newest),
        "no older document to send again: {:?}",
        sent.iter().map(|(e, _)| e).collect::<Vec<_>>()
    );
    let before = doc(&c1);
    // Each document again, the newest first, then the older ones: the host keeps the newest.
    for (epoch, m) in sent.iter().rev() {
        tap.cast_again(m).await;
        settle(&stack, &queue).await;
        assert_eq!(
            doc(&c1),
            before,
            "the document of epoch {epoch} again changed the host's (epoch {newest})"
        );
    }
    let kept = c1.firewall();
    assert_eq!(kept.epoch, newest);
    assert!(port_80(&kept), "{kept:?}");
    // The host's heartbeats still show the newest epoch: the API sees nothing behind and
    // sends nothing more (only our copies were sent).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(documents(&tap).len(), 2 * sent.len());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_requests_delivered_twice_change_nothing() {
    let stack = Stack::start().await;
    let queue = compute_queue("c1");
    let tap = Tap::start(&stack, &queue).await;
    let c1 = stack.compute("c1", 4096, 0).await;
    let (status, created) = stack
        .volume_call(
            DEMO,
            reqwest::Method::POST,
            "/volumes",
            Some(&json!({"volume": {"size": 1, "name": "twice"}})),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["volume"]["id"].as_str().unwrap().to_owned();
    let vid: Uuid = id.parse().unwrap();
    let path = format!("/volumes/{id}");
    let deadline = Instant::now() + LONG;
    let available = loop {
        let (status, v) = stack
            .volume_call(DEMO, reqwest::Method::GET, &path, None)
            .await;
        assert_eq!(status, 200, "{v}");
        if v["volume"]["status"] == "available" {
            break v;
        }
        assert!(Instant::now() < deadline, "never available: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let create = tap
        .wait_for("the volume's create", |m| match request(m)? {
            ComputeRequest::CreateVolume { volume, .. } if volume == vid => Some(m.clone()),
            _ => None,
        })
        .await;
    settle(&stack, &queue).await;
    let marker = format!("runtime/fake-volume-{id}");
    assert!(c1
        .files()
        .keys()
        .any(|p| p.to_str() == Some(marker.as_str())));

    // create_volume again: the host keeps the volume it has; the API's record is unchanged.
    let files = c1.files();
    tap.cast_again(&create).await;
    settle(&stack, &queue).await;
    assert_eq!(journaled(&c1, &format!("create_volume {id}")), 1);
    assert_eq!(c1.files(), files, "the host changed");
    let (status, v) = stack
        .volume_call(DEMO, reqwest::Method::GET, &path, None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, available);

    // delete_volume again, after the volume is gone: nothing is removed twice, and the API
    // still has no such volume.
    let (status, body) = stack
        .volume_call(DEMO, reqwest::Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + LONG;
    loop {
        let (status, v) = stack
            .volume_call(DEMO, reqwest::Method::GET, &path, None)
            .await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "never gone: {status} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delete = tap
        .wait_for("the volume's delete", |m| match request(m)? {
            ComputeRequest::DeleteVolume { volume } if volume == vid => Some(m.clone()),
            _ => None,
        })
        .await;
    settle(&stack, &queue).await;
    assert_eq!(journaled(&c1, &format!("delete_volume {id}")), 1);
    let files = c1.files();
    assert!(!files.keys().any(|p| p.to_str() == Some(marker.as_str())));
    tap.cast_again(&delete).await;
    settle(&stack, &queue).await;
    assert_eq!(journaled(&c1, &format!("delete_volume {id}")), 1);
    assert_eq!(c1.files(), files, "the host changed");
    let (status, v) = stack
        .volume_call(DEMO, reqwest::Method::GET, &path, None)
        .await;
    assert_eq!(status, 404, "{v}");

    // create_volume again, after the delete: a late create does not bring the volume back.
    tap.cast_again(&create).await;
    settle(&stack, &queue).await;
    assert_eq!(journaled(&c1, &format!("create_volume {id}")), 1);
    assert!(
        !c1.files()
            .keys()
            .any(|p| p.to_str() == Some(marker.as_str())),
        "the deleted volume was made again"
    );
    let (status, v) = stack
        .volume_call(DEMO, reqwest::Method::GET, &path, None)
        .await;
    assert_eq!(status, 404, "{v}");
    stack.stop().await;
}

/// The actions in the history of container `name`, as demo lists them.
async fn actions(stack: &Stack, name: &str) -> Vec<String> {
    let path = format!("/v1/containers/{name}/container_actions");
    let (status, list) = stack.call(DEMO, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{list}");
    list["containerActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_actions_and_calls_delivered_twice_change_nothing() {
    let stack = Stack::start().await;
    let queue = compute_queue("c1");
    let tap = Tap::start(&stack, &queue).await;
    let c1 = stack.compute("c1", 4096, 0).await;
    let uuid = stack.create("acts", 64).await;
    let running = stack.wait_status(&uuid, "Running", LONG).await;
    let name = running["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();

    // top, a call: answered again, the same, and nothing on the host changes.
    let top = format!("/v1/containers/{name}/top");
    let (status, shown) = stack.call(DEMO, reqwest::Method::GET, &top, None).await;
    assert_eq!(status, 200, "{shown}");
    let call = tap
        .wait_for("the top call", |m| match request(m)? {
            ComputeRequest::ContainerCall {
                call: ContainerCall::Top { .. },
                ..
            } if m.wants_reply => Some(m.clone()),
            _ => None,
        })
        .await;
    settle(&stack, &queue).await;
    let files = c1.files();
    let mut replies = Vec::new();
    for _ in 0..2 {
        let reply = tap.call_again(&call).await;
        replies.push(rpc::decode::<ContainerReply>(&reply).expect("a reply").body);
    }
    assert_eq!(replies[0], replies[1]);
    assert!(
        matches!(replies[0], ContainerReply::Top { .. }),
        "{:?}",
        replies[0]
    );
    settle(&stack, &queue).await;
    assert_eq!(c1.files(), files, "a read changed the host");

    // stop, an action: delivered again once the container is stopped, it stays stopped, the
    // capsule's record does not change and the history still holds one stop.
    let stop = format!("/v1/containers/{name}/stop?timeout=0");
    let (status, body) = stack.call(DEMO, reqwest::Method::POST, &stop, None).await;
    assert_eq!(status, 202, "{body}");
    let stopped = wait_view(&stack, &uuid, "stopped", |c| {
        c["containers"][0]["status"] == "Stopped" && c["containers"][0]["task_state"].is_null()
    })
    .await;
    let action = tap
        .wait_for("the stop", |m| match request(m)? {
            ComputeRequest::ContainerAction { .. } => Some(m.clone()),
            _ => None,
        })
        .await;
    settle(&stack, &queue).await;
    let history = actions(&stack, &name).await;
    assert_eq!(
        history.iter().filter(|a| *a == "stop").count(),
        1,
        "{history:?}"
    );
    tap.cast_again(&action).await;
    settle(&stack, &queue).await;
    let again = stack.show(&uuid).await.unwrap();
    assert_eq!(unstamped(&again), unstamped(&stopped));
    assert_eq!(actions(&stack, &name).await, history);
    stack.stop().await;
}
