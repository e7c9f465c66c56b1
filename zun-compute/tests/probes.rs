//! Health probes for real: root, the pod runtime with devstack's containerd and registry,
//! busybox capsules driven through the manager. A readiness probe flips the reported readiness
//! both ways; a failing liveness probe is recorded as `unhealthy` and the container is killed
//! and restarted by its policy; a startup probe holds readiness off until it passes; TCP and
//! HTTP probes reach the capsule's ports inside its network namespace.
//!
//! Each test has its own [`Host`] (state directory, bridge, no firewall), torn down when it
//! ends, pass or fail.

mod manager_support;
// Shared with container_ops.rs, which uses the rest of it.
#[allow(dead_code)]
mod ops_support;

use std::time::{Duration, Instant};

use capsule_types::rpc::{CapsuleSpec, ComputeRequest, ConductorEvent, ContainerEventKind};
use capsule_types::template::{Probe, ProbeAction};
use ops_support::{spec, Host};

fn probe(action: ProbeAction, failures: u32) -> Probe {
    Probe {
        action,
        initial_delay_seconds: 0,
        period_seconds: 1,
        timeout_seconds: 1,
        failure_threshold: failures,
        success_threshold: 1,
    }
}

fn exec(script: &str) -> ProbeAction {
    ProbeAction::Exec {
        command: vec!["sh".into(), "-c".into(), script.into()],
    }
}

/// The readiness of container `c` as the manager reports it now.
async fn reported_ready(h: &Host, s: &CapsuleSpec, c: usize) -> Option<bool> {
    h.manager
        .handle(
            ComputeRequest::SyncCapsules {
                capsules: vec![s.uuid],
            },
            None,
        )
        .await
        .unwrap();
    // The bus delivers the report a moment later.
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.events
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|e| match e {
            ConductorEvent::CapsuleState { state, .. } if state.capsule == s.uuid => state
                .containers
                .iter()
                .find(|x| x.uuid == s.containers[c].uuid)
                .map(|x| x.ready),
            _ => None,
        })?
}

async fn wait_ready(h: &Host, s: &CapsuleSpec, c: usize, want: bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = reported_ready(h, s, c).await;
        if now == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "container {c} never reported ready={want} (last {now:?})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn restart_count(h: &Host, s: &CapsuleSpec, c: usize) -> u32 {
    let state = h.manager.runtime().inspect(s).await.unwrap().unwrap();
    state
        .containers
        .iter()
        .find(|x| x.uuid == s.containers[c].uuid)
        .map_or(0, |x| x.restart_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_flips_both_ways_and_a_failing_liveness_probe_restarts_the_container() {
    let h = Host::start().await;
    let mut s = spec(&[("app", "touch /tmp/live; exec sleep 3600")], None);
    s.template.containers[0].liveness_probe = Some(probe(exec("test -f /tmp/live"), 2));
    s.template.containers[0].readiness_probe = Some(probe(exec("test -f /tmp/ready"), 1));
    h.create(&s).await;

    wait_ready(&h, &s, 0, false, Duration::from_secs(5)).await;
    h.exec(&s, 0, "touch /tmp/ready").await;
    wait_ready(&h, &s, 0, true, Duration::from_secs(10)).await;
    h.exec(&s, 0, "rm /tmp/ready").await;
    wait_ready(&h, &s, 0, false, Duration::from_secs(10)).await;
    assert_eq!(restart_count(&h, &s, 0).await, 0, "healthy so far");

    // Liveness fails twice in a row: recorded, killed, restarted by the policy (Always).
    h.exec(&s, 0, "rm /tmp/live").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while restart_count(&h, &s, 0).await == 0 {
        assert!(Instant::now() < deadline, "never restarted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let unhealthy = h
        .events
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            ConductorEvent::ContainerEvent { happened, .. }
                if happened.kind == ContainerEventKind::Unhealthy =>
            {
                Some(happened.clone())
            }
            _ => None,
        })
        .expect("an unhealthy event");
    assert_eq!(unhealthy.container, s.containers[0].uuid);
    let why = unhealthy.error.unwrap_or_default();
    assert!(
        why.starts_with("Liveness probe failed 2 times in a row: command exited with code 1"),
        "{why}"
    );
    // The new start made /tmp/live again: it stays up.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(restart_count(&h, &s, 0).await, 1, "restarted once");
    h.delete_and_check(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_startup_probe_holds_readiness_off_and_network_probes_reach_the_capsule() {
    let h = Host::start().await;
    let mut s = spec(
        &[(
            "web",
            "mkdir -p /www && echo ok > /www/index.html && sleep 3 && \
             exec httpd -f -p 8080 -h /www",
        )],
        None,
    );
    let c = &mut s.template.containers[0];
    c.startup_probe = Some(probe(ProbeAction::TcpSocket { port: 8080 }, 30));
    c.readiness_probe = Some(probe(
        ProbeAction::HttpGet {
            path: "/index.html".into(),
            port: 8080,
            headers: vec![("X-Probe".into(), "1".into())],
        },
        1,
    ));
    // A port nothing listens on: alive only because the startup probe holds it off for 3 s.
    c.liveness_probe = Some(probe(ProbeAction::TcpSocket { port: 8080 }, 1));
    let started = Instant::now();
    h.create(&s).await;
    wait_ready(&h, &s, 0, true, Duration::from_secs(20)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "ready before the server listened"
    );
    assert_eq!(restart_count(&h, &s, 0).await, 0, "liveness held off");

    // The HTTP probe wants a 2xx: the page gone, the container is not ready.
    h.exec(&s, 0, "rm /www/index.html").await;
    wait_ready(&h, &s, 0, false, Duration::from_secs(10)).await;
    h.delete_and_check(&s).await;
}
