//! The history of containers against real SQLite and PostgreSQL: actions recorded with their
//! task state and host message in one transaction, ended by the host's report (once, however
//! often it is delivered), runtime events as actions of their own (listed as they happened,
//! whatever order they arrived in), the newest 100 kept, and
//! the history gone with its container; heartbeats keep the host's stream address.

#[macro_use]
mod common;

use capsule_types::rpc::{ContainerEvent, ContainerEventKind, Heartbeat, NodeResources};
use chrono::{Duration, Utc};
use db::container_actions::{names, ACTIONS_KEPT};
use db::{
    CapsuleRecord, Database, EventOutcome, NewAction, NewCapsule, NewContainer, NewOutbox,
    SecurityGroupBinding,
};
use serde_json::json;

both_backends!(
    an_action_holds_its_task_state_until_its_report,
    a_restart_ends_with_its_start_and_a_failure_says_why,
    runtime_events_are_actions_of_their_own,
    events_that_arrive_out_of_order_are_listed_as_they_happened,
    reports_of_unknown_containers_or_other_hosts_change_nothing,
    the_newest_actions_are_kept_and_go_with_their_container,
    heartbeats_keep_the_stream_address,
);

fn container(position: i32) -> NewContainer {
    NewContainer {
        uuid: uuid::Uuid::new_v4().to_string(),
        is_init: false,
        position,
        name: format!("c{position}"),
        image: "busybox".into(),
        command: json!(["sleep", "3600"]),
        environment: json!({}),
        workdir: None,
        ports: json!([]),
        image_pull_policy: "always".into(),
        cpu: None,
        memory: None,
        status: "Running".into(),
        restart_policy: "always".into(),
        restart_max_retries: 0,
        interactive: false,
        tty: false,
        healthcheck: None,
    }
}

/// A capsule of two containers on host `h1`, project `p`.
async fn capsule(db: &Database) -> CapsuleRecord {
    let new = NewCapsule {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: Some("web".into()),
        project_id: "p".into(),
        user_id: "u".into(),
        status: "Running".into(),
        status_reason: None,
        host: Some("h1".into()),
        availability_zone: None,
        cpu: 1.0,
        memory: 64,
        restart_policy: "always".into(),
        restart_max_retries: 0,
        labels: json!({}),
        annotations: None,
        template: json!({}),
        security_groups: vec![SecurityGroupBinding {
            reference: "default".into(),
            security_group_id: "sg".into(),
        }],
        containers: vec![container(0), container(1)],
        volume_mappings: vec![],
        volumes: vec![],
        volume_limits: Default::default(),
        claim: None,
        outbox: vec![],
    };
    db.create_capsule(new).await.unwrap().0
}

fn action(name: &str, request_id: &str) -> NewAction {
    NewAction {
        action: name.into(),
        request_id: request_id.into(),
        user_id: Some("u".into()),
        project_id: "p".into(),
    }
}

fn event(
    c: &CapsuleRecord,
    i: usize,
    kind: ContainerEventKind,
    rid: Option<&str>,
) -> ContainerEvent {
    ContainerEvent {
        capsule: c.capsule.uuid.parse().unwrap(),
        container: c.containers[i].uuid.parse().unwrap(),
        kind,
        started_at: Utc::now(),
        finished_at: Utc::now(),
        request_id: rid.map(str::to_owned),
        exit_code: None,
        error: None,
    }
}

async fn task_state(db: &Database, c: &CapsuleRecord, i: usize) -> Option<String> {
    let found = db
        .containers_by_ident(&db::Scope::All, &c.containers[i].uuid)
        .await
        .unwrap();
    found[0].container.task_state.clone()
}

