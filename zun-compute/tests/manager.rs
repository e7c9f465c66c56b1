//! The capsule manager's rules with the fake runtime and the in-process bus: a create is done
//! once however often it is delivered, a delete wins over a create that arrives after it, an
//! interrupted create is redone, every outcome is reported, and volume requests are done once
//! and answered every time.

mod manager_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capsule_types::rpc::{
    CapsuleSpec, ComputeRequest, ConductorEvent, ContainerRef, VolumeHostState,
};
use capsule_types::template::{CapsuleTemplate, ContainerSpec};
use capsule_types::CapsuleStatus;
use rpc::{Bus, MemoryBus};
use test_support::TempDir;
use zun_compute::manager::Manager;
use zun_compute::runtime::fake::FakeRuntime;
use zun_compute::runtime::RuntimeDriver;
use zun_compute::store::{Record, Store};

use manager_support::{conductor_reports, fake_manager};

struct Harness {
    manager: Manager,
    events: Arc<Mutex<Vec<ConductorEvent>>>,
    dir: TempDir,
}

fn harness() -> Harness {
    let dir = TempDir::new("zc-mgr");
    let bus = Bus::Memory(MemoryBus::new());
    let events = conductor_reports(&bus);
    let manager = fake_manager(&dir, bus);
    Harness {
        manager,
        events,
        dir,
    }
}

fn spec() -> CapsuleSpec {
    let mut c = ContainerSpec::new("busybox");
    c.name = Some("a".into());
    CapsuleSpec {
        uuid: uuid::Uuid::new_v4(),
        name: Some("t".into()),
        project_id: "p".into(),
        template: CapsuleTemplate {
            name: Some("t".into()),
            labels: Default::default(),
            annotations: None,
            availability_zone: None,
            restart_policy: Default::default(),
            termination_grace_period_seconds: None,
            init_containers: vec![],
            containers: vec![c],
            volumes: vec![],
            security_groups: vec!["default".into()],
        },
        containers: vec![ContainerRef {
            uuid: uuid::Uuid::new_v4(),
            name: "a".into(),
            is_init: false,
            position: 0,
        }],
        volumes: vec![],
    }
}

impl Harness {
    fn journal(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("runtime/fake-runtime.journal"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn events(&self, n: usize) -> Vec<ConductorEvent> {
        for _ in 0..200 {
            if self.events.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.events.lock().unwrap().clone()
    }
}

fn create(s: &CapsuleSpec) -> ComputeRequest {
    ComputeRequest::CreateCapsule {
        capsule: Box::new(s.clone()),
    }
}

#[tokio::test]
async fn a_redelivered_create_is_reported_not_redone() {
    let h = harness();
    let s = spec();
    h.manager.handle(create(&s), None).await.unwrap();
    h.manager.handle(create(&s), None).await.unwrap();
    assert_eq!(h.journal(), vec![format!("create {}", s.uuid)]);
    let ev = h.events(2).await;
    assert_eq!(ev.len(), 2, "both deliveries are answered with the state");
    for e in ev {
        let ConductorEvent::CapsuleState { state, seq, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(state.status, CapsuleStatus::Running);
        assert_eq!(state.containers[0].status, CapsuleStatus::Running);
        assert!(seq > 0);
    }
    assert_eq!(h.manager.capsules().unwrap(), vec![s.uuid]);
}

#[tokio::test]
async fn delete_then_late_create_leaves_nothing() {
    let h = harness();
    let s = spec();
    h.manager
        .handle(ComputeRequest::DeleteCapsule { capsule: s.uuid }, None)
        .await
        .unwrap();
    h.manager.handle(create(&s), None).await.unwrap();
    assert!(h.journal().is_empty(), "nothing was built");
    assert!(h.manager.capsules().unwrap().is_empty());
    let ev = h.events(2).await;
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev.iter().all(
        |e| matches!(e, ConductorEvent::CapsuleDeleted { capsule, .. } if *capsule == s.uuid)
    ));
}

#[tokio::test]
async fn delete_is_idempotent_and_reports_each_time() {
    let h = harness();
    let s = spec();
    h.manager.handle(create(&s), None).await.unwrap();
    for _ in 0..2 {
        h.manager
            .handle(ComputeRequest::DeleteCapsule { capsule: s.uuid }, None)
            .await
            .unwrap();
    }
    assert_eq!(
        h.journal(),
        vec![format!("create {}", s.uuid), format!("delete {}", s.uuid)]
    );
    let ev = h.events(3).await;
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, ConductorEvent::CapsuleDeleted { .. }))
            .count(),
        2
    );
}

