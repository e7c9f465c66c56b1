//! The security-group firewall against real nftables and real TCP traffic, as root.
//!
//! Each test builds its own world of network namespaces and never touches the host's own
//! namespace, tables or links: a "host" namespace with a bridge (the gateway address) and
//! IPv4 forwarding, and "capsule" namespaces joined to the bridge by veth pairs created inside
//! the host namespace, each with an address of the test's subnet and a default route via the
//! gateway. [`NftFirewall`] runs nft inside the host namespace (`netns`). Listeners and clients run
//! on dedicated std threads that `setns` into a namespace to create their sockets; a connection
//! attempt whose SYN the firewall drops times out (500 ms), and "connected" is proven by a byte
//! the accepting side sends. A guard deletes every namespace and link of the test, even when it
//! panics, and `finish` checks that nothing is left.

mod firewall_support;

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::path::PathBuf;

use capsule_types::secgroup::{Cidr, Direction, FirewallRule};
use firewall_support::*;
use uuid::Uuid;
use zun_compute::firewall::{Drift, FirewallConfig, FirewallError, NftFirewall};

/// (1) The default group only: a capsule outside the group reaches no port. Without the
/// table, it does (the setup itself works).
#[tokio::test]
async fn default_group_keeps_non_members_out() {
    let mut w = World::new(2);
    w.serve(0, 80);
    w.serve(0, 3306);
    drop(w.assert_open(1, 0, 80));
    drop(w.assert_open(1, 0, 3306));

    let fw = w.firewall();
    let ids = ids(2);
    fw.apply(&two_groups(&w, &ids, vec![]), &w.local(&ids))
        .await
        .expect("apply");
    w.assert_blocked(1, 0, 80);
    w.assert_blocked(1, 0, 3306);
    // The host (output hook, source: the gateway) is no member either.
    w.expect_dropped("host -> capsule 0:80", w.host_to(0, 80));
    w.finish();
}

/// (2) tcp 80 from 0.0.0.0/0 opens 80 only, for capsules and the host; taking the rule out
/// closes it again.
#[tokio::test]
async fn ingress_port_rule_opens_that_port_only() {
    let mut w = World::new(2);
    w.serve(0, 80);
    w.serve(0, 3306);
    let fw = w.firewall();
    let ids = ids(2);
    let local = w.local(&ids);

    fw.apply(&two_groups(&w, &ids, vec![tcp_in(80)]), &local)
        .await
        .expect("apply with tcp 80");
    drop(w.assert_open(1, 0, 80));
    w.assert_blocked(1, 0, 3306);
    drop(w.expect_open("host -> capsule 0:80", w.host_to(0, 80)));
    w.expect_dropped("host -> capsule 0:3306", w.host_to(0, 3306));

    fw.apply(&two_groups(&w, &ids, vec![]), &local)
        .await
        .expect("apply without it");
    w.assert_blocked(1, 0, 80);
    w.expect_dropped("host -> capsule 0:80", w.host_to(0, 80));
    w.finish();
}

/// (3) A remote prefix that excludes the client keeps it out; one that includes it lets it in.
#[tokio::test]
async fn remote_prefix() {
    let mut w = World::new(2);
    w.serve(0, 80);
    let fw = w.firewall();
    let ids = ids(2);
    let local = w.local(&ids);
    let web = |remote: &str| {
        with_remote(
            rule(Direction::Ingress, Some(6), Some(80)),
            vec![cidr(remote)],
        )
    };

    fw.apply(&two_groups(&w, &ids, vec![web("192.168.0.0/16")]), &local)
        .await
        .expect("apply 192.168/16");
    w.assert_blocked(1, 0, 80);

    let subnet = w.subnet().to_string();
    fw.apply(&two_groups(&w, &ids, vec![web(&subnet)]), &local)
        .await
        .expect("apply the subnet");
    drop(w.assert_open(1, 0, 80));
    w.finish();
}

/// (4) A remote-group rule: the members' addresses let exactly them in.
#[tokio::test]
async fn remote_group_members() {
    let mut w = World::new(2);
    w.serve(0, 80);
    let fw = w.firewall();
    let ids = ids(2);
    let local = w.local(&ids);
    let members = |m: Vec<Cidr>| with_remote(rule(Direction::Ingress, Some(6), Some(80)), m);

    // The remote group has members, the client is not one of them.
    let others = vec![w.host_cidr(9), w.host_cidr(10)];
    fw.apply(&two_groups(&w, &ids, vec![members(others.clone())]), &local)
        .await
        .expect("apply without the client");
    w.assert_blocked(1, 0, 80);
    // The remote group has no members at all: matches nothing.
    fw.apply(&two_groups(&w, &ids, vec![members(vec![])]), &local)
        .await
        .expect("apply with no members");
    w.assert_blocked(1, 0, 80);

    let mut with_client = others;
    with_client.push(w.host_cidr(3));
    fw.apply(&two_groups(&w, &ids, vec![members(with_client)]), &local)
        .await
        .expect("apply with the client");
    drop(w.assert_open(1, 0, 80));
    w.finish();
}

