//! Unit tests of the probes' validation.

use super::*;
use serde_json::{json, Value};

fn parse(probes: Value) -> Result<ContainerSpec, Vec<String>> {
    let mut c = json!({"image": "busybox"});
    for (k, v) in probes.as_object().unwrap() {
        c[k] = v.clone();
    }
    let t = json!({"kind": "capsule", "metadata": {}, "spec": {"containers": [c]}});
    parse_template(&t, &Limits::default())
        .map(|mut t| t.containers.remove(0))
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn the_three_handlers_with_kubernetes_defaults_and_given_timing() {
    let c = parse(json!({
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}},
        "readinessProbe": {"httpGet": {"path": "/ready?x=1", "port": "8080",
            "httpHeaders": [{"name": "X-Probe", "value": "yes"}]},
            "periodSeconds": 2, "successThreshold": 2, "failureThreshold": 1},
        "startupProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 5,
            "timeoutSeconds": 3},
    }))
    .unwrap();
    let l = c.liveness_probe.unwrap();
    assert_eq!(
        l.action,
        ProbeAction::Exec {
            command: vec!["cat".into(), "/tmp/healthy".into()]
        }
    );
    assert_eq!(
        (l.initial_delay_seconds, l.period_seconds, l.timeout_seconds),
        (0, 10, 1)
    );
    assert_eq!((l.failure_threshold, l.success_threshold), (3, 1));
    let r = c.readiness_probe.unwrap();
    assert_eq!(
        r.action,
        ProbeAction::HttpGet {
            path: "/ready?x=1".into(),
            port: 8080,
            headers: vec![("X-Probe".into(), "yes".into())]
        }
    );
    assert_eq!(
        (r.period_seconds, r.success_threshold, r.failure_threshold),
        (2, 2, 1)
    );
    let s = c.startup_probe.unwrap();
    assert_eq!(s.action, ProbeAction::TcpSocket { port: 80 });
    assert_eq!((s.initial_delay_seconds, s.timeout_seconds), (5, 3));
    let plain = parse(json!({})).unwrap();
    assert!(plain.liveness_probe.is_none() && plain.readiness_probe.is_none());
}

#[test]
fn bad_probes_are_refused_naming_the_field() {
    let p = "spec.containers[0]";
    for (probes, want) in [
        (json!({"livenessProbe": {}}), format!("{p}.livenessProbe: must have one of exec, httpGet or tcpSocket")),
        (
            json!({"livenessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 1}}}),
            format!("{p}.livenessProbe: must have only one of exec, httpGet or tcpSocket"),
        ),
        (json!({"livenessProbe": {"exec": {"command": []}}}), format!("{p}.livenessProbe.exec.command: must name a command")),
        (json!({"livenessProbe": {"tcpSocket": {"port": 0}}}), format!("{p}.livenessProbe.tcpSocket.port: must be 1..65535")),
        (
            json!({"livenessProbe": {"tcpSocket": {"port": 80, "host": "169.254.169.254"}}}),
            format!("{p}.livenessProbe.tcpSocket.host: is not supported: a probe always targets its own capsule"),
        ),
        (
            json!({"readinessProbe": {"httpGet": {"port": 80, "scheme": "HTTPS"}}}),
            format!("{p}.readinessProbe.httpGet.scheme: must be HTTP (HTTPS probes are not supported)"),
        ),
        (json!({"readinessProbe": {"httpGet": {"path": "/"}}}), format!("{p}.readinessProbe.httpGet.port: is a required property")),
        (
            json!({"startupProbe": {"tcpSocket": {"port": 80}, "successThreshold": 2}}),
            format!("{p}.startupProbe.successThreshold: must be 1 for a liveness or startup probe"),
        ),
        (
            json!({"livenessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 0}}),
            format!("{p}.livenessProbe.periodSeconds: must be 1..3600 (seconds)"),
        ),
        (
            json!({"livenessProbe": {"tcpSocket": {"port": 80}, "grpc": {"port": 80}}}),
            format!("{p}.livenessProbe.grpc: unexpected property"),
        ),
        (json!({"livenessProbe": "yes"}), format!("{p}.livenessProbe: must be an object (got string)")),
    ] {
        let errors = parse(probes.clone()).unwrap_err();
        assert!(
            errors.iter().any(|e| e == &want),
            "{probes}: {errors:?}, want {want}"
        );
    }
    let header = parse(json!({"readinessProbe": {"httpGet": {"port": 80,
        "path": "/a b", "httpHeaders": [{"name": "Bad Header", "value": "x"}]}}}))
    .unwrap_err();
    assert!(
        header.iter().any(|e| e.contains("httpGet.path")),
        "{header:?}"
    );
    assert!(
        header.iter().any(|e| e.contains("httpHeaders[0].name")),
        "{header:?}"
    );
}

#[test]
fn init_containers_take_no_probes() {
    let t = json!({"kind": "capsule", "metadata": {}, "spec": {
        "initContainers": [{"image": "busybox", "readinessProbe": {"tcpSocket": {"port": 80}}}],
        "containers": [{"image": "busybox"}]}});
    let e: Vec<String> = parse_template(&t, &Limits::default())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        ["spec.initContainers[0].readinessProbe: is not allowed on an init container"]
    );
}