async fn an_action_holds_its_task_state_until_its_report(db: Database) {
    let c = capsule(&db).await;
    let both: Vec<String> = c.containers.iter().map(|x| x.uuid.clone()).collect();
    let msg = NewOutbox {
        routing_key: "zun-compute.h1".into(),
        payload: "stop".into(),
        capsule_uuid: Some(c.capsule.uuid.clone()),
    };
    let ids = db
        .start_container_action(
            &both,
            &action(names::STOP, "req-1"),
            Some("container_stopping"),
            Some(msg),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(db.outbox_len().await.unwrap(), 1);
    for (i, uuid) in both.iter().enumerate() {
        assert_eq!(
            task_state(&db, &c, i).await.as_deref(),
            Some("container_stopping")
        );
        let a = db.container_actions(uuid).await.unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].action.as_str(), a[0].request_id.as_str()),
            ("stop", "req-1")
        );
        assert_eq!(a[0].user_id.as_deref(), Some("u"));
        assert!(a[0].finish_time.is_none());
    }
    // The first container's report ends its action and clears its task state only.
    let ev = event(&c, 0, ContainerEventKind::Stopped, Some("req-1"));
    let applied = db.apply_container_event("h1", 7, &ev).await.unwrap();
    assert_eq!(applied, EventOutcome::Applied { settled: true });
    assert_eq!(task_state(&db, &c, 0).await, None);
    assert_eq!(
        task_state(&db, &c, 1).await.as_deref(),
        Some("container_stopping")
    );
    let rec = db
        .container_action(&both[0], "req-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.action.finish_time,
        Some(ev.finished_at.trunc_subsecs_micros())
    );
    assert_eq!(rec.action.message, None);
    assert_eq!(rec.events.len(), 1);
    assert_eq!(rec.events[0].event, "compute__do_container_stop");
    assert_eq!(rec.events[0].result.as_deref(), Some("Success"));
    // Delivered again (same host and seq): nothing changes.
    let again = db.apply_container_event("h1", 7, &ev).await.unwrap();
    assert_eq!(again, EventOutcome::Duplicate);
    let rec = db
        .container_action(&both[0], "req-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.events.len(), 1);
    assert_eq!(db.container_actions(&both[0]).await.unwrap().len(), 1);
    // A call the API saw end is finished at once; a late report adds its event only.
    db.start_container_action(&both[1..], &action(names::EXEC, "req-2"), None, None)
        .await
        .unwrap();
    db.finish_container_action(&both[1], "req-2", None)
        .await
        .unwrap();
    let ev = event(&c, 1, ContainerEventKind::Exec, Some("req-2"));
    let applied = db.apply_container_event("h1", 8, &ev).await.unwrap();
    assert_eq!(applied, EventOutcome::Applied { settled: false });
    assert_eq!(
        task_state(&db, &c, 1).await.as_deref(),
        Some("container_stopping")
    );
    let rec = db
        .container_action(&both[1], "req-2")
        .await
        .unwrap()
        .unwrap();
    assert!(rec.action.finish_time.is_some());
    assert_eq!(rec.events.len(), 1);
    assert!(db
        .container_action(&both[1], "req-404")
        .await
        .unwrap()
        .is_none());
}

trait Micros {
    fn trunc_subsecs_micros(self) -> Self;
}

impl Micros for chrono::DateTime<Utc> {
    fn trunc_subsecs_micros(self) -> Self {
        use chrono::SubsecRound;
        self.trunc_subsecs(6)
    }
}

