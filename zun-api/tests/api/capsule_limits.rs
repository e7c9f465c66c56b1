//! What the API bounds in a capsule create: `CAP_NET_RAW` only where policy rule
//! `capsule:create:net_raw` allows it.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::common::{minimal, TestApi, ADMIN, DEMO};

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
