//! Placement claims, the outbox and host reports against real SQLite and PostgreSQL: claims
//! never overcommit a host even when made concurrently, ports are exclusive per host, reports
//! apply in order only, and deletes release what a capsule held.

#[macro_use]
mod common;

use capsule_types::rpc::{CapsuleState, ContainerState};
use capsule_types::CapsuleStatus;
use db::entity::compute_node;
use db::{
    Claim, Database, DbError, NewCapsule, NewOutbox, ReportOutcome, Scope, SecurityGroupBinding,
};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::json;
use std::time::Duration;

both_backends!(
    concurrent_claims_never_overcommit,
    host_ports_are_exclusive_per_host_until_released,
    outbox_entries_are_claimed_once_per_lease,
    reports_apply_in_order_and_only_for_the_owning_host,
    deletion_reports_remove_only_what_was_being_deleted,
    creating_capsules_of_dead_hosts_fail,
    only_heartbeats_newer_than_the_last_report_lose_a_capsule,
);

async fn node(db: &Database, host: &str, mem: i64, cpus: f64) {
    compute_node::ActiveModel {
        uuid: Set(uuid::Uuid::new_v4().to_string()),
        hostname: Set(host.to_owned()),
        mem_total: Set(mem),
        mem_used: Set(0),
        cpus: Set(cpus),
        cpu_used: Set(0.0),
        disk_total: Set(100),
        disk_used: Set(0),
        total_containers: Set(0),
        architecture: Set(None),
        os_type: Set(None),
        os: Set(None),
        kernel_version: Set(None),
        labels: Set(json!({})),
        runtimes: Set(json!([])),
        created_at: Set(chrono::Utc::now()),
        updated_at: Set(None),
        ..Default::default()
    }
    .insert(db.connection())
    .await
    .unwrap();
}

async fn usage(db: &Database, host: &str) -> (i64, f64, i32) {
    let n = compute_node::Entity::find()
        .all(db.connection())
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.hostname == host)
        .unwrap();
    (n.mem_used, n.cpu_used, n.total_containers)
}

fn capsule_on(host: &str, memory: i64, ports: &[u16]) -> NewCapsule {
    let uuid = uuid::Uuid::new_v4().to_string();
    NewCapsule {
        uuid: uuid.clone(),
        name: Some(format!("c-{}", &uuid[..6])),
        project_id: "p".into(),
        user_id: "u".into(),
        status: "Creating".into(),
        status_reason: None,
        host: Some(host.to_owned()),
        availability_zone: None,
        cpu: 0.5,
        memory,
        restart_policy: "always".into(),
        restart_max_retries: 0,
        labels: json!({}),
        annotations: None,
        template: json!({}),
        security_groups: vec![SecurityGroupBinding {
            reference: "default".into(),
            security_group_id: "id-of-default".into(),
        }],
        containers: vec![],
        volume_mappings: vec![],
        volumes: vec![],
        volume_limits: Default::default(),
        claim: Some(Claim {
            host: host.to_owned(),
            cpu: 0.5,
            memory_mib: memory,
            ports: ports.iter().map(|p| ("tcp".to_owned(), *p)).collect(),
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.0,
        }),
        outbox: vec![NewOutbox {
            routing_key: format!("zun-compute.{host}"),
            payload: format!("create {uuid}"),
            capsule_uuid: Some(uuid.clone()),
        }],
    }
}

async fn concurrent_claims_never_overcommit(db: Database) {
    node(&db, "h1", 1000, 2.0).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.create_capsule(capsule_on("h1", 100, &[])).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(DbError::ClaimFailed { host, .. }) => assert_eq!(host, "h1"),
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!(ok, 10, "exactly as many as fit");
    assert_eq!(usage(&db, "h1").await, (1000, 5.0, 10));
    assert_eq!(
        db.count_capsules(&Scope::All).await.unwrap(),
        10,
        "refused claims wrote nothing"
    );
    assert_eq!(db.outbox_len().await.unwrap(), 10);
}

async fn host_ports_are_exclusive_per_host_until_released(db: Database) {
    node(&db, "h1", 10_000, 8.0).await;
    node(&db, "h2", 10_000, 8.0).await;
    let (first, _) = db
        .create_capsule(capsule_on("h1", 10, &[80, 443]))
        .await
        .unwrap();
    let err = db
        .create_capsule(capsule_on("h1", 10, &[8080, 443]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DbError::ClaimFailed { reason, .. } if reason.contains("443/tcp")),
        "{err:?}"
    );
    assert_eq!(
        usage(&db, "h1").await.2,
        1,
        "the refused claim took nothing"
    );
    db.create_capsule(capsule_on("h2", 10, &[443]))
        .await
        .unwrap();
    let cands = db
        .placement_candidates("zun-compute", &[("tcp".into(), 443), ("tcp".into(), 22)])
        .await
        .unwrap();
    assert!(
        cands.is_empty(),
        "no services registered yet, so no candidates"
    );
    assert!(db.delete_capsule(first.capsule.id, None).await.unwrap().0);
    assert_eq!(
        usage(&db, "h1").await,
        (0, 0.0, 0),
        "delete released the claim"
    );
    db.create_capsule(capsule_on("h1", 10, &[443]))
        .await
        .unwrap();
}