async fn a_restart_ends_with_its_start_and_a_failure_says_why(db: Database) {
    let c = capsule(&db).await;
    let one = vec![c.containers[0].uuid.clone()];
    db.start_container_action(
        &one,
        &action(names::REBOOT, "req-r"),
        Some("container_rebooting"),
        None,
    )
    .await
    .unwrap();
    let stopped = event(&c, 0, ContainerEventKind::Stopped, Some("req-r"));
    let r = db.apply_container_event("h1", 1, &stopped).await.unwrap();
    assert_eq!(r, EventOutcome::Applied { settled: false });
    assert_eq!(
        task_state(&db, &c, 0).await.as_deref(),
        Some("container_rebooting")
    );
    let rec = db
        .container_action(&one[0], "req-r")
        .await
        .unwrap()
        .unwrap();
    assert!(
        rec.action.finish_time.is_none(),
        "a restart is not over when stopped"
    );
    let started = event(&c, 0, ContainerEventKind::Started, Some("req-r"));
    let r = db.apply_container_event("h1", 2, &started).await.unwrap();
    assert_eq!(r, EventOutcome::Applied { settled: true });
    let rec = db
        .container_action(&one[0], "req-r")
        .await
        .unwrap()
        .unwrap();
    assert!(rec.action.finish_time.is_some());
    assert_eq!(rec.events.len(), 2);

    // A pause that failed: ended, with the host's words, and the task state cleared.
    db.start_container_action(
        &one,
        &action(names::PAUSE, "req-p"),
        Some("container_pausing"),
        None,
    )
    .await
    .unwrap();
    let mut failed = event(&c, 0, ContainerEventKind::Paused, Some("req-p"));
    failed.error = Some("the freezer is not available".into());
    failed.exit_code = Some(1);
    let r = db.apply_container_event("h1", 3, &failed).await.unwrap();
    assert_eq!(r, EventOutcome::Applied { settled: true });
    assert_eq!(task_state(&db, &c, 0).await, None);
    let rec = db
        .container_action(&one[0], "req-p")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.action.message.as_deref(),
        Some("the freezer is not available")
    );
    assert_eq!(rec.events[0].result.as_deref(), Some("Error"));
    assert_eq!(
        rec.events[0].traceback.as_deref(),
        Some("the freezer is not available (exit code 1)")
    );
    // An older action's late report does not clear a newer action's task state.
    db.start_container_action(
        &one,
        &action(names::STOP, "req-s"),
        Some("container_stopping"),
        None,
    )
    .await
    .unwrap();
    let late = event(&c, 0, ContainerEventKind::Started, Some("req-r"));
    db.apply_container_event("h1", 4, &late).await.unwrap();
    assert_eq!(
        task_state(&db, &c, 0).await.as_deref(),
        Some("container_stopping")
    );
}

async fn runtime_events_are_actions_of_their_own(db: Database) {
    let c = capsule(&db).await;
    let id = c.containers[0].uuid.clone();
    let mut exited = event(&c, 0, ContainerEventKind::Exited, None);
    exited.exit_code = Some(3);
    exited.started_at = Utc::now() - Duration::seconds(5);
    db.apply_container_event("h1", 10, &exited).await.unwrap();
    let oom = event(&c, 0, ContainerEventKind::OomKilled, None);
    db.apply_container_event("h1", 11, &oom).await.unwrap();
    // The host's create (with the create's request id) makes the create action.
    let created = event(&c, 0, ContainerEventKind::Created, Some("req-create"));
    db.apply_container_event("h1", 12, &created).await.unwrap();
    let started = event(&c, 0, ContainerEventKind::Started, Some("req-create"));
    db.apply_container_event("h1", 13, &started).await.unwrap();
    let list = db.container_actions(&id).await.unwrap();
    let names: Vec<&str> = list.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(names, ["create", "oom_killed", "exited"], "newest first");
    assert!(list.iter().all(|a| a.finish_time.is_some()));
    assert_eq!(list[1].user_id, None, "the runtime did it");
    assert_eq!(list[1].project_id, "p");
    assert!(list[1].request_id.starts_with("req-"));
    let create = db
        .container_action(&id, "req-create")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(create.events.len(), 2);
    // Redelivered runtime reports make no second action.
    db.apply_container_event("h1", 10, &exited).await.unwrap();
    assert_eq!(db.container_actions(&id).await.unwrap().len(), 3);
}

