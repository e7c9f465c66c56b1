//! Security groups against real SQLite and PostgreSQL: one `default` group per project even
//! when first requests race, Neutron's default rules, project isolation, duplicates refused by
//! the database whoever inserts first, and groups in use kept.

#[macro_use]
mod common;

use capsule_types::secgroup::{parse_rule_create, GroupFields, NewRule};
use db::secgroups::{GroupDeleted, GroupScope, RuleCreated};
use db::{Database, NewCapsule, SecurityGroupBinding};
use serde_json::json;

both_backends!(
    the_default_group_is_made_once_with_neutrons_rules,
    groups_are_created_changed_and_deleted_per_project,
    the_same_rule_twice_is_one_rule_even_concurrently,
    rules_of_other_projects_groups_are_out_of_reach,
    a_group_capsules_use_is_kept,
    a_hosts_firewall_has_its_capsules_groups_and_member_addresses,
);

fn rule(group: &str, fields: serde_json::Value) -> NewRule {
    let mut r = json!({"security_group_id": group, "direction": "ingress"});
    for (k, v) in fields.as_object().unwrap() {
        r[k] = v.clone();
    }
    parse_rule_create(&json!({ "security_group_rule": r })).unwrap()
}

fn web(group: &str) -> NewRule {
    rule(
        group,
        json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}),
    )
}

async fn the_default_group_is_made_once_with_neutrons_rules(db: Database) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.ensure_default_security_group("p1").await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let groups = db.security_groups(GroupScope::Project("p1")).await.unwrap();
    assert_eq!(
        groups.len(),
        1,
        "a losing racer's group was left: {groups:?}"
    );
    let g = &groups[0];
    assert_eq!(g.group.name, "default");
    let mut rules: Vec<(String, String, Option<String>)> = g
        .rules
        .iter()
        .map(|r| {
            (
                r.direction.clone(),
                r.ethertype.clone(),
                r.remote_group_id.clone(),
            )
        })
        .collect();
    rules.sort();
    let me = Some(g.group.id.clone());
    assert_eq!(
        rules,
        vec![
            ("egress".into(), "IPv4".into(), None),
            ("egress".into(), "IPv6".into(), None),
            ("ingress".into(), "IPv4".into(), me.clone()),
            ("ingress".into(), "IPv6".into(), me),
        ]
    );
    // Another project gets its own.
    let other = db.ensure_default_security_group("p2").await.unwrap();
    assert_ne!(other.id, g.group.id);
}

async fn groups_are_created_changed_and_deleted_per_project(db: Database) {
    let web_group = db
        .create_security_group("p1", "web", "web servers")
        .await
        .unwrap();
    assert_eq!(web_group.rules.len(), 2);
    assert!(web_group.rules.iter().all(|r| r.direction == "egress"));
    assert!(db
        .security_groups(GroupScope::Project("p2"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(db.security_groups(GroupScope::All).await.unwrap().len(), 1);
    let id = web_group.group.id.clone();
    assert!(db
        .security_group(GroupScope::Project("p2"), &id)
        .await
        .unwrap()
        .is_none());
    let fields = GroupFields {
        name: Some("www".into()),
        description: None,
    };
    assert!(db
        .update_security_group(GroupScope::Project("p2"), &id, &fields)
        .await
        .unwrap()
        .is_none());
    let changed = db
        .update_security_group(GroupScope::Project("p1"), &id, &fields)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            changed.group.name.as_str(),
            changed.group.description.as_str()
        ),
        ("www", "web servers")
    );
    assert_eq!(changed.group.revision_number, 2);
    assert_eq!(
        db.delete_security_group(GroupScope::Project("p2"), &id, false)
            .await
            .unwrap(),
        GroupDeleted::NotFound
    );
    assert_eq!(
        db.delete_security_group(GroupScope::Project("p1"), &id, false)
            .await
            .unwrap(),
        GroupDeleted::Deleted
    );
    // Its rules went with it.
    assert!(db
        .security_group_rules(GroupScope::All)
        .await
        .unwrap()
        .is_empty());
    // The default group stays unless an admin removes it.
    let d = db.ensure_default_security_group("p1").await.unwrap();
    assert_eq!(
        db.delete_security_group(GroupScope::Project("p1"), &d.id, false)
            .await
            .unwrap(),
        GroupDeleted::IsDefault
    );
    assert_eq!(
        db.delete_security_group(GroupScope::All, &d.id, true)
            .await
            .unwrap(),
        GroupDeleted::Deleted
    );
    // And is made anew on next use.
    assert_ne!(
        db.ensure_default_security_group("p1").await.unwrap().id,
        d.id
    );
}

async fn the_same_rule_twice_is_one_rule_even_concurrently(db: Database) {
    let g = db
        .create_security_group("p1", "web", "")
        .await
        .unwrap()
        .group
        .id;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (db, r) = (db.clone(), web(&g));
        tasks.push(tokio::spawn(async move {
            db.create_security_group_rule(GroupScope::Project("p1"), &r)
                .await
        }));
    }
    let (mut added, mut exists) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RuleCreated::Added(r) => added.push(r.id),
            RuleCreated::Exists { rule_id } => exists.push(rule_id),
            RuleCreated::NoGroup => panic!("the group is there"),
        }
    }
    assert_eq!(added.len(), 1, "added {added:?}");
    assert!(
        exists.iter().all(|e| *e == added[0]),
        "{exists:?} vs {added:?}"
    );
    // Same traffic written differently is still the same rule; another port is not.
    let same = rule(
        &g,
        json!({"protocol": "6", "port_range_min": "80", "port_range_max": 80,
        "remote_ip_prefix": "0.0.0.1/0", "description": "again"}),
    );
    assert_eq!(
        db.create_security_group_rule(GroupScope::Project("p1"), &same)
            .await
            .unwrap(),
        RuleCreated::Exists {
            rule_id: added[0].clone()
        }
    );
    let mysql = rule(
        &g,
        json!({"protocol": "tcp", "port_range_min": 3306, "port_range_max": 3306}),
    );
    assert!(matches!(
        db.create_security_group_rule(GroupScope::Project("p1"), &mysql)
            .await
            .unwrap(),
        RuleCreated::Added(_)
    ));
    let rec = db
        .security_group(GroupScope::Project("p1"), &g)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.rules.len(), 4, "2 egress defaults + 80 + 3306");
    assert_eq!(rec.group.revision_number, 3);
}