/// (5) Egress: a group without egress rules makes no new connection to another capsule's open
/// port; an IPv6-only egress rule changes nothing; an IPv4 egress-any rule opens it. No egress
/// rule opens the host itself (the host guard), which answers the host on that port.
#[tokio::test]
async fn egress_rules() {
    let mut w = World::new(2);
    w.serve(0, 80);
    w.serve_on_host(8080);
    let fw = w.firewall();
    let ids = ids(2);
    let local = w.local(&ids);
    let with_client_egress = |egress: Vec<FirewallRule>| {
        let mut client = vec![with_remote(
            rule(Direction::Ingress, None, None),
            vec![w.host_cidr(3)],
        )];
        client.extend(egress);
        doc(
            &[(ids[0], &["sg-s"]), (ids[1], &["sg-c"])],
            vec![
                (
                    "sg-s",
                    vec![tcp_in(80), rule(Direction::Egress, None, None)],
                ),
                ("sg-c", client),
            ],
        )
    };

    fw.apply(&with_client_egress(vec![]), &local)
        .await
        .expect("apply without egress");
    w.assert_blocked(1, 0, 80);
    w.expect_dropped("capsule 1 -> host:8080", w.to_host(1, 8080));
    // The host guard: an open egress does not reach the host itself, which does answer
    // on that port.
    w.expect_dropped("capsule 0 -> host:8080", w.to_host(0, 8080));
    let at_gateway = SocketAddrV4::new(w.gateway(), 8080);
    drop(w.expect_open("host -> host:8080", connect(&w.host, at_gateway)));

    fw.apply(
        &with_client_egress(vec![v6(rule(Direction::Egress, None, None))]),
        &local,
    )
    .await
    .expect("apply IPv6 egress");
    w.assert_blocked(1, 0, 80);

    fw.apply(
        &with_client_egress(vec![rule(Direction::Egress, None, None)]),
        &local,
    )
    .await
    .expect("apply IPv4 egress");
    drop(w.assert_open(1, 0, 80));
    w.expect_dropped("capsule 1 -> host:8080", w.to_host(1, 8080));

    // An egress rule limited to another port does not cover 80.
    fw.apply(
        &with_client_egress(vec![rule(Direction::Egress, Some(6), Some(443))]),
        &local,
    )
    .await
    .expect("apply egress 443");
    w.assert_blocked(1, 0, 80);
    w.finish();
}

/// (6) A connection made while a rule allowed it keeps working after the rule is gone; new
/// ones do not.
#[tokio::test]
async fn established_connection_survives_rule_removal() {
    let mut w = World::new(2);
    w.serve(0, 80);
    let fw = w.firewall();
    let ids = ids(2);
    let local = w.local(&ids);

    fw.apply(&two_groups(&w, &ids, vec![tcp_in(80)]), &local)
        .await
        .expect("apply with tcp 80");
    let mut conn = w.assert_open(1, 0, 80);

    fw.apply(&two_groups(&w, &ids, vec![]), &local)
        .await
        .expect("apply without it");
    w.assert_blocked(1, 0, 80);
    conn.write_all(b"x")
        .expect("send on the established connection");
    let mut b = [0u8; 1];
    conn.read_exact(&mut b)
        .expect("echo on the established connection");
    assert_eq!(&b, b"x");
    drop(conn);
    w.finish();
}