#[tokio::test]
async fn an_interrupted_create_is_redone_on_reconcile() {
    let h = harness();
    let s = spec();
    // What a crash between "remember the intent" and "create finished" leaves behind.
    let store = Store::open(&h.dir).unwrap();
    store
        .put(&Record {
            spec: s.clone(),
            state: capsule_types::rpc::CapsuleState {
                capsule: s.uuid,
                status: CapsuleStatus::Creating,
                status_reason: None,
                containers: vec![],
                addresses: serde_json::json!({}),
                volumes_released: false,
            },
            settled: false,
            unreported: false,
            deleting: false,
            events_seen: 0,
        })
        .unwrap();
    h.manager.reconcile().await.unwrap();
    assert_eq!(h.journal(), vec![format!("create {}", s.uuid)]);
    let ev = h.events(1).await;
    assert!(
        matches!(&ev[0], ConductorEvent::CapsuleState { state, .. } if state.status == CapsuleStatus::Running)
    );
    // Settled now: another reconcile changes nothing and owes no report.
    h.manager.reconcile().await.unwrap();
    assert_eq!(h.journal().len(), 1);
}

#[tokio::test]
async fn a_delete_interrupted_by_a_restart_is_finished_not_reported_as_broken() {
    let h = harness();
    let s = spec();
    h.manager.handle(create(&s), None).await.unwrap();
    // What an agent killed half way through a delete leaves: the record marked deleting, the
    // capsule half torn down (here: its containers already gone).
    let store = Store::open(&h.dir).unwrap();
    let mut rec = store.get(s.uuid).unwrap().expect("remembered");
    rec.deleting = true;
    store.put(&rec).unwrap();
    FakeRuntime::new(&h.dir.join("runtime"), Duration::ZERO)
        .unwrap()
        .delete(s.uuid)
        .await
        .unwrap();
    h.manager.report_all().await.unwrap();
    let ev = h.events(2).await;
    assert!(
        matches!(ev.last().unwrap(), ConductorEvent::CapsuleDeleted { capsule, .. } if *capsule == s.uuid),
        "{ev:?}"
    );
    assert!(
        !ev.iter().any(|e| matches!(e, ConductorEvent::CapsuleState { state, .. } if state.status == CapsuleStatus::Error)),
        "the half-deleted capsule was reported broken: {ev:?}"
    );
    assert!(store.get(s.uuid).unwrap().is_none(), "forgotten");
    // The delete's redelivery then finds nothing and reports it deleted again.
    h.manager
        .handle(ComputeRequest::DeleteCapsule { capsule: s.uuid }, None)
        .await
        .unwrap();
    let ev = h.events(3).await;
    assert!(matches!(
        ev.last().unwrap(),
        ConductorEvent::CapsuleDeleted { .. }
    ));
}

#[tokio::test]
async fn a_capsule_gone_from_the_runtime_is_reported_as_error() {
    let h = harness();
    let s = spec();
    h.manager.handle(create(&s), None).await.unwrap();
    // Its containers vanish behind the agent's back.
    FakeRuntime::new(&h.dir.join("runtime"), Duration::ZERO)
        .unwrap()
        .delete(s.uuid)
        .await
        .unwrap();
    h.manager.reconcile().await.unwrap();
    let ev = h.events(2).await;
    let ConductorEvent::CapsuleState { state, .. } = ev.last().unwrap() else {
        panic!("{ev:?}")
    };
    assert_eq!(state.status, CapsuleStatus::Error);
    assert!(state.status_reason.as_deref().unwrap().contains("gone"));
}

#[tokio::test]
async fn volume_requests_are_done_once_and_answered_each_time() {
    let h = harness();
    let v = uuid::Uuid::new_v4();
    for _ in 0..2 {
        h.manager
            .handle(
                ComputeRequest::CreateVolume {
                    volume: v,
                    size_gib: 1,
                },
                None,
            )
            .await
            .unwrap();
    }
    for _ in 0..2 {
        h.manager
            .handle(ComputeRequest::DeleteVolume { volume: v }, None)
            .await
            .unwrap();
    }
    assert_eq!(
        h.journal(),
        vec![format!("create_volume {v}"), format!("delete_volume {v}")]
    );
    let states: Vec<VolumeHostState> = h
        .events(4)
        .await
        .into_iter()
        .map(|e| match e {
            ConductorEvent::VolumeState {
                volume,
                state,
                reason,
                host,
            } => {
                assert_eq!((volume, host.as_str(), reason), (v, "h1", None));
                state
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        states,
        [
            VolumeHostState::Available,
            VolumeHostState::Available,
            VolumeHostState::Deleted,
            VolumeHostState::Deleted
        ]
    );
}