async fn outbox_entries_are_claimed_once_per_lease(db: Database) {
    node(&db, "h1", 10_000, 8.0).await;
    let (_, ids) = db.create_capsule(capsule_on("h1", 10, &[])).await.unwrap();
    let id = ids[0];
    let lease = Duration::from_millis(300);
    let e = db.claim_outbox_entry(id, lease).await.unwrap().unwrap();
    assert!(e.payload.starts_with("create "));
    assert_eq!(e.attempts, 1);
    assert!(
        db.claim_outbox_entry(id, lease).await.unwrap().is_none(),
        "held"
    );
    assert!(db.claim_outbox(10, lease).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = db.claim_outbox(10, lease).await.unwrap();
    assert_eq!(again.len(), 1, "claimable again once the lease ran out");
    assert_eq!(again[0].attempts, 2);
    db.delete_outbox_entry(id).await.unwrap();
    assert_eq!(db.outbox_len().await.unwrap(), 0);
}

fn state(uuid: uuid::Uuid, status: CapsuleStatus, containers: Vec<ContainerState>) -> CapsuleState {
    CapsuleState {
        capsule: uuid,
        status,
        status_reason: None,
        containers,
        addresses: json!({"net": [{"addr": "10.0.0.2", "version": 4}]}),
        volumes_released: false,
    }
}

async fn reports_apply_in_order_and_only_for_the_owning_host(db: Database) {
    node(&db, "h1", 10_000, 8.0).await;
    let mut new = capsule_on("h1", 10, &[]);
    let cu = uuid::Uuid::new_v4();
    new.containers = vec![db::NewContainer {
        uuid: cu.to_string(),
        is_init: false,
        position: 0,
        name: "a".into(),
        image: "busybox".into(),
        command: json!([]),
        environment: json!({}),
        workdir: None,
        ports: json!([]),
        image_pull_policy: "always".into(),
        cpu: None,
        memory: None,
        status: "Creating".into(),
        restart_policy: "always".into(),
        restart_max_retries: 0,
        interactive: false,
        tty: false,
        healthcheck: None,
    }];
    let (rec, _) = db.create_capsule(new).await.unwrap();
    let uuid: uuid::Uuid = rec.capsule.uuid.parse().unwrap();
    let running = state(
        uuid,
        CapsuleStatus::Running,
        vec![ContainerState {
            uuid: cu,
            status: CapsuleStatus::Running,
            status_reason: None,
            exit_code: None,
            restart_count: 2,
            container_id: Some("rt-1".into()),
            ready: Some(true),
        }],
    );
    assert_eq!(
        db.apply_capsule_state("h1", 5, &running).await.unwrap(),
        ReportOutcome::Applied
    );
    let got = db
        .capsule_by_uuid(&Scope::All, &rec.capsule.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.capsule.status, "Running");
    assert_eq!(got.capsule.addresses["net"][0]["addr"], "10.0.0.2");
    assert_eq!(got.containers[0].status, "Running");
    assert_eq!(got.containers[0].restart_count, 2);
    // An older report changes nothing.
    let creating = state(uuid, CapsuleStatus::Creating, vec![]);
    assert_eq!(
        db.apply_capsule_state("h1", 4, &creating).await.unwrap(),
        ReportOutcome::Stale
    );
    assert_eq!(
        db.apply_capsule_state("h1", 5, &creating).await.unwrap(),
        ReportOutcome::Stale
    );
    let got = db
        .capsule_by_uuid(&Scope::All, &rec.capsule.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.capsule.status, "Running");
    // Another host, or an unknown capsule: orphans on the reporting host.
    assert_eq!(
        db.apply_capsule_state("h2", 9, &running).await.unwrap(),
        ReportOutcome::OtherHost
    );
    let stranger = state(uuid::Uuid::new_v4(), CapsuleStatus::Running, vec![]);
    assert_eq!(
        db.apply_capsule_state("h1", 9, &stranger).await.unwrap(),
        ReportOutcome::UnknownCapsule
    );
    // While a delete is pending, a late report does not bring the capsule back to Running.
    db.request_capsule_delete(
        rec.capsule.id,
        NewOutbox {
            routing_key: "zun-compute.h1".into(),
            payload: "delete".into(),
            capsule_uuid: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        db.apply_capsule_state("h1", 6, &running).await.unwrap(),
        ReportOutcome::Applied
    );
    let got = db
        .capsule_by_uuid(&Scope::All, &rec.capsule.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.capsule.status, "Deleting");
    assert_eq!(
        got.capsule.task_state.as_deref(),
        Some("container_deleting")
    );
}

async fn deletion_reports_remove_only_what_was_being_deleted(db: Database) {
    node(&db, "h1", 10_000, 8.0).await;
    let (kept, _) = db
        .create_capsule(capsule_on("h1", 100, &[80]))
        .await
        .unwrap();
    let (gone, _) = db
        .create_capsule(capsule_on("h1", 100, &[81]))
        .await
        .unwrap();
    // Nobody asked to delete `kept`: the report marks it Error and keeps the record.
    assert_eq!(
        db.apply_capsule_deleted("h1", 1, &kept.capsule.uuid)
            .await
            .unwrap(),
        ReportOutcome::Applied
    );
    let k = db
        .capsule_by_uuid(&Scope::All, &kept.capsule.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(k.capsule.status, "Error");
    assert_eq!(
        k.capsule.status_reason.as_deref(),
        Some("The capsule is no longer on host h1.")
    );
    // `gone` was being deleted: its rows and its claim go.
    db.request_capsule_delete(
        gone.capsule.id,
        NewOutbox {
            routing_key: "zun-compute.h1".into(),
            payload: "delete".into(),
            capsule_uuid: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        db.apply_capsule_deleted("h1", 2, &gone.capsule.uuid)
            .await
            .unwrap(),
        ReportOutcome::Applied
    );
    assert!(db
        .capsule_by_uuid(&Scope::All, &gone.capsule.uuid)
        .await
        .unwrap()
        .is_none());
    assert_eq!(usage(&db, "h1").await, (100, 0.5, 1));
    // A repeated report finds nothing to do.
    assert_eq!(
        db.apply_capsule_deleted("h1", 3, &gone.capsule.uuid)
            .await
            .unwrap(),
        ReportOutcome::UnknownCapsule
    );
    // Its port is free again.
    db.create_capsule(capsule_on("h1", 1, &[81])).await.unwrap();
}

async fn creating_capsules_of_dead_hosts_fail(db: Database) {
    node(&db, "dead", 10_000, 8.0).await;
    node(&db, "alive", 10_000, 8.0).await;
    let (a, _) = db.create_capsule(capsule_on("dead", 1, &[])).await.unwrap();
    let (b, _) = db
        .create_capsule(capsule_on("alive", 1, &[]))
        .await
        .unwrap();
    let n = db
        .fail_creating_on_hosts(&["dead".to_owned()], |h| format!("host {h} is down"))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let a = db
        .capsule_by_uuid(&Scope::All, &a.capsule.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            a.capsule.status.as_str(),
            a.capsule.status_reason.as_deref()
        ),
        ("Error", Some("host dead is down"))
    );
    let b = db
        .capsule_by_uuid(&Scope::All, &b.capsule.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.capsule.status, "Creating");
    // The host comes back and builds it after all: its report wins.
    let uuid: uuid::Uuid = a.capsule.uuid.parse().unwrap();
    db.apply_capsule_state("dead", 1, &state(uuid, CapsuleStatus::Running, vec![]))
        .await
        .unwrap();
    let a = db
        .capsule_by_uuid(&Scope::All, &a.capsule.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.capsule.status, "Running");
}

async fn only_heartbeats_newer_than_the_last_report_lose_a_capsule(db: Database) {
    node(&db, "h1", 10_000, 8.0).await;
    let (running, _) = db.create_capsule(capsule_on("h1", 100, &[])).await.unwrap();
    let (creating, _) = db.create_capsule(capsule_on("h1", 100, &[])).await.unwrap();
    let r: uuid::Uuid = running.capsule.uuid.parse().unwrap();
    let c: uuid::Uuid = creating.capsule.uuid.parse().unwrap();
    db.apply_capsule_state("h1", 10, &state(r, CapsuleStatus::Running, vec![]))
        .await
        .unwrap();
    db.apply_capsule_state("h1", 11, &state(c, CapsuleStatus::Creating, vec![]))
        .await
        .unwrap();
    let both = [running.capsule.uuid.clone(), creating.capsule.uuid.clone()];
    let status = |uuid: String| {
        let db = db.clone();
        async move {
            db.capsule_by_uuid(&Scope::All, &uuid)
                .await
                .unwrap()
                .unwrap()
                .capsule
                .status
        }
    };
    // A heartbeat numbered before the Running report is old news: nothing is lost.
    assert_eq!(db.mark_missing_on_host("h1", 9, &both).await.unwrap(), 0);
    assert_eq!(status(running.capsule.uuid.clone()).await, "Running");
    // Another host's heartbeat never touches h1's capsules.
    assert_eq!(db.mark_missing_on_host("h2", 50, &both).await.unwrap(), 0);
    // A newer one loses the settled capsule only; the one still Creating keeps waiting, and
    // its next report (numbered below the heartbeat) still applies.
    assert_eq!(db.mark_missing_on_host("h1", 20, &both).await.unwrap(), 1);
    assert_eq!(status(running.capsule.uuid.clone()).await, "Error");
    assert_eq!(status(creating.capsule.uuid.clone()).await, "Creating");
    assert_eq!(
        db.apply_capsule_state("h1", 12, &state(c, CapsuleStatus::Running, vec![]))
            .await
            .unwrap(),
        ReportOutcome::Applied
    );
    assert_eq!(status(creating.capsule.uuid.clone()).await, "Running");
}
