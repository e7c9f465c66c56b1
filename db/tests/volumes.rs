//! Volumes against real SQLite and PostgreSQL: limits and quotas (even under concurrent
//! creates), one attacher at a time (even when two capsules race for a volume), volumes given
//! back or removed with their capsule, host reports applied only where they move a volume on,
//! and deletes refused while a volume is attached.

#[macro_use]
mod common;

use capsule_types::rpc::{CapsuleState, VolumeHostState};
use capsule_types::CapsuleStatus;
use db::entity::compute_node;
use db::volumes::{
    CapsuleVolume, NewVolume, VolumeDeleted, VolumeLimits, VolumeRefused, VolumeScope,
};
use db::{Claim, Database, DbError, NewCapsule, NewOutbox, NewVolumeMapping, Scope};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;

both_backends!(
    volumes_are_created_within_limits_and_quotas,
    concurrent_creates_never_pass_the_quota,
    a_volume_has_one_attacher_and_comes_back_when_its_capsule_goes,
    two_capsules_racing_for_a_volume_get_it_once,
    host_reports_move_volumes_on_only,
    deletes_wait_for_the_host_and_spare_attached_volumes,
    a_failed_create_gives_its_volumes_back_at_once,
);

async fn node(db: &Database, host: &str) {
    compute_node::ActiveModel {
        uuid: Set(uuid::Uuid::new_v4().to_string()),
        hostname: Set(host.to_owned()),
        mem_total: Set(1 << 20),
        mem_used: Set(0),
        cpus: Set(64.0),
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

fn limits(max: i64, gigabytes: i64, volumes: i64) -> VolumeLimits {
    VolumeLimits {
        max_size_gib: max,
        project_gigabytes: gigabytes,
        project_volumes: volumes,
    }
}

fn outbox(host: &str, what: &str) -> NewOutbox {
    NewOutbox {
        routing_key: format!("zun-compute.{host}"),
        payload: what.to_owned(),
        capsule_uuid: None,
    }
}

/// The outbox entry telling `host` to delete a volume (what the API's compute client builds).
fn delete_message(host: &str) -> NewOutbox {
    outbox(host, "delete_volume")
}

/// Creates a volume `available` on `host` (as after its host's report).
async fn volume(db: &Database, project: &str, host: &str, size: i64) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    db.create_volume(
        new_volume(&id, project, size, Some(host)),
        VolumeLimits::default(),
        Some(outbox(host, "create")),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(db
        .apply_volume_state(host, &id, VolumeHostState::Available, None)
        .await
        .unwrap());
    id
}

fn new_volume(id: &str, project: &str, size: i64, host: Option<&str>) -> NewVolume {
    NewVolume {
        id: id.to_owned(),
        project_id: project.to_owned(),
        user_id: "u1".into(),
        name: Some(format!("vol-{size}")),
        description: None,
        size_gib: size,
        availability_zone: "nova".into(),
        metadata: json!({}),
        host: host.map(str::to_owned),
    }
}

fn capsule(project: &str, host: &str, volumes: Vec<CapsuleVolume>) -> NewCapsule {
    let uuid = uuid::Uuid::new_v4().to_string();
    let container = uuid::Uuid::new_v4().to_string();
    let volume_mappings = volumes
        .iter()
        .map(|v| {
            let (id, auto_remove) = match v {
                CapsuleVolume::Existing { id } => (id.clone(), false),
                CapsuleVolume::New {
                    id, auto_remove, ..
                } => (id.clone(), *auto_remove),
            };
            NewVolumeMapping {
                container_uuid: container.clone(),
                volume_name: format!("v-{id}"),
                mount_path: "/data".into(),
                read_only: false,
                auto_remove,
                volume_id: Some(id),
            }
        })
        .collect();
    NewCapsule {
        uuid: uuid.clone(),
        name: None,
        project_id: project.into(),
        user_id: "u1".into(),
        status: "Creating".into(),
        status_reason: None,
        host: Some(host.into()),
        availability_zone: Some("nova".into()),
        cpu: 0.1,
        memory: 16,
        restart_policy: "always".into(),
        restart_max_retries: 0,
        labels: json!({}),
        annotations: None,
        template: json!({}),
        security_groups: vec![],
        containers: vec![],
        volume_mappings,
        volumes,
        volume_limits: limits(10, 20, 5),
        claim: Some(Claim {
            host: host.to_owned(),
            cpu: 0.1,
            memory_mib: 16,
            ports: vec![],
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.0,
        }),
        outbox: vec![NewOutbox {
            routing_key: format!("zun-compute.{host}"),
            payload: format!("create {uuid}"),
            capsule_uuid: Some(uuid),
        }],
    }
}

async fn status(db: &Database, id: &str) -> Option<(String, Option<String>)> {
    db.volume(VolumeScope::All, id)
        .await
        .unwrap()
        .map(|r| (r.volume.status, r.volume.capsule_uuid))
}

/// Deletes capsule `uuid` as the API and its host do: request, then the host's report.
async fn delete_capsule(db: &Database, host: &str, seq: u64, uuid: &str) {
    let rec = db
        .capsule_by_uuid(&Scope::All, uuid)
        .await
        .unwrap()
        .unwrap();
    db.request_capsule_delete(rec.capsule.id, outbox(host, "delete"))
        .await
        .unwrap();
    db.apply_capsule_deleted(host, seq, uuid).await.unwrap();
}

async fn volumes_are_created_within_limits_and_quotas(db: Database) {
    let l = limits(10, 15, 3);
    let create = |size: i64| {
        let db = db.clone();
        async move {
            let id = uuid::Uuid::new_v4().to_string();
            db.create_volume(
                new_volume(&id, "p1", size, Some("h1")),
                l,
                Some(outbox("h1", "create")),
            )
            .await
            .unwrap()
            .map(|(row, ids)| (row, ids.len()))
        }
    };
    let (row, queued) = create(10).await.unwrap();
    assert_eq!((row.status.as_str(), queued), ("creating", 1));
    assert_eq!(
        create(11).await.unwrap_err(),
        VolumeRefused::TooLarge { size: 11, max: 10 }
    );
    assert_eq!(
        create(6).await.unwrap_err(),
        VolumeRefused::OverQuota {
            requested: 6,
            quota: 15,
            used: 10
        }
    );
    create(5).await.unwrap();
    // 15 of 15 GiB used, and then the count: 3 volumes at most.
    assert!(matches!(
        create(1).await.unwrap_err(),
        VolumeRefused::OverQuota { .. }
    ));
    assert_eq!(db.volume_usage("p1").await.unwrap(), (15, 2));
    // Another project has its own quota.
    let id = uuid::Uuid::new_v4().to_string();
    db.create_volume(new_volume(&id, "p2", 10, Some("h1")), l, None)
        .await
        .unwrap()
        .unwrap();
    let few = limits(10, -1, 2);
    let id = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        db.create_volume(new_volume(&id, "p1", 1, Some("h1")), few, None)
            .await
            .unwrap()
            .unwrap_err(),
        VolumeRefused::TooMany { quota: 2 }
    );
    // Refused creates wrote nothing.
    assert_eq!(db.volume_usage("p1").await.unwrap(), (15, 2));
    // Without a host, a volume is recorded in error and nothing is queued.
    let id = uuid::Uuid::new_v4().to_string();
    let (row, ids) = db
        .create_volume(
            new_volume(&id, "p3", 1, None),
            l,
            Some(outbox("h1", "create")),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "error");
    assert!(row.status_reason.unwrap().contains("No valid backend"));
    assert!(ids.is_empty());
    // Scope: p2 does not see p1's volumes.
    let p1 = db
        .volumes(VolumeScope::Project("p1"), &Default::default())
        .await
        .unwrap();
    assert_eq!(p1.len(), 2);
    assert!(p1.iter().all(|r| r.volume.project_id == "p1"));
    let first = &p1[0].volume.id;
    assert!(db
        .volume(VolumeScope::Project("p2"), first)
        .await
        .unwrap()
        .is_none());
}

async fn concurrent_creates_never_pass_the_quota(db: Database) {
    let l = limits(10, 5, -1);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let id = uuid::Uuid::new_v4().to_string();
            db.create_volume(new_volume(&id, "p1", 1, Some("h1")), l, None)
                .await
        }));
    }
    let mut made = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Ok(_)) => made += 1,
            Ok(Err(VolumeRefused::OverQuota { .. })) => {}
            // SQLite may give up on a busy writer; that is a refusal too, never an overrun.
            Err(DbError::Query { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(made, 5);
    assert_eq!(db.volume_usage("p1").await.unwrap(), (5, 5));
}

async fn a_volume_has_one_attacher_and_comes_back_when_its_capsule_goes(db: Database) {
    node(&db, "h1").await;
    node(&db, "h2").await;
    let data = volume(&db, "p1", "h1", 1).await;
    let fresh = uuid::Uuid::new_v4().to_string();
    let scratch = uuid::Uuid::new_v4().to_string();
    let first = capsule(
        "p1",
        "h1",
        vec![
            CapsuleVolume::Existing { id: data.clone() },
            CapsuleVolume::New {
                id: fresh.clone(),
                size_gib: 2,
                auto_remove: true,
            },
            CapsuleVolume::New {
                id: scratch.clone(),
                size_gib: 1,
                auto_remove: false,
            },
        ],
    );
    let first_uuid = first.uuid.clone();
    db.create_capsule(first).await.unwrap();
    let mine = Some(first_uuid.clone());
    assert_eq!(
        status(&db, &data).await,
        Some(("in-use".into(), mine.clone()))
    );
    assert_eq!(
        status(&db, &fresh).await,
        Some(("creating".into(), mine.clone()))
    );
    let shown = db.volume(VolumeScope::All, &data).await.unwrap().unwrap();
    assert_eq!(shown.mounts.len(), 1);
    assert_eq!(shown.mounts[0].mount_path, "/data");

    // A second capsule asking for it is refused, and nothing of it is written.
    let second = capsule(
        "p1",
        "h1",
        vec![CapsuleVolume::Existing { id: data.clone() }],
    );
    let second_uuid = second.uuid.clone();
    match db.create_capsule(second).await {
        Err(DbError::VolumeRefused(VolumeRefused::NotAttachable { id, status })) => {
            assert_eq!((id.as_str(), status.as_str()), (data.as_str(), "in-use"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(db
        .capsule_by_uuid(&Scope::All, &second_uuid)
        .await
        .unwrap()
        .is_none());
    // Nor can a capsule on another host take an available volume of h1, nor another project.
    let other = volume(&db, "p1", "h1", 1).await;
    for c in [
        capsule(
            "p1",
            "h2",
            vec![CapsuleVolume::Existing { id: other.clone() }],
        ),
        capsule(
            "p2",
            "h1",
            vec![CapsuleVolume::Existing { id: other.clone() }],
        ),
    ] {
        assert!(matches!(
            db.create_capsule(c).await,
            Err(DbError::VolumeRefused(VolumeRefused::NotAttachable { .. }))
        ));
    }
    assert_eq!(status(&db, &other).await, Some(("available".into(), None)));

    // The host built it: the new volumes are in use.
    let state = CapsuleState {
        capsule: first_uuid.parse().unwrap(),
        status: CapsuleStatus::Running,
        status_reason: None,
        containers: vec![],
        addresses: json!({}),
        volumes_released: false,
    };
    db.apply_capsule_state("h1", 1, &state).await.unwrap();
    assert_eq!(
        status(&db, &fresh).await,
        Some(("in-use".into(), mine.clone()))
    );
    // A volume in use cannot be deleted.
    assert!(matches!(
        db.request_volume_delete(VolumeScope::Project("p1"), &data, delete_message)
            .await
            .unwrap(),
        VolumeDeleted::NotDeletable { .. }
    ));

    delete_capsule(&db, "h1", 2, &first_uuid).await;
    assert_eq!(status(&db, &data).await, Some(("available".into(), None)));
    assert_eq!(
        status(&db, &scratch).await,
        Some(("available".into(), None))
    );
    assert_eq!(status(&db, &fresh).await, None, "autoRemove volume kept");
    let back = db.volume(VolumeScope::All, &data).await.unwrap().unwrap();
    assert!(back.mounts.is_empty());
    assert!(back.volume.attached_at.is_none());
    // ... and the next capsule may take it.
    db.create_capsule(capsule(
        "p1",
        "h1",
        vec![CapsuleVolume::Existing { id: data.clone() }],
    ))
    .await
    .unwrap();
    assert_eq!(status(&db, &data).await.unwrap().0, "in-use");
}

async fn two_capsules_racing_for_a_volume_get_it_once(db: Database) {
    node(&db, "h1").await;
    let data = volume(&db, "p1", "h1", 1).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let db = db.clone();
        let c = capsule(
            "p1",
            "h1",
            vec![CapsuleVolume::Existing { id: data.clone() }],
        );
        tasks.push(tokio::spawn(async move { db.create_capsule(c).await }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok((rec, _)) => won.push(rec.capsule.uuid),
            Err(DbError::VolumeRefused(_)) | Err(DbError::Query { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(
        status(&db, &data).await,
        Some(("in-use".into(), Some(won[0].clone())))
    );
    let all = db
        .list_capsules(&Scope::All, &Default::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "losing capsules were written");
}

async fn host_reports_move_volumes_on_only(db: Database) {
    let id = uuid::Uuid::new_v4().to_string();
    db.create_volume(
        new_volume(&id, "p1", 1, Some("h1")),
        VolumeLimits::default(),
        None,
    )
    .await
    .unwrap()
    .unwrap();
    // Another host's report changes nothing.
    assert!(!db
        .apply_volume_state("h2", &id, VolumeHostState::Available, None)
        .await
        .unwrap());
    // A deletion report for a volume nobody deletes changes nothing.
    assert!(!db
        .apply_volume_state("h1", &id, VolumeHostState::Deleted, None)
        .await
        .unwrap());
    assert_eq!(status(&db, &id).await.unwrap().0, "creating");
    assert!(db
        .apply_volume_state("h1", &id, VolumeHostState::Error, Some("mkfs failed"))
        .await
        .unwrap());
    let rec = db.volume(VolumeScope::All, &id).await.unwrap().unwrap();
    assert_eq!(rec.volume.status, "error");
    assert_eq!(rec.volume.status_reason.as_deref(), Some("mkfs failed"));
    // A late "available" does not undo the error.
    assert!(!db
        .apply_volume_state("h1", &id, VolumeHostState::Available, None)
        .await
        .unwrap());
    assert_eq!(status(&db, &id).await.unwrap().0, "error");
}

async fn deletes_wait_for_the_host_and_spare_attached_volumes(db: Database) {
    let id = volume(&db, "p1", "h1", 1).await;
    assert_eq!(
        db.request_volume_delete(VolumeScope::Project("p2"), &id, delete_message)
            .await
            .unwrap(),
        VolumeDeleted::NotFound
    );
    let VolumeDeleted::Deleting(ids) = db
        .request_volume_delete(VolumeScope::Project("p1"), &id, delete_message)
        .await
        .unwrap()
    else {
        panic!("not deleting");
    };
    assert_eq!(ids.len(), 1);
    assert_eq!(status(&db, &id).await.unwrap().0, "deleting");
    // A second delete while the host works: refused, nothing queued.
    assert!(matches!(
        db.request_volume_delete(VolumeScope::Project("p1"), &id, delete_message)
            .await
            .unwrap(),
        VolumeDeleted::NotDeletable { .. }
    ));
    // The host could not remove it: error, and it can be deleted again.
    assert!(db
        .apply_volume_state("h1", &id, VolumeHostState::Error, Some("busy"))
        .await
        .unwrap());
    assert!(matches!(
        db.request_volume_delete(VolumeScope::Project("p1"), &id, delete_message)
            .await
            .unwrap(),
        VolumeDeleted::Deleting(_)
    ));
    assert!(db
        .apply_volume_state("h1", &id, VolumeHostState::Deleted, None)
        .await
        .unwrap());
    assert_eq!(status(&db, &id).await, None);
    // Repeated report: nothing to do.
    assert!(!db
        .apply_volume_state("h1", &id, VolumeHostState::Deleted, None)
        .await
        .unwrap());
    // A volume without a host goes at once.
    let orphan = uuid::Uuid::new_v4().to_string();
    db.create_volume(
        new_volume(&orphan, "p1", 1, None),
        VolumeLimits::default(),
        None,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        db.request_volume_delete(VolumeScope::Project("p1"), &orphan, delete_message)
            .await
            .unwrap(),
        VolumeDeleted::Removed
    );
    assert_eq!(status(&db, &orphan).await, None);
}

async fn a_failed_create_gives_its_volumes_back_at_once(db: Database) {
    node(&db, "h1").await;
    let data = volume(&db, "p1", "h1", 1).await;
    let (gone, kept) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let c = capsule(
        "p1",
        "h1",
        vec![
            CapsuleVolume::Existing { id: data.clone() },
            CapsuleVolume::New {
                id: gone.clone(),
                size_gib: 1,
                auto_remove: true,
            },
            CapsuleVolume::New {
                id: kept.clone(),
                size_gib: 1,
                auto_remove: false,
            },
        ],
    );
    let uuid = c.uuid.clone();
    db.create_capsule(c).await.unwrap();
    // The host undid the create: the volumes are free at once, the capsule stays in Error.
    let state = CapsuleState {
        capsule: uuid.parse().unwrap(),
        status: CapsuleStatus::Error,
        status_reason: Some("image pull failed".into()),
        containers: vec![],
        addresses: json!({}),
        volumes_released: true,
    };
    db.apply_capsule_state("h1", 2, &state).await.unwrap();
    assert_eq!(status(&db, &data).await, Some(("available".into(), None)));
    assert_eq!(status(&db, &gone).await, None);
    let rec = db.volume(VolumeScope::All, &kept).await.unwrap().unwrap();
    assert_eq!(
        (rec.volume.status.as_str(), rec.volume.capsule_uuid),
        ("error", None)
    );
    assert!(rec
        .volume
        .status_reason
        .unwrap()
        .contains("image pull failed"),);
    let failed = db
        .capsule_by_uuid(&Scope::All, &uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.capsule.status, "Error");
    // Another capsule takes the volume; deleting the failed one later changes nothing of it.
    let next = capsule(
        "p1",
        "h1",
        vec![CapsuleVolume::Existing { id: data.clone() }],
    );
    let next_uuid = next.uuid.clone();
    db.create_capsule(next).await.unwrap();
    // Its view shows the new capsule's mount only, not the failed one's.
    let rec = db.volume(VolumeScope::All, &data).await.unwrap().unwrap();
    assert_eq!(rec.mounts.len(), 1, "{:?}", rec.mounts);
    delete_capsule(&db, "h1", 3, &uuid).await;
    assert_eq!(
        status(&db, &data).await,
        Some(("in-use".into(), Some(next_uuid)))
    );
    let rec = db.volume(VolumeScope::All, &data).await.unwrap().unwrap();
    assert_eq!(rec.mounts.len(), 1, "{:?}", rec.mounts);
}
