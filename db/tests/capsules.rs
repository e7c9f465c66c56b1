//! The capsule datastore against real SQLite and PostgreSQL: create, scoped lookups, keyset
//! paging in every sort order, updates and idempotent delete.

#[macro_use]
mod common;

use common::{with_db, Backend};
use db::{
    Database, DbError, ListParams, NewCapsule, NewContainer, Scope, SecurityGroupBinding, SortDir,
    SortKey,
};
use serde_json::json;

fn container(uuid: &str, is_init: bool, position: i32) -> NewContainer {
    NewContainer {
        uuid: uuid.to_owned(),
        is_init,
        position,
        name: format!("c-{position}-{is_init}"),
        image: "busybox".into(),
        command: json!(["sleep", "3600"]),
        environment: json!({"A": "1"}),
        workdir: None,
        ports: json!([80]),
        image_pull_policy: "always".into(),
        cpu: Some(0.5),
        memory: Some(64),
        status: "Creating".into(),
        restart_policy: "always".into(),
        restart_max_retries: 0,
        interactive: false,
        tty: false,
        healthcheck: None,
    }
}

fn capsule(project: &str, name: Option<&str>, host: Option<&str>) -> NewCapsule {
    let uuid = uuid::Uuid::new_v4().to_string();
    NewCapsule {
        uuid: uuid.clone(),
        name: name.map(str::to_owned),
        project_id: project.into(),
        user_id: "u1".into(),
        status: "Creating".into(),
        status_reason: None,
        host: host.map(str::to_owned),
        availability_zone: None,
        cpu: 1.0,
        memory: 128,
        restart_policy: "always".into(),
        restart_max_retries: 0,
        labels: json!({"app": "web"}),
        annotations: None,
        template: json!({"name": name}),
        security_groups: ["default", "web"]
            .into_iter()
            .map(|r| SecurityGroupBinding {
                reference: r.into(),
                security_group_id: format!("id-of-{r}"),
            })
            .collect(),
        containers: vec![
            container(&uuid::Uuid::new_v4().to_string(), false, 1),
            container(&uuid::Uuid::new_v4().to_string(), true, 0),
            container(&uuid::Uuid::new_v4().to_string(), false, 0),
        ],
        volume_mappings: vec![],
        volumes: vec![],
        volume_limits: Default::default(),
        claim: None,
        outbox: vec![],
    }
}

both_backends!(
    create_and_lookup,
    scopes_isolate_projects,
    paging_visits_every_row_once_in_order,
    bad_marker_is_reported,
    status_updates_and_idempotent_delete,
    migrations_are_idempotent,
    every_change_bumps_only_its_projects_generation,
);

async fn create_and_lookup(db: Database) {
    let new = capsule("p1", Some("web"), None);
    let uuid = new.uuid.clone();
    let rec = db.create_capsule(new).await.unwrap().0;
    assert_eq!(rec.capsule.uuid, uuid);
    assert_eq!(rec.capsule.status, "Creating");
    assert_eq!(rec.init_containers.len(), 1);
    assert_eq!(
        rec.containers
            .iter()
            .map(|c| c.position)
            .collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(rec.security_groups, vec!["default", "web"]);

    let got = db
        .capsule_by_uuid(&Scope::Project("p1".into()), &uuid)
        .await
        .unwrap()
        .expect("visible to its project");
    assert_eq!(got, rec, "a re-read returns exactly what create returned");
    let by_name = db
        .capsules_by_name(&Scope::Project("p1".into()), "web")
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].capsule.uuid, uuid);

    db.create_capsule(capsule("p1", Some("web"), None))
        .await
        .unwrap();
    let dup = db
        .capsules_by_name(&Scope::Project("p1".into()), "web")
        .await
        .unwrap();
    assert_eq!(
        dup.len(),
        2,
        "duplicates are returned so the API can answer 409"
    );
}

async fn scopes_isolate_projects(db: Database) {
    let a = db
        .create_capsule(capsule("pa", Some("x"), None))
        .await
        .unwrap()
        .0;
    db.create_capsule(capsule("pb", Some("x"), None))
        .await
        .unwrap();
    let uuid = a.capsule.uuid.clone();
    assert!(db
        .capsule_by_uuid(&Scope::Project("pb".into()), &uuid)
        .await
        .unwrap()
        .is_none());
    assert!(db
        .capsule_by_uuid(&Scope::All, &uuid)
        .await
        .unwrap()
        .is_some());
    assert!(db
        .capsule_by_uuid(&Scope::User("u1".into()), &uuid)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        db.capsules_by_name(&Scope::Project("pa".into()), "x")
            .await
            .unwrap()
            .len(),
        1
    );
    let listed = db
        .list_capsules(&Scope::Project("pb".into()), &ListParams::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].capsule.project_id, "pb");
    assert_eq!(db.count_capsules(&Scope::All).await.unwrap(), 2);
}

