//! The manager's container operations with the fake runtime and the in-process bus (pure
//! logic; the real runtime is in `container_ops.rs`): an action reports the capsule's state and
//! one event per container with the request's id (an error when it failed), a redelivered action
//! or call changes nothing more, calls are checked again on the host and answered in Zun's words.

mod manager_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capsule_types::rpc::{
    CapsuleSpec, ComputeRequest, ConductorEvent, ContainerAction, ContainerCall,
    ContainerEventKind, ContainerRef, ContainerReply,
};
use capsule_types::template::{CapsuleTemplate, ContainerSpec};
use capsule_types::CapsuleStatus;
use rpc::{Bus, MemoryBus};
use test_support::TempDir;
use uuid::Uuid;
use zun_compute::config::StreamConfig;
use zun_compute::manager::Manager;

use manager_support::{conductor_reports, fake_manager};

struct Harness {
    manager: Manager,
    events: Arc<Mutex<Vec<ConductorEvent>>>,
    _dir: TempDir,
}

fn harness() -> Harness {
    let dir = TempDir::new("zc-ops");
    let bus = Bus::Memory(MemoryBus::new());
    let events = conductor_reports(&bus);
    let manager = fake_manager(&dir, bus);
    let (_listener, streams) =
        zun_compute::stream::bind(&StreamConfig::default(), manager.runtime().clone())
            .unwrap()
            .unwrap();
    manager.set_streams(streams);
    Harness {
        manager,
        events,
        _dir: dir,
    }
}

fn spec() -> CapsuleSpec {
    let c = |n: &str| {
        let mut c = ContainerSpec::new("busybox");
        c.name = Some(n.into());
        c
    };
    let refs = |n: &str, i: usize, init: bool| ContainerRef {
        uuid: Uuid::new_v4(),
        name: n.into(),
        is_init: init,
        position: i,
    };
    CapsuleSpec {
        uuid: Uuid::new_v4(),
        name: Some("t".into()),
        project_id: "p".into(),
        template: CapsuleTemplate {
            name: Some("t".into()),
            labels: Default::default(),
            annotations: None,
            availability_zone: None,
            restart_policy: Default::default(),
            termination_grace_period_seconds: None,
            init_containers: vec![c("i")],
            containers: vec![c("a"), c("b")],
            volumes: vec![],
            security_groups: vec!["default".into()],
        },
        containers: vec![refs("i", 0, true), refs("a", 0, false), refs("b", 1, false)],
        volumes: vec![],
    }
}

impl Harness {
    async fn settle(&self) -> Vec<ConductorEvent> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    async fn act(&self, s: &CapsuleSpec, c: Option<usize>, action: ContainerAction) {
        let req = ComputeRequest::ContainerAction {
            capsule: s.uuid,
            container: c.map(|i| s.containers[i].uuid),
            action,
        };
        self.manager
            .handle(req, Some("req-1".into()))
            .await
            .unwrap();
    }

    async fn call(&self, s: &CapsuleSpec, c: usize, call: ContainerCall) -> ContainerReply {
        manager_support::call(&self.manager, s, c, call, "req-2").await
    }
}

fn container_status(events: &[ConductorEvent], c: Uuid) -> Option<CapsuleStatus> {
    events.iter().rev().find_map(|e| match e {
        ConductorEvent::CapsuleState { state, .. } => state
            .containers
            .iter()
            .find(|s| s.uuid == c)
            .map(|s| s.status),
        _ => None,
    })
}