async fn rules_of_other_projects_groups_are_out_of_reach(db: Database) {
    let g = db
        .create_security_group("p1", "web", "")
        .await
        .unwrap()
        .group
        .id;
    assert_eq!(
        db.create_security_group_rule(GroupScope::Project("p2"), &web(&g))
            .await
            .unwrap(),
        RuleCreated::NoGroup
    );
    let RuleCreated::Added(r) = db
        .create_security_group_rule(GroupScope::Project("p1"), &web(&g))
        .await
        .unwrap()
    else {
        panic!("not added")
    };
    assert!(db
        .security_group_rules(GroupScope::Project("p2"))
        .await
        .unwrap()
        .is_empty());
    assert!(!db
        .delete_security_group_rule(GroupScope::Project("p2"), &r.id)
        .await
        .unwrap());
    assert!(db
        .delete_security_group_rule(GroupScope::Project("p1"), &r.id)
        .await
        .unwrap());
    assert!(!db
        .delete_security_group_rule(GroupScope::Project("p1"), &r.id)
        .await
        .unwrap());
    assert_eq!(
        db.security_group_rules(GroupScope::Project("p1"))
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn a_group_capsules_use_is_kept(db: Database) {
    let g = db
        .create_security_group("p1", "web", "")
        .await
        .unwrap()
        .group
        .id;
    let uuid = uuid::Uuid::new_v4().to_string();
    let capsule = NewCapsule {
        uuid: uuid.clone(),
        name: Some("c".into()),
        project_id: "p1".into(),
        user_id: "u1".into(),
        status: "Creating".into(),
        status_reason: None,
        host: None,
        availability_zone: None,
        cpu: 0.0,
        memory: 0,
        restart_policy: "always".into(),
        restart_max_retries: 0,
        labels: json!({}),
        annotations: None,
        template: json!({}),
        security_groups: vec![SecurityGroupBinding {
            reference: "web".into(),
            security_group_id: g.clone(),
        }],
        containers: vec![],
        volume_mappings: vec![],
        volumes: vec![],
        volume_limits: Default::default(),
        claim: None,
        outbox: vec![],
    };
    db.create_capsule(capsule).await.unwrap();
    assert_eq!(
        db.delete_security_group(GroupScope::Project("p1"), &g, false)
            .await
            .unwrap(),
        GroupDeleted::InUse
    );
    assert!(db
        .security_group(GroupScope::Project("p1"), &g)
        .await
        .unwrap()
        .is_some());
}

fn placed(project: &str, host: &str, groups: &[&str]) -> NewCapsule {
    NewCapsule {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: None,
        project_id: project.into(),
        user_id: "u1".into(),
        status: "Creating".into(),
        status_reason: None,
        host: Some(host.into()),
        availability_zone: None,
        cpu: 0.0,
        memory: 0,
        restart_policy: "always".into(),
        restart_max_retries: 0,
        labels: json!({}),
        annotations: None,
        template: json!({}),
        security_groups: groups
            .iter()
            .map(|g| SecurityGroupBinding {
                reference: (*g).into(),
                security_group_id: (*g).into(),
            })
            .collect(),
        containers: vec![],
        volume_mappings: vec![],
        volumes: vec![],
        volume_limits: Default::default(),
        claim: None,
        outbox: vec![],
    }
}

async fn report_address(
    db: &Database,
    host: &str,
    seq: u64,
    uuid: &str,
    ip: &str,
) -> Option<String> {
    let state = capsule_types::rpc::CapsuleState {
        capsule: uuid.parse().unwrap(),
        status: capsule_types::CapsuleStatus::Running,
        status_reason: None,
        containers: vec![],
        addresses: json!({"capsule": [{"addr": ip, "version": 4}]}),
        volumes_released: false,
    };
    let (outcome, readdressed) = db
        .apply_capsule_state_with(host, seq, &state)
        .await
        .unwrap();
    assert_eq!(outcome, db::ReportOutcome::Applied);
    readdressed
}

async fn a_hosts_firewall_has_its_capsules_groups_and_member_addresses(db: Database) {
    use capsule_types::secgroup::{Cidr, Direction, Ethertype};
    let d = db.ensure_default_security_group("p1").await.unwrap().id;
    let d2 = db.ensure_default_security_group("p2").await.unwrap().id;
    let w = db
        .create_security_group("p1", "web", "")
        .await
        .unwrap()
        .group
        .id;
    assert!(matches!(
        db.create_security_group_rule(GroupScope::Project("p1"), &web(&w))
            .await
            .unwrap(),
        RuleCreated::Added(_)
    ));
    let c1 = placed("p1", "h1", &[&d, &w]);
    let c2 = placed("p1", "h2", &[&d]);
    let c3 = placed("p2", "h1", &[&d2]);
    for c in [&c1, &c2, &c3] {
        db.create_capsule(c.clone()).await.unwrap();
    }
    // A first address changes the groups' members; the same one again does not.
    assert_eq!(
        report_address(&db, "h1", 1, &c1.uuid, "10.89.0.2")
            .await
            .as_deref(),
        Some("p1")
    );
    assert_eq!(
        report_address(&db, "h1", 2, &c1.uuid, "10.89.0.2").await,
        None
    );
    report_address(&db, "h2", 1, &c2.uuid, "10.89.0.3").await;
    report_address(&db, "h1", 3, &c3.uuid, "10.89.0.4").await;

    let mut hosts = db.project_hosts("p1").await.unwrap();
    hosts.sort();
    assert_eq!(hosts, ["h1", "h2"]);
    let e1 = db.bump_firewall_epoch().await.unwrap();
    let e2 = db.bump_firewall_epoch().await.unwrap();
    assert!(e2.epoch > e1.epoch && db.firewall_epoch().await.unwrap() == e2.epoch);
    // One incarnation per database, made by its migration, kept by every bump.
    assert!(!e1.incarnation.is_empty());
    assert_eq!(e1.incarnation, e2.incarnation);
    // Moved up past a host's epoch (the database went back), never down.
    assert!(db.advance_firewall_epoch(e2.epoch + 10).await.unwrap());
    assert!(!db.advance_firewall_epoch(e2.epoch).await.unwrap());
    assert_eq!(db.firewall_epoch().await.unwrap(), e2.epoch + 10);

    let fw = db.host_firewall("h1", &e2).await.unwrap();
    assert_eq!((fw.epoch, &fw.incarnation), (e2.epoch, &e2.incarnation));
    let u1: uuid::Uuid = c1.uuid.parse().unwrap();
    let u3: uuid::Uuid = c3.uuid.parse().unwrap();
    assert_eq!(fw.capsules.len(), 2, "only h1's capsules: {fw:?}");
    assert_eq!(fw.capsules[&u1], vec![d.clone(), w.clone()]);
    assert_eq!(fw.capsules[&u3], vec![d2.clone()]);
    assert_eq!(fw.groups.len(), 3);
    let host = |ip: &str| Cidr::parse(ip).unwrap();
    // p1's default lets in its members on both hosts, p2's only its own.
    let from_members: Vec<_> = fw.groups[&d]
        .iter()
        .filter(|r| r.direction == Direction::Ingress && r.ethertype == Ethertype::IPv4)
        .collect();
    assert_eq!(from_members.len(), 1);
    assert_eq!(
        from_members[0].remote,
        Some(vec![host("10.89.0.2"), host("10.89.0.3")])
    );
    let p2_in: Vec<_> = fw.groups[&d2]
        .iter()
        .filter(|r| r.direction == Direction::Ingress && r.ethertype == Ethertype::IPv4)
        .collect();
    assert_eq!(p2_in[0].remote, Some(vec![host("10.89.0.4")]));
    let web_in: Vec<_> = fw.groups[&w]
        .iter()
        .filter(|r| r.direction == Direction::Ingress)
        .collect();
    assert_eq!(web_in.len(), 1);
    assert_eq!(web_in[0].protocol, Some(6));
    assert_eq!(
        (web_in[0].port_range_min, web_in[0].port_range_max),
        (Some(80), Some(80))
    );
    assert_eq!(web_in[0].remote, Some(vec![host("0.0.0.0/0")]));
    assert!(db
        .host_firewall("nowhere", &e1)
        .await
        .unwrap()
        .capsules
        .is_empty());
}
