//! What the API bounds in a capsule create: `CAP_NET_RAW` only where policy rule
//! `capsule:create:net_raw` allows it, and Zun's `default_cpu` / `default_memory` for the
//! containers that ask for none, in the view, in the host's claim and in the message the host
//! enforces (an in-process bus and a fake agent that keeps what reaches the host's queue).

use std::time::Duration;

use axum::http::StatusCode;
use capsule_types::rpc::{compute_queue, ComputeRequest, Envelope};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::common::{heartbeat, minimal, TestApi, ADMIN, DEMO};

fn with_net_raw(name: &str) -> Value {
    let mut t = minimal(name);
    t["spec"]["containers"][0]["securityContext"] = json!({"capabilities": {"add": ["NET_RAW"]}});
    t
}

#[tokio::test]
async fn net_raw_needs_the_policy_rule_and_nothing_else_can_be_added() {
    let api = TestApi::new("").await;
    let r = api.create(DEMO, with_net_raw("raw")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert_eq!(
        r.detail(),
        "Policy doesn't allow capsule:create:net_raw to be performed."
    );
    assert_eq!(
        api.capsule_count().await,
        0,
        "a refused create makes nothing"
    );
    // Any other capability is a 400 at its path, for anyone.
    let mut t = minimal("admin");
    t["spec"]["containers"][0]["securityContext"] = json!({"capabilities": {"add": ["SYS_ADMIN"]}});
    let r = api.create(ADMIN, t).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(r.detail().contains("only NET_RAW can"), "{}", r.detail());
    assert_eq!(api.capsule_count().await, 0);
    // Admins may; a member without it is not asked about the rule.
    let r = api.create(ADMIN, with_net_raw("raw")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let r = api.create(DEMO, minimal("plain")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(api.capsule_count().await, 2);

    // A policy file can open it to members.
    let dir = std::env::temp_dir().join(format!("zun-policy-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(&file, "\"capsule:create:net_raw\": \"role:member\"\n").unwrap();
    let api = TestApi::new(&format!("[policy]\nfile = \"{}\"\n", file.display())).await;
    let r = api.create(DEMO, with_net_raw("raw")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fake compute agent: passes on what reaches the host's queue.
struct Agent(mpsc::UnboundedSender<Vec<u8>>);

impl rpc::Handler for Agent {
    fn handle(&self, d: rpc::Delivery) -> impl std::future::Future<Output = rpc::Disposition> {
        let _ = self.0.send(d.payload);
        async { rpc::Disposition::Ack }
    }
}

#[tokio::test]
async fn containers_without_requests_get_the_defaults_claimed_enforced_and_shown() {
    let mut api = TestApi::new("[limits]\ndefault_cpu = 0.5\ndefault_memory = 96\n").await;
    let bus = rpc::MemoryBus::new();
    api.state = api.state.clone().with_bus(rpc::Bus::Memory(bus.clone()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let agent = bus.consume(rpc::QueueSpec::named(&compute_queue("c1"), 8), Agent(tx));
    heartbeat(&api.state.db, "c1").await;

    let mut t = minimal("defaults");
    t["spec"]["containers"] = json!([
        {"image": "busybox", "name": "bare", "command": ["sleep", "1"]},
        {"image": "busybox", "name": "asks", "command": ["sleep", "1"],
         "resources": {"requests": {"memory": 64, "cpu": 0.25}}},
        {"image": "busybox", "name": "half", "command": ["sleep", "1"],
         "resources": {"requests": {"memory": 32}}},
    ]);
    let r = api.create(DEMO, t).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["status"], "Creating", "placed: {}", r.json);
    // The view: each container its own or the default; the capsule their sum.
    let by_name = |n: &str| {
        r.json["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            by_name("bare")["cpu"].clone(),
            by_name("bare")["memory"].clone()
        ),
        (json!(0.5), json!("96"))
    );
    assert_eq!(
        (
            by_name("asks")["cpu"].clone(),
            by_name("asks")["memory"].clone()
        ),
        (json!(0.25), json!("64"))
    );
    assert_eq!(
        (
            by_name("half")["cpu"].clone(),
            by_name("half")["memory"].clone()
        ),
        (json!(0.5), json!("32"))
    );
    assert_eq!(r.json["cpu"], json!(1.25));
    assert_eq!(r.json["memory"], "192");
    // The host's claim.
    let h = api.get("/v1/hosts/", ADMIN, Some("1.4")).await;
    let host = &h.json["hosts"][0];
    assert_eq!(
        (host["cpu_used"].clone(), host["mem_used"].clone()),
        (json!(1.25), json!(192))
    );
    // The message the host enforces carries them.
    let payload = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a request within 5 s")
        .expect("the agent runs");
    let env: Envelope<ComputeRequest> = serde_json::from_slice(&payload).unwrap();
    let ComputeRequest::CreateCapsule { capsule } = env.body else {
        panic!("not a create: {:?}", env.body);
    };
    let asked: Vec<_> = capsule
        .template
        .containers
        .iter()
        .map(|c| (c.cpu, c.memory_mib))
        .collect();
    assert_eq!(
        asked,
        [
            (Some(0.5), Some(96)),
            (Some(0.25), Some(64)),
            (Some(0.5), Some(32))
        ]
    );
    drop(agent);
}