fn container_events(events: &[ConductorEvent]) -> Vec<capsule_types::rpc::ContainerEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            ConductorEvent::ContainerEvent { happened, .. } => Some(happened.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_action_reports_the_state_then_an_event_with_the_request_id() {
    let h = harness();
    let s = spec();
    h.manager
        .handle(
            ComputeRequest::CreateCapsule {
                capsule: Box::new(s.clone()),
            },
            None,
        )
        .await
        .unwrap();
    h.settle().await;
    let stop = ContainerAction::Stop {
        timeout_seconds: Some(1),
    };
    h.act(&s, Some(1), stop.clone()).await;
    let got = h.settle().await;
    assert_eq!(
        container_status(&got, s.containers[1].uuid),
        Some(CapsuleStatus::Stopped)
    );
    assert_eq!(
        container_status(&got, s.containers[2].uuid),
        Some(CapsuleStatus::Running)
    );
    let ev = container_events(&got);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].kind, ContainerEventKind::Stopped);
    assert_eq!(ev[0].request_id.as_deref(), Some("req-1"));
    assert_eq!(ev[0].container, s.containers[1].uuid);
    assert_eq!(ev[0].error, None);

    // Delivered again: success again, and nothing else changed.
    h.act(&s, Some(1), stop).await;
    let again = h.settle().await;
    assert_eq!(
        container_status(&again, s.containers[1].uuid),
        Some(CapsuleStatus::Stopped)
    );
    assert_eq!(
        container_status(&again, s.containers[2].uuid),
        Some(CapsuleStatus::Running)
    );
    assert_eq!(container_events(&again)[0].error, None);

    // Every application container (not the init one): one event each.
    h.act(&s, None, ContainerAction::Start).await;
    let all = container_events(&h.settle().await);
    let mut who: Vec<Uuid> = all.iter().map(|e| e.container).collect();
    who.sort();
    let mut apps = vec![s.containers[1].uuid, s.containers[2].uuid];
    apps.sort();
    assert_eq!(who, apps);
    assert!(all.iter().all(|e| e.kind == ContainerEventKind::Started));
}

#[tokio::test]
async fn failed_actions_report_an_error() {
    let h = harness();
    let s = spec();
    // Not on this host.
    h.act(&s, Some(1), ContainerAction::Pause).await;
    let ev = container_events(&h.settle().await);
    assert!(ev[0].error.as_deref().unwrap().contains("not on this host"));
    h.manager
        .handle(
            ComputeRequest::CreateCapsule {
                capsule: Box::new(s.clone()),
            },
            None,
        )
        .await
        .unwrap();
    h.settle().await;
    // An init container is not acted on.
    h.act(
        &s,
        Some(0),
        ContainerAction::Stop {
            timeout_seconds: None,
        },
    )
    .await;
    let ev = container_events(&h.settle().await);
    assert!(ev[0].error.as_deref().unwrap().contains("init container"));
    // Unpause a running container: nothing to do, success (idempotent).
    h.act(&s, Some(1), ContainerAction::Unpause).await;
    assert_eq!(container_events(&h.settle().await)[0].error, None);
    // Kill a stopped one: an error, in the container's name.
    h.act(
        &s,
        Some(1),
        ContainerAction::Stop {
            timeout_seconds: None,
        },
    )
    .await;
    h.settle().await;
    h.act(&s, Some(1), ContainerAction::Kill { signal: 9 })
        .await;
    let ev = container_events(&h.settle().await);
    assert_eq!(ev[0].kind, ContainerEventKind::Killed);
    assert_eq!(ev[0].error.as_deref(), Some("a is not running"));
}

#[tokio::test]
async fn calls_are_checked_again_and_answered_in_zuns_words() {
    let h = harness();
    let s = spec();
    let exec = |cmd: &[&str], interactive: bool| ContainerCall::Exec {
        command: cmd.iter().map(|s| s.to_string()).collect(),
        interactive,
        tty: interactive,
    };
    assert!(matches!(
        h.call(&s, 1, exec(&["true"], false)).await,
        ContainerReply::NotFound { .. }
    ));
    h.manager
        .handle(
            ComputeRequest::CreateCapsule {
                capsule: Box::new(s.clone()),
            },
            None,
        )
        .await
        .unwrap();
    h.settle().await;

    assert_eq!(
        h.call(&s, 1, exec(&["echo", "hi"], false)).await,
        ContainerReply::Exec {
            output: "echo hi\n".into(),
            exit_code: 0
        }
    );
    let ev = container_events(&h.settle().await);
    assert_eq!(ev[0].kind, ContainerEventKind::Exec);
    assert_eq!(ev[0].exit_code, Some(0));
    assert_eq!(ev[0].request_id.as_deref(), Some("req-2"));

    for bad in [
        exec(&[], false),
        exec(&[""], false),
        ContainerCall::Exec {
            command: vec!["x".into(); 257],
            interactive: false,
            tty: false,
        },
        ContainerCall::Top {
            ps_args: Some("-ef; rm -rf /".into()),
        },
        ContainerCall::GetArchive {
            path: "relative".into(),
        },
    ] {
        assert!(
            matches!(
                h.call(&s, 1, bad.clone()).await,
                ContainerReply::Invalid { .. }
            ),
            "{bad:?}"
        );
    }

    match h.call(&s, 1, exec(&["sh"], true)).await {
        ContainerReply::ExecSession { exec_id, stream } => {
            assert!(stream.address.starts_with("127.0.0.1:"));
            assert!(stream.grant.len() >= 43);
            assert!(stream.expires_at > chrono::Utc::now());
            let resize = ContainerCall::ExecResize {
                exec_id,
                width: 80,
                height: 24,
            };
            assert_eq!(h.call(&s, 1, resize).await, ContainerReply::Done);
        }
        other => panic!("{other:?}"),
    }
    let unknown = ContainerCall::ExecResize {
        exec_id: Uuid::new_v4(),
        width: 80,
        height: 24,
    };
    assert!(matches!(
        h.call(&s, 1, unknown).await,
        ContainerReply::NotFound { .. }
    ));

    // Stopped: exec, top and stats are refused as Zun refuses them.
    h.act(
        &s,
        Some(1),
        ContainerAction::Stop {
            timeout_seconds: None,
        },
    )
    .await;
    h.settle().await;
    let uuid = s.containers[1].uuid;
    assert_eq!(
        h.call(&s, 1, exec(&["true"], false)).await,
        ContainerReply::Conflict {
            message: format!("Cannot execute container {uuid} in Stopped state")
        }
    );
    assert_eq!(
        h.call(&s, 1, ContainerCall::Stats).await,
        ContainerReply::Conflict {
            message: format!("Cannot stats container {uuid} in Stopped state")
        }
    );
    // The other container still answers.
    assert!(matches!(
        h.call(&s, 2, ContainerCall::Top { ps_args: None }).await,
        ContainerReply::Top { .. }
    ));
}