async fn paging_visits_every_row_once_in_order(db: Database) {
    // Names and hosts with NULLs and ties, so the NULL and tie-break paths are exercised.
    let names = [
        Some("b"),
        None,
        Some("a"),
        Some("b"),
        None,
        Some("c"),
        Some("a"),
    ];
    for (i, n) in names.iter().enumerate() {
        let host = if i % 3 == 0 { None } else { Some("h1") };
        db.create_capsule(capsule("p", *n, host)).await.unwrap();
    }
    let scope = Scope::Project("p".into());
    for key in [
        SortKey::Id,
        SortKey::Name,
        SortKey::Host,
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
        SortKey::Uuid,
    ] {
        for dir in [SortDir::Asc, SortDir::Desc] {
            let all = ListParams {
                limit: 100,
                marker: None,
                sort_key: key,
                sort_dir: dir,
            };
            let full: Vec<String> = db
                .list_capsules(&scope, &all)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.capsule.uuid)
                .collect();
            assert_eq!(full.len(), names.len());
            for limit in [1, 2, 3] {
                let mut paged = Vec::new();
                let mut marker = None;
                loop {
                    let page = db
                        .list_capsules(
                            &scope,
                            &ListParams {
                                limit,
                                marker: marker.clone(),
                                sort_key: key,
                                sort_dir: dir,
                            },
                        )
                        .await
                        .unwrap();
                    assert!(page.len() as u64 <= limit);
                    let done = (page.len() as u64) < limit;
                    paged.extend(page.into_iter().map(|r| r.capsule.uuid));
                    marker = paged.last().cloned();
                    if done || paged.len() > names.len() {
                        break;
                    }
                }
                assert_eq!(
                    paged,
                    full,
                    "key {} {} limit {limit}",
                    key.as_str(),
                    dir.as_str()
                );
            }
        }
    }
    // The unpaged name order really is sorted with NULLs first ascending.
    let asc: Vec<Option<String>> = db
        .list_capsules(
            &scope,
            &ListParams {
                sort_key: SortKey::Name,
                ..ListParams::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.capsule.name)
        .collect();
    let mut sorted = asc.clone();
    sorted.sort();
    assert_eq!(asc, sorted);
    assert_eq!(asc[0], None);
}

async fn bad_marker_is_reported(db: Database) {
    let other = db
        .create_capsule(capsule("other", None, None))
        .await
        .unwrap()
        .0;
    for marker in ["not-a-capsule".to_owned(), other.capsule.uuid.clone()] {
        let err = db
            .list_capsules(
                &Scope::Project("mine".into()),
                &ListParams {
                    marker: Some(marker.clone()),
                    ..ListParams::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DbError::MarkerNotFound { marker: m } if *m == marker),
            "{err:?}"
        );
    }
}

async fn status_updates_and_idempotent_delete(db: Database) {
    let rec = db
        .create_capsule(capsule("p", Some("d"), Some("h")))
        .await
        .unwrap()
        .0;
    let id = rec.capsule.id;
    db.set_capsule_status(id, "Error", Some("There are not enough hosts available."))
        .await
        .unwrap();
    db.set_capsule_task_state(id, Some("container_deleting"))
        .await
        .unwrap();
    let got = db
        .capsule_by_uuid(&Scope::All, &rec.capsule.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.capsule.status, "Error");
    assert_eq!(
        got.capsule.status_reason.as_deref(),
        Some("There are not enough hosts available.")
    );
    assert_eq!(
        got.capsule.task_state.as_deref(),
        Some("container_deleting")
    );
    assert!(got.capsule.updated_at.is_some());

    assert!(db.delete_capsule(id, None).await.unwrap().0);
    assert!(
        !db.delete_capsule(id, None).await.unwrap().0,
        "second delete is a no-op"
    );
    assert!(db
        .capsule_by_uuid(&Scope::All, &rec.capsule.uuid)
        .await
        .unwrap()
        .is_none());
    assert_eq!(db.count_capsules(&Scope::All).await.unwrap(), 0);
    use sea_orm::{EntityTrait, PaginatorTrait};
    let orphans = db::entity::capsule_container::Entity::find()
        .count(db.connection())
        .await
        .unwrap();
    assert_eq!(orphans, 0, "containers go with their capsule");
}

async fn migrations_are_idempotent(db: Database) {
    let before = db.applied_migrations().await.unwrap();
    assert_eq!(
        before,
        vec![
            "m20261124_000001_initial",
            "m20261124_000002_compute",
            "m20261124_000003_security_groups",
            "m20261124_000004_firewall_epoch",
            "m20261124_000005_volumes",
            "m20261207_000006_firewall_incarnation",
            "m20261207_000007_container_actions",
            "m20261208_000008_container_ready",
        ]
    );
    db.migrate().await.unwrap();
    assert_eq!(db.applied_migrations().await.unwrap(), before);
}

#[tokio::test]
async fn sqlite_file_is_created_on_connect() {
    with_db(Backend::Sqlite, |db| async move {
        assert_eq!(db.count_capsules(&Scope::All).await.unwrap(), 0);
    })
    .await;
}

async fn every_change_bumps_only_its_projects_generation(db: Database) {
    assert_eq!(db.project_generation("g1").await.unwrap(), 0);
    let rec = db
        .create_capsule(capsule("g1", Some("gen"), None))
        .await
        .unwrap()
        .0;
    let id = rec.capsule.id;
    let mut last = db.project_generation("g1").await.unwrap();
    assert!(last > 0, "create bumps");
    assert_eq!(
        db.capsule_template(id).await.unwrap(),
        Some(json!({"name": "gen"}))
    );
    let other = db.project_generation("g2").await.unwrap();
    db.set_capsule_status(id, "Running", None).await.unwrap();
    let g = db.project_generation("g1").await.unwrap();
    assert!(g > last, "status bumps");
    last = g;
    db.set_capsule_task_state(id, Some("container_deleting"))
        .await
        .unwrap();
    let g = db.project_generation("g1").await.unwrap();
    assert!(g > last, "task state bumps");
    last = g;
    assert!(db.delete_capsule(id, None).await.unwrap().0);
    let g = db.project_generation("g1").await.unwrap();
    assert!(g > last, "delete bumps");
    assert_eq!(
        db.capsule_template(id).await.unwrap(),
        None,
        "template deleted"
    );
    // A missing capsule changes nothing.
    db.set_capsule_status(id, "Error", None).await.unwrap();
    assert!(!db.delete_capsule(id, None).await.unwrap().0);
    assert_eq!(db.project_generation("g1").await.unwrap(), g);
    assert_eq!(db.project_generation("g2").await.unwrap(), other);
}
