//! Services and compute nodes against real SQLite and PostgreSQL: heartbeats register and
//! refresh a host, correct its usage from the capsules placed on it (also while claims run
//! concurrently), the operator switches, deletes, lookups and keyset paging of nodes.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use capsule_types::rpc::{Heartbeat, NodeResources};
use chrono::{TimeZone, Utc};
use db::entity::{capsule, compute_node, zun_service};
use db::{
    service_is_up, Claim, Database, DbError, NewCapsule, NodeListParams, NodeSortKey, SortDir,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

both_backends!(
    first_heartbeat_registers_later_ones_refresh,
    usage_is_recomputed_from_the_capsules_on_the_host,
    heartbeats_and_claims_race_without_losing_usage,
    concurrent_first_heartbeats_make_one_service_and_node,
    operator_switches_and_unknown_services,
    delete_removes_the_service_and_its_node,
    nodes_are_found_by_uuid_or_hostname,
    node_paging_visits_every_row_once_in_order,
    node_bad_marker_is_reported,
);

fn heartbeat(host: &str, mem: u64, cpus: f64) -> Heartbeat {
    Heartbeat {
        host: host.to_owned(),
        binary: "zun-compute".to_owned(),
        availability_zone: "az1".to_owned(),
        resources: NodeResources {
            cpus,
            memory_mib: mem,
            disk_gib: 50,
            architecture: "x86_64".to_owned(),
            os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
            kernel_version: "6.1.0-18-amd64".to_owned(),
            labels: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
        },
        capsules: vec![],
        seq: 0,
        firewall_epoch: None,
        firewall_incarnation: None,
        stream_address: None,
    }
}

fn capsule_on(host: Option<&str>, cpu: f64, memory: i64, claim: bool) -> NewCapsule {
    let uuid = uuid::Uuid::new_v4().to_string();
    NewCapsule {
        uuid: uuid.clone(),
        name: Some(format!("c-{}", &uuid[..8])),
        project_id: "p".into(),
        user_id: "u".into(),
        status: "Running".into(),
        status_reason: None,
        host: host.map(str::to_owned),
        availability_zone: None,
        cpu,
        memory,
        restart_policy: "always".into(),
        restart_max_retries: 0,
        labels: json!({}),
        annotations: None,
        template: json!({}),
        security_groups: vec![],
        containers: vec![],
        volume_mappings: vec![],
        volumes: vec![],
        volume_limits: Default::default(),
        claim: match (claim, host) {
            (true, Some(h)) => Some(Claim {
                host: h.to_owned(),
                cpu,
                memory_mib: memory,
                ports: vec![],
                cpu_allocation_ratio: 16.0,
                ram_allocation_ratio: 1.5,
            }),
            _ => None,
        },
        outbox: vec![],
    }
}

async fn node(db: &Database, host: &str) -> compute_node::Model {
    db.compute_node(host).await.unwrap().expect("node exists")
}

async fn usage(db: &Database, host: &str) -> (i64, f64, i32) {
    let n = node(db, host).await;
    (n.mem_used, n.cpu_used, n.total_containers)
}

async fn first_heartbeat_registers_later_ones_refresh(db: Database) {
    assert!(db.list_services().await.unwrap().is_empty());
    let before = Utc::now() - chrono::Duration::seconds(1);
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    let svc = db.service("c1", "zun-compute").await.unwrap().unwrap();
    assert!(!svc.disabled && !svc.forced_down);
    assert_eq!(svc.disabled_reason, None);
    assert_eq!(svc.report_count, 1);
    assert_eq!(svc.availability_zone.as_deref(), Some("az1"));
    let seen = svc.last_seen_up.expect("last_seen_up is set");
    assert!(seen >= before && seen <= Utc::now());
    assert!(service_is_up(&svc, Duration::from_secs(20), Utc::now()));

    let n = node(&db, "c1").await;
    assert!(uuid::Uuid::try_parse(&n.uuid).is_ok());
    assert_eq!(n.hostname, "c1");
    assert_eq!((n.mem_total, n.cpus, n.disk_total), (4096, 4.0, 50));
    assert_eq!((n.mem_used, n.cpu_used, n.total_containers), (0, 0.0, 0));
    assert_eq!(n.architecture.as_deref(), Some("x86_64"));
    assert_eq!(n.os_type.as_deref(), Some("linux"));
    assert_eq!(n.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    assert_eq!(n.kernel_version.as_deref(), Some("6.1.0-18-amd64"));
    assert_eq!(n.labels, json!({"zone": "a"}));
    assert_eq!(n.runtimes, json!(["runc"]));

    // An operator's switches survive heartbeats; resources and zone follow the host.
    assert!(db
        .set_service_disabled("c1", "zun-compute", true, Some("maintenance"))
        .await
        .unwrap());
    let mut hb = heartbeat("c1", 8192, 8.0);
    hb.availability_zone = "az2".into();
    hb.resources.labels.clear();
    db.record_heartbeat(&hb).await.unwrap();
    let svc2 = db.service("c1", "zun-compute").await.unwrap().unwrap();
    assert_eq!(svc2.id, svc.id);
    assert_eq!(svc2.report_count, 2);
    assert!(svc2.last_seen_up.unwrap() >= seen);
    assert_eq!(svc2.availability_zone.as_deref(), Some("az2"));
    assert!(svc2.disabled);
    assert_eq!(svc2.disabled_reason.as_deref(), Some("maintenance"));
    assert_eq!(svc2.created_at, svc.created_at);
    let n2 = node(&db, "c1").await;
    assert_eq!(n2.uuid, n.uuid, "the node keeps its uuid");
    assert_eq!((n2.mem_total, n2.cpus), (8192, 8.0));
    assert_eq!(n2.labels, json!({}));

    // A second binary on the host is a second service, not a second node.
    let mut other = heartbeat("c1", 8192, 8.0);
    other.binary = "zun-cni-daemon".into();
    other.availability_zone = String::new();
    db.record_heartbeat(&other).await.unwrap();
    let all = db.list_services().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|s| (s.binary.as_str(), s.availability_zone.as_deref()))
            .collect::<Vec<_>>(),
        vec![("zun-compute", Some("az2")), ("zun-cni-daemon", None)],
        "oldest first; an empty zone is stored as none"
    );
    assert_eq!(
        db.list_compute_nodes(&NodeListParams::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn usage_is_recomputed_from_the_capsules_on_the_host(db: Database) {
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    db.record_heartbeat(&heartbeat("c2", 4096, 4.0))
        .await
        .unwrap();
    let (a, _) = db
        .create_capsule(capsule_on(Some("c1"), 0.5, 128, false))
        .await
        .unwrap();
    db.create_capsule(capsule_on(Some("c1"), 1.25, 256, false))
        .await
        .unwrap();
    db.create_capsule(capsule_on(Some("c2"), 2.0, 64, false))
        .await
        .unwrap();
    db.create_capsule(capsule_on(None, 3.0, 1024, false))
        .await
        .unwrap();
    // Nothing was claimed, so only a heartbeat brings the usage in line.
    assert_eq!(usage(&db, "c1").await, (0, 0.0, 0));
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    assert_eq!(usage(&db, "c1").await, (384, 1.75, 2));
    assert_eq!(usage(&db, "c2").await, (0, 0.0, 0), "only c1 reported");
    db.record_heartbeat(&heartbeat("c2", 4096, 4.0))
        .await
        .unwrap();
    assert_eq!(usage(&db, "c2").await, (64, 2.0, 1));

    // A wrong figure (a lost release, an operator's edit) is corrected.
    compute_node::Entity::update_many()
        .col_expr(compute_node::Column::MemUsed, Expr::value(99_999i64))
        .col_expr(compute_node::Column::CpuUsed, Expr::value(42.0f64))
        .col_expr(compute_node::Column::TotalContainers, Expr::value(7))
        .filter(compute_node::Column::Hostname.eq("c1"))
        .exec(db.connection())
        .await
        .unwrap();
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    assert_eq!(usage(&db, "c1").await, (384, 1.75, 2));

    // The capsule leaves the host (written directly: this test is about the heartbeat).
    capsule::Entity::update_many()
        .col_expr(capsule::Column::Host, Expr::value(Option::<String>::None))
        .filter(capsule::Column::Id.eq(a.capsule.id))
        .exec(db.connection())
        .await
        .unwrap();
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    assert_eq!(usage(&db, "c1").await, (256, 1.25, 1));
}

async fn heartbeats_and_claims_race_without_losing_usage(db: Database) {
    db.record_heartbeat(&heartbeat("c1", 1_000_000, 1000.0))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                db.record_heartbeat(&heartbeat("c1", 1_000_000, 1000.0))
                    .await
                    .unwrap();
            } else {
                db.create_capsule(capsule_on(Some("c1"), 0.25, 10, true))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // No heartbeat after the last claim: the figures must already be right.
    assert_eq!(usage(&db, "c1").await, (300, 7.5, 30));
    let svc = db.service("c1", "zun-compute").await.unwrap().unwrap();
    assert_eq!(svc.report_count, 11);
}

async fn concurrent_first_heartbeats_make_one_service_and_node(db: Database) {
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.record_heartbeat(&heartbeat("new", 2048, 2.0)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let all = db.list_services().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].report_count, 12);
    let nodes = compute_node::Entity::find()
        .all(db.connection())
        .await
        .unwrap();
    assert_eq!(nodes.len(), 1);
}

async fn operator_switches_and_unknown_services(db: Database) {
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    let get = || async { db.service("c1", "zun-compute").await.unwrap().unwrap() };
    assert!(db
        .set_service_disabled("c1", "zun-compute", true, Some("broken disk"))
        .await
        .unwrap());
    let s = get().await;
    assert!(s.disabled);
    assert_eq!(s.disabled_reason.as_deref(), Some("broken disk"));
    assert!(s.updated_at.is_some());
    assert!(db
        .set_service_disabled("c1", "zun-compute", false, None)
        .await
        .unwrap());
    let s = get().await;
    assert!(!s.disabled);
    assert_eq!(s.disabled_reason, None);

    assert!(db
        .set_service_forced_down("c1", "zun-compute", true)
        .await
        .unwrap());
    let s = get().await;
    assert!(s.forced_down);
    assert!(!service_is_up(&s, Duration::from_secs(3600), Utc::now()));
    assert!(db
        .set_service_forced_down("c1", "zun-compute", false)
        .await
        .unwrap());
    assert!(service_is_up(
        &get().await,
        Duration::from_secs(3600),
        Utc::now()
    ));

    for (host, binary) in [("c1", "zun-api"), ("c2", "zun-compute")] {
        assert!(!db
            .set_service_disabled(host, binary, true, None)
            .await
            .unwrap());
        assert!(!db
            .set_service_forced_down(host, binary, true)
            .await
            .unwrap());
        assert!(db.service(host, binary).await.unwrap().is_none());
    }
    assert_eq!(db.list_services().await.unwrap().len(), 1);
}

async fn delete_removes_the_service_and_its_node(db: Database) {
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    db.record_heartbeat(&heartbeat("c2", 4096, 4.0))
        .await
        .unwrap();
    assert!(!db.delete_service("c1", "zun-api").await.unwrap());
    assert!(db.compute_node("c1").await.unwrap().is_some());
    assert!(db.delete_service("c1", "zun-compute").await.unwrap());
    assert!(db.service("c1", "zun-compute").await.unwrap().is_none());
    assert!(db.compute_node("c1").await.unwrap().is_none());
    assert!(db.compute_node("c2").await.unwrap().is_some());
    assert!(!db.delete_service("c1", "zun-compute").await.unwrap());
    // A host that is still alive comes back with a new node.
    let old = node(&db, "c2").await;
    assert!(db.delete_service("c2", "zun-compute").await.unwrap());
    db.record_heartbeat(&heartbeat("c2", 4096, 4.0))
        .await
        .unwrap();
    assert_ne!(node(&db, "c2").await.uuid, old.uuid);
    assert_eq!(
        db.service("c2", "zun-compute")
            .await
            .unwrap()
            .unwrap()
            .report_count,
        1
    );
}

async fn nodes_are_found_by_uuid_or_hostname(db: Database) {
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    let n = node(&db, "c1").await;
    assert_eq!(db.compute_node(&n.uuid).await.unwrap(), Some(n.clone()));
    let upper = n.uuid.to_uppercase();
    assert_eq!(db.compute_node(&upper).await.unwrap(), Some(n.clone()));
    assert_eq!(db.compute_node("c2").await.unwrap(), None);
    assert_eq!(
        db.compute_node(&uuid::Uuid::new_v4().to_string())
            .await
            .unwrap(),
        None
    );
    // A host named like a uuid is still found by its name.
    let odd = uuid::Uuid::new_v4().to_string();
    db.record_heartbeat(&heartbeat(&odd, 1024, 1.0))
        .await
        .unwrap();
    assert_eq!(db.compute_node(&odd).await.unwrap().unwrap().hostname, odd);
}

async fn node_paging_visits_every_row_once_in_order(db: Database) {
    // Ties on cpus and mem_total, and NULL kernel versions, exercise the tie-breaker and the
    // NULL ordering.
    let specs: [(&str, u64, f64, Option<&str>); 7] = [
        ("h-e", 1024, 2.0, Some("6.1")),
        ("h-a", 4096, 8.0, None),
        ("h-g", 1024, 4.0, Some("5.10")),
        ("h-c", 2048, 2.0, None),
        ("h-b", 2048, 4.0, Some("6.1")),
        ("h-f", 4096, 2.0, Some("6.6")),
        ("h-d", 512, 1.0, None),
    ];
    for (host, mem, cpus, _) in specs {
        db.record_heartbeat(&heartbeat(host, mem, cpus))
            .await
            .unwrap();
    }
    for (host, _, _, kernel) in specs {
        compute_node::Entity::update_many()
            .col_expr(
                compute_node::Column::KernelVersion,
                Expr::value(kernel.map(str::to_owned)),
            )
            .filter(compute_node::Column::Hostname.eq(host))
            .exec(db.connection())
            .await
            .unwrap();
    }
    let all = compute_node::Entity::find()
        .all(db.connection())
        .await
        .unwrap();
    assert_eq!(all.len(), 7);

    for (key, _) in NodeSortKey::ALL {
        let sort_key: NodeSortKey = key.parse().unwrap();
        for sort_dir in [SortDir::Asc, SortDir::Desc] {
            let mut expected = all.clone();
            expected.sort_by(|a, b| {
                let ka = sort_value(sort_key, a);
                let kb = sort_value(sort_key, b);
                let ord = ka
                    .partial_cmp(&kb)
                    .unwrap()
                    .then_with(|| a.uuid.cmp(&b.uuid));
                match sort_dir {
                    SortDir::Asc => ord,
                    SortDir::Desc => ord.reverse(),
                }
            });
            let expected: Vec<String> = expected.into_iter().map(|n| n.uuid).collect();
            for limit in [1, 2, 3, 7, 100] {
                let mut seen = Vec::new();
                let mut marker = None;
                loop {
                    let page = db
                        .list_compute_nodes(&NodeListParams {
                            limit,
                            marker: marker.clone(),
                            sort_key,
                            sort_dir,
                        })
                        .await
                        .unwrap();
                    assert!(page.len() as u64 <= limit);
                    seen.extend(page.iter().map(|n| n.uuid.clone()));
                    if (page.len() as u64) < limit {
                        break;
                    }
                    marker = page.last().map(|n| n.uuid.clone());
                }
                assert_eq!(seen, expected, "{key} {sort_dir:?} limit {limit}");
            }
        }
    }
    assert_eq!(NodeListParams::default().sort_key.as_str(), "hostname");
    let first = db
        .list_compute_nodes(&NodeListParams::default())
        .await
        .unwrap();
    assert_eq!(
        first
            .iter()
            .map(|n| n.hostname.as_str())
            .collect::<Vec<_>>(),
        vec!["h-a", "h-b", "h-c", "h-d", "h-e", "h-f", "h-g"]
    );
}

/// A sortable stand-in for a node's value of `key`; `None` sorts first, as in the database.
#[derive(PartialEq, PartialOrd)]
enum SortValue {
    Text(Option<String>),
    Num(f64),
    Time(Option<chrono::DateTime<Utc>>),
}

fn sort_value(key: NodeSortKey, n: &compute_node::Model) -> SortValue {
    use SortValue::*;
    match key {
        NodeSortKey::Uuid => Text(Some(n.uuid.clone())),
        NodeSortKey::Hostname => Text(Some(n.hostname.clone())),
        NodeSortKey::MemTotal => Num(n.mem_total as f64),
        NodeSortKey::MemUsed => Num(n.mem_used as f64),
        NodeSortKey::Cpus => Num(n.cpus),
        NodeSortKey::CpuUsed => Num(n.cpu_used),
        NodeSortKey::DiskTotal => Num(n.disk_total as f64),
        NodeSortKey::DiskUsed => Num(n.disk_used as f64),
        NodeSortKey::TotalContainers => Num(f64::from(n.total_containers)),
        NodeSortKey::Architecture => Text(n.architecture.clone()),
        NodeSortKey::OsType => Text(n.os_type.clone()),
        NodeSortKey::Os => Text(n.os.clone()),
        NodeSortKey::KernelVersion => Text(n.kernel_version.clone()),
        NodeSortKey::CreatedAt => Time(Some(n.created_at)),
        NodeSortKey::UpdatedAt => Time(n.updated_at),
    }
}

async fn node_bad_marker_is_reported(db: Database) {
    db.record_heartbeat(&heartbeat("c1", 4096, 4.0))
        .await
        .unwrap();
    let missing = uuid::Uuid::new_v4().to_string();
    let err = db
        .list_compute_nodes(&NodeListParams {
            marker: Some(missing.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DbError::MarkerNotFound { marker } if *marker == missing),
        "{err:?}"
    );
}

#[test]
fn zun_liveness_rule() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    let svc = zun_service::Model {
        id: 1,
        host: "c1".into(),
        binary: "zun-compute".into(),
        disabled: false,
        disabled_reason: None,
        last_seen_up: Some(t0),
        forced_down: false,
        report_count: 3,
        availability_zone: None,
        stream_address: None,
        created_at: t0 - chrono::Duration::days(1),
        updated_at: Some(t0 - chrono::Duration::hours(1)),
    };
    let down_after = Duration::from_secs(20);
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    assert!(service_is_up(&svc, down_after, at(0)));
    assert!(
        service_is_up(&svc, down_after, at(20)),
        "the bound is inclusive"
    );
    assert!(!service_is_up(&svc, down_after, at(21)));
    assert!(
        service_is_up(&svc, down_after, at(-20)),
        "clock skew: |elapsed|"
    );
    assert!(!service_is_up(&svc, down_after, at(-21)));
    let forced = zun_service::Model {
        forced_down: true,
        ..svc.clone()
    };
    assert!(!service_is_up(&forced, down_after, at(0)));
    // Without a heartbeat, updated_at counts, then created_at.
    let never = zun_service::Model {
        last_seen_up: None,
        ..svc.clone()
    };
    assert!(!service_is_up(&never, down_after, at(0)));
    assert!(service_is_up(&never, down_after, at(-3600)));
    let fresh = zun_service::Model {
        last_seen_up: None,
        updated_at: None,
        ..svc
    };
    assert!(service_is_up(
        &fresh,
        down_after,
        t0 - chrono::Duration::days(1)
    ));
    assert!(!service_is_up(&fresh, down_after, at(0)));
}
