//! The exposition of the agent's metrics, checked with the OpenMetrics parser the tests share.

use std::time::Duration;

use test_support::openmetrics::{find, samples};
use uuid::Uuid;

use super::*;
use crate::runtime::{CapsuleUsage, ContainerUsage};

fn snapshot(capsule: Uuid, container: Uuid) -> Snapshot {
    Snapshot {
        capsules: vec![CapsuleUsage {
            capsule,
            network_rx_bytes: 2000,
            network_tx_bytes: 3000,
            containers: vec![ContainerUsage {
                container,
                running: true,
                cpu_seconds: 1.5,
                memory_working_set_bytes: 4096,
                memory_limit_bytes: 1 << 30,
                restarts: 2,
                oom_kills: 1,
            }],
        }],
        bus: Some(rpc::AmqpStats {
            connections: 1,
            publish_attempts: 7,
            publishes_confirmed: 6,
        }),
    }
}

#[test]
fn the_host_figures_and_the_agents_own_counters_are_exposed() {
    let (capsule, container) = (Uuid::new_v4(), Uuid::new_v4());
    let m = metrics();
    m.rpc_handled("create_capsule", "ack");
    m.reconcile(true);
    m.heartbeat(false);
    m.step("create", "network", true, Duration::from_millis(30));
    m.tool("nft", "apply", false, Duration::from_millis(3));
    let text = m.render(snapshot(capsule, container));
    let parsed = samples(&text);
    let value = |name: &str, labels: &[(&str, &str)]| {
        find(&parsed, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    let (c, k) = (capsule.to_string(), container.to_string());
    let ck = [("capsule", c.as_str()), ("container", k.as_str())];
    assert_eq!(value("zun_compute_container_cpu_seconds_total", &ck), 1.5);
    assert_eq!(
        value("zun_compute_container_memory_working_set_bytes", &ck),
        4096.0
    );
    assert_eq!(
        value("zun_compute_container_memory_limit_bytes", &ck),
        f64::from(1u32 << 30)
    );
    assert_eq!(value("zun_compute_container_running", &ck), 1.0);
    assert_eq!(value("zun_compute_container_restarts_total", &ck), 2.0);
    assert_eq!(value("zun_compute_container_oom_kills_total", &ck), 1.0);
    let cl = [("capsule", c.as_str())];
    assert_eq!(
        value("zun_compute_capsule_network_receive_bytes_total", &cl),
        2000.0
    );
    assert_eq!(
        value("zun_compute_capsule_network_transmit_bytes_total", &cl),
        3000.0
    );
    assert_eq!(value("zun_compute_shims", &[]), 1.0);
    assert_eq!(
        value("zun_compute_amqp_publishes_confirmed_total", &[]),
        6.0
    );
    assert!(
        value(
            "zun_compute_rpc_handled_total",
            &[("method", "create_capsule"), ("outcome", "ack")]
        ) >= 1.0
    );
    assert!(value("zun_compute_reconcile_passes_total", &[("outcome", "ok")]) >= 1.0);
    assert!(value("zun_compute_heartbeats_total", &[("outcome", "failed")]) >= 1.0);
    assert!(
        value(
            "zun_compute_capsule_step_duration_seconds_count",
            &[("op", "create"), ("step", "network"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert!(
        value(
            "zun_compute_tool_duration_seconds_count",
            &[("tool", "nft"), ("command", "apply"), ("outcome", "failed")]
        ) >= 1.0
    );

    // A capsule that is gone is gone from the next scrape.
    let text = m.render(Snapshot::default());
    assert!(!text.contains(&c), "{text}");
    let parsed = samples(&text);
    assert_eq!(find(&parsed, "zun_compute_shims", &[]), Some(0.0));
    assert_eq!(
        find(&parsed, "zun_compute_amqp_connections_total", &[]),
        None
    );
}