#[tokio::test]
async fn every_action_delivered_twice_ends_the_same_and_succeeds_twice() {
    let h = harness();
    let s = spec();
    h.manager
        .handle(
            ComputeRequest::CreateCapsule {
                capsule: Box::new(s.clone()),
            },
            None,
        )
        .await
        .unwrap();
    h.settle().await;
    let a = s.containers[1].uuid;
    for (action, kind, status) in [
        (
            ContainerAction::Pause,
            ContainerEventKind::Paused,
            CapsuleStatus::Paused,
        ),
        (
            ContainerAction::Unpause,
            ContainerEventKind::Unpaused,
            CapsuleStatus::Running,
        ),
        (
            ContainerAction::Kill { signal: 10 },
            ContainerEventKind::Killed,
            CapsuleStatus::Running,
        ),
        (
            ContainerAction::Restart {
                timeout_seconds: Some(0),
            },
            ContainerEventKind::Started,
            CapsuleStatus::Running,
        ),
        (
            ContainerAction::Stop {
                timeout_seconds: Some(0),
            },
            ContainerEventKind::Stopped,
            CapsuleStatus::Stopped,
        ),
        (
            ContainerAction::Start,
            ContainerEventKind::Started,
            CapsuleStatus::Running,
        ),
    ] {
        for delivery in 1..=2 {
            h.act(&s, Some(1), action.clone()).await;
            let got = h.settle().await;
            let what = format!("{action:?}, delivery {delivery}");
            // The state the action ended in is reported each time, then its one event.
            assert_eq!(container_status(&got, a), Some(status), "{what}");
            assert_eq!(
                container_status(&got, s.containers[2].uuid),
                Some(CapsuleStatus::Running),
                "{what}: the other container is left alone"
            );
            let ev = container_events(&got);
            assert_eq!(ev.len(), 1, "{what}: {ev:?}");
            assert_eq!(ev[0].kind, kind, "{what}");
            assert_eq!(ev[0].error, None, "{what}");
            assert_eq!(ev[0].request_id.as_deref(), Some("req-1"), "{what}");
            let state_first = got
                .iter()
                .position(|e| matches!(e, ConductorEvent::CapsuleState { .. }))
                .unwrap();
            let event_at = got
                .iter()
                .position(|e| matches!(e, ConductorEvent::ContainerEvent { .. }))
                .unwrap();
            assert!(
                state_first < event_at,
                "{what}: the state precedes the event"
            );
        }
    }
    // Calls asked twice answer the same twice and change nothing.
    let top = ContainerCall::Top {
        ps_args: Some("aux".into()),
    };
    let first = h.call(&s, 1, top.clone()).await;
    assert!(matches!(first, ContainerReply::Top { .. }), "{first:?}");
    assert_eq!(h.call(&s, 1, top).await, first);
    let stats = h.call(&s, 1, ContainerCall::Stats).await;
    assert_eq!(h.call(&s, 1, ContainerCall::Stats).await, stats);
    assert!(
        container_events(&h.settle().await).is_empty(),
        "top and stats are not history"
    );
}