/// (7) Applying the same document twice lists the same table; `remove` twice is fine and
/// leaves no table (and traffic flows again); a failing nft run names the table and carries
/// nft's stderr.
#[tokio::test]
async fn idempotent_apply_and_remove() {
    let mut w = World::new(2);
    w.serve(0, 3306);
    let fw = w.firewall();
    let ids = ids(2);
    let local = w.local(&ids);
    let d = two_groups(&w, &ids, vec![tcp_in(80)]);
    let list = || w.nft(&["list", "table", "inet", TABLE]);

    fw.apply(&d, &local).await.expect("first apply");
    let first = list().expect("table after the first apply");
    fw.apply(&d, &local).await.expect("second apply");
    let second = list().expect("table after the second apply");
    assert_eq!(first, second);
    assert!(first.contains("ip saddr vmap @egress"), "{first}");
    let tables = w.nft(&["list", "tables"]).expect("list tables");
    assert_eq!(tables.matches(TABLE).count(), 1, "{tables}");
    w.assert_blocked(1, 0, 3306);

    fw.remove().await.expect("first remove");
    fw.remove().await.expect("second remove");
    let tables = w.nft(&["list", "tables"]).expect("list tables");
    assert!(!tables.contains(TABLE), "{tables}");
    drop(w.assert_open(1, 0, 3306));

    // nft cannot enter a namespace that is not there: the error says which table and why.
    let cfg = FirewallConfig {
        netns: Some(PathBuf::from(format!("/run/netns/{}-none", w.tag))),
        table: "other_sg".into(),
        ..FirewallConfig::default()
    };
    let broken = NftFirewall::new(cfg, w.net()).expect("config");
    let e = broken.apply(&d, &local).await.expect_err("no namespace");
    match &e {
        FirewallError::Nft { table, stderr, .. } => {
            assert_eq!(table, "other_sg");
            assert!(stderr.contains("-none"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("table inet other_sg"), "{e}");
    w.finish();
}

/// (8) A capsule of the host that the document does not name takes and makes no new
/// connections, even with peers whose rules would allow it; a capsule the document names but
/// the host does not have changes nothing.
#[tokio::test]
async fn unnamed_local_capsule_fails_closed() {
    let mut w = World::new(3);
    w.serve(0, 80);
    w.serve(2, 80);
    let fw = w.firewall();
    let ids = ids(3);
    let local = w.local(&ids);
    let open = vec![
        tcp_in(80),
        with_remote(rule(Direction::Egress, None, None), vec![cidr("0.0.0.0/0")]),
    ];
    let elsewhere = Uuid::new_v4();
    let d = doc(
        &[
            (ids[0], &["open"]),
            (ids[1], &["open"]),
            (elsewhere, &["open"]),
        ],
        vec![("open", open)],
    );

    fw.apply(&d, &local).await.expect("apply");
    // Control: named capsules talk.
    drop(w.assert_open(1, 0, 80));
    // Capsule 2 is local but unnamed: nobody gets in, it gets nowhere.
    w.assert_blocked(1, 2, 80);
    w.assert_blocked(2, 0, 80);
    w.expect_dropped("host -> capsule 2:80", w.host_to(2, 80));
    let text = w.nft(&["list", "table", "inet", TABLE]).expect("list");
    assert!(
        !text.contains(&ids[2].to_string().replace('-', "_")),
        "{text}"
    );
    assert!(
        !text.contains(&elsewhere.to_string().replace('-', "_")),
        "{text}"
    );
    w.finish();
}

/// (9) A table flushed or deleted by anyone else is put back by `restore`, which says what it
/// found; an intact table is left alone, and nothing is restored after a `remove`.
#[tokio::test]
async fn a_table_changed_outside_the_agent_is_restored() {
    let mut w = World::new(2);
    w.serve(0, 80);
    let fw = w.firewall();
    let ids = ids(2);
    let local = w.local(&ids);
    // Capsule 1 may not reach capsule 0's port 80 (no rule opens it).
    let d = doc(
        &[(ids[0], &["closed"]), (ids[1], &["closed"])],
        vec![("closed", vec![])],
    );
    fw.apply(&d, &local).await.expect("apply");
    w.assert_blocked(1, 0, 80);
    assert_eq!(
        fw.restore().await.expect("restore"),
        None,
        "intact: left alone"
    );

    w.nft(&["flush", "table", "inet", TABLE]).expect("flush");
    // The fault hit: nothing enforces the groups any more.
    drop(w.assert_open(1, 0, 80));
    assert_eq!(fw.restore().await.expect("restore"), Some(Drift::Changed));
    w.assert_blocked(1, 0, 80);
    assert_eq!(
        fw.restore().await.expect("restore"),
        None,
        "restored: intact again"
    );

    w.nft(&["delete", "table", "inet", TABLE]).expect("delete");
    drop(w.assert_open(1, 0, 80));
    assert_eq!(fw.restore().await.expect("restore"), Some(Drift::Missing));
    w.assert_blocked(1, 0, 80);

    fw.remove().await.expect("remove");
    assert_eq!(
        fw.restore().await.expect("restore"),
        None,
        "removed on purpose"
    );
    let tables = w.nft(&["list", "tables"]).expect("list tables");
    assert!(!tables.contains(TABLE), "{tables}");
    w.finish();
}
