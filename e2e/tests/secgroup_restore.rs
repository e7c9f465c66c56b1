//! Security-group documents keep flowing after the API's database goes back in time or is
//! replaced: restored from a backup (the same database, an older epoch) or switched to another
//! one (a new incarnation whose epoch starts again). A host that saw a higher epoch must not
//! ignore the documents that follow; a new rule reaches it within a few heartbeats.

use std::time::Duration;

use e2e::{opens, Stack, DEMO};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

/// How long a rule may take to reach the host (a heartbeat is 1 s in the e2e stack).
const WITHIN: Duration = Duration::from_secs(20);
const LONG: Duration = Duration::from_secs(60);

async fn sql(stack: &Stack, statement: &str) {
    let conn = stack.state.db.connection();
    conn.execute(Statement::from_string(
        conn.get_database_backend(),
        statement.to_owned(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Opens tcp `port` in `group` through the network API.
async fn open(stack: &Stack, group: &str, port: u16) {
    let rule = json!({"security_group_rule": {"security_group_id": group, "direction": "ingress",
        "protocol": "tcp", "port_range_min": port, "port_range_max": port,
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_still_reach_hosts_after_the_database_is_restored_or_switched() {
    let stack = Stack::start().await;
    let c1 = stack.compute("c1", 4096, 0).await;
    let uuid = stack.create("sg-restore", 64).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    let capsule: uuid::Uuid = uuid.parse().unwrap();
    let default = stack.default_group(DEMO).await;
    c1.wait_firewall("the capsule's groups on its host", LONG, |d| {
        d.capsules.get(&capsule) == Some(&vec![default.clone()])
    });
    // Several changes, so the host has seen an epoch well above 1.
    for port in [81, 82, 83] {
        open(&stack, &default, port).await;
    }
    c1.wait_firewall("the first rules", LONG, |d| opens(d, &default, 83));
    let seen = c1.firewall().epoch;
    assert!(seen > 1, "epoch {seen}");

    // Restored from an older backup: the same database, its counter far behind the host's.
    sql(&stack, "UPDATE firewall_epoch SET epoch = 1").await;
    open(&stack, &default, 84).await;
    c1.wait_firewall("a rule made after the restore", WITHIN, |d| {
        opens(d, &default, 84)
    });

    // Switched to another database: another incarnation, its counter from the start.
    sql(
        &stack,
        "UPDATE firewall_epoch SET epoch = 0, incarnation = 'another-database'",
    )
    .await;
    open(&stack, &default, 85).await;
    c1.wait_firewall("a rule made after the switch", WITHIN, |d| {
        opens(d, &default, 85)
    });

    assert_eq!(stack.delete(&uuid, false).await, 204);
    stack.wait_gone(&uuid, LONG).await;
    stack.stop().await;
}