/// A host's reports may overtake each other in the broker (prefetch, redelivery): the history
/// is in the order things happened, whatever the order they arrived in.
async fn events_that_arrive_out_of_order_are_listed_as_they_happened(db: Database) {
    let c = capsule(&db).await;
    let id = c.containers[0].uuid.clone();
    let mut exited = event(&c, 0, ContainerEventKind::Exited, None);
    exited.started_at = Utc::now() - Duration::seconds(2);
    exited.finished_at = exited.started_at;
    let restarted = event(&c, 0, ContainerEventKind::Restarted, None);
    // The restart (seq 2) arrives first, then the exit it followed (seq 1).
    let r = db.apply_container_event("h1", 2, &restarted).await.unwrap();
    assert!(matches!(r, EventOutcome::Applied { .. }), "{r:?}");
    let r = db.apply_container_event("h1", 1, &exited).await.unwrap();
    assert!(matches!(r, EventOutcome::Applied { .. }), "{r:?}");
    let list = db.container_actions(&id).await.unwrap();
    let names: Vec<&str> = list.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(names, ["restarted", "exited"], "newest first");
}

async fn reports_of_unknown_containers_or_other_hosts_change_nothing(db: Database) {
    let c = capsule(&db).await;
    let ev = event(&c, 0, ContainerEventKind::Exited, None);
    let r = db.apply_container_event("h2", 1, &ev).await.unwrap();
    assert_eq!(r, EventOutcome::OtherHost);
    let mut unknown = ev.clone();
    unknown.container = uuid::Uuid::new_v4();
    let r = db.apply_container_event("h1", 2, &unknown).await.unwrap();
    assert_eq!(r, EventOutcome::UnknownContainer);
    assert!(db
        .container_actions(&c.containers[0].uuid)
        .await
        .unwrap()
        .is_empty());
}

async fn the_newest_actions_are_kept_and_go_with_their_container(db: Database) {
    let c = capsule(&db).await;
    let one = vec![c.containers[0].uuid.clone()];
    let extra = 5;
    for i in 0..ACTIONS_KEPT + extra {
        db.start_container_action(&one, &action(names::KILL, &format!("req-{i}")), None, None)
            .await
            .unwrap();
    }
    let list = db.container_actions(&one[0]).await.unwrap();
    assert_eq!(list.len() as u64, ACTIONS_KEPT);
    let newest = format!("req-{}", ACTIONS_KEPT + extra - 1);
    assert_eq!(list[0].request_id, newest);
    assert!(db
        .container_action(&one[0], "req-0")
        .await
        .unwrap()
        .is_none());
    assert!(db
        .container_action(&one[0], "req-5")
        .await
        .unwrap()
        .is_some());
    // Events of a kept action, then the capsule goes: its history goes with it.
    let ev = event(&c, 0, ContainerEventKind::Killed, Some(&newest));
    db.apply_container_event("h1", 1, &ev).await.unwrap();
    let (deleted, _) = db.delete_capsule(c.capsule.id, None).await.unwrap();
    assert!(deleted);
    assert!(db.container_actions(&one[0]).await.unwrap().is_empty());
    use sea_orm::{EntityTrait, PaginatorTrait};
    let events = db::entity::container_action_event::Entity::find()
        .count(db.connection())
        .await
        .unwrap();
    assert_eq!(events, 0);
}

async fn heartbeats_keep_the_stream_address(db: Database) {
    let mut hb = Heartbeat {
        host: "h1".into(),
        binary: "zun-compute".into(),
        availability_zone: "nova".into(),
        resources: NodeResources::default(),
        capsules: vec![],
        seq: 1,
        firewall_epoch: None,
        firewall_incarnation: None,
        stream_address: Some("127.0.0.1:9520".into()),
    };
    db.record_heartbeat(&hb).await.unwrap();
    let svc = db.service("h1", "zun-compute").await.unwrap().unwrap();
    assert_eq!(svc.stream_address.as_deref(), Some("127.0.0.1:9520"));
    // A host that stops advertising one has none.
    hb.stream_address = None;
    hb.seq = 2;
    db.record_heartbeat(&hb).await.unwrap();
    let svc = db.service("h1", "zun-compute").await.unwrap().unwrap();
    assert_eq!(svc.stream_address, None);
}
