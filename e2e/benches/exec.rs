//! Exec benchmark on the real runtime: a non-interactive exec round trip through the whole
//! path (`POST /v1/containers/{uuid}/execute?run=true` -> API -> broker -> agent -> shim -> a
//! process in the container -> its output and exit code back in the HTTP answer), and
//! `GET …/stats` (the container's cgroup and the capsule's network namespace, read on the
//! host), p50/p99 of each; then the same `cat /etc/hostname` by `podman exec` and
//! `podman stats --no-stream` of the same image in the same run, with the ratio. The
//! container is the pod benchmark's (busybox in a 2-container capsule with a published port).
//! Figures go to `bench/out/exec.json` for `bench-report`. Run it with
//! `devstack/bench.sh exec`.

#[allow(dead_code)] // The pod benchmark uses the rest of it; this one only runs podman.
#[path = "support/podman.rs"]
mod podman;

use std::process::Command;
use std::time::{Duration, Instant};

use bench::{percentile_ms, print_latency as report, Figures};
use e2e::pod::PodHost;
use e2e::{Stack, ADMIN};
use podman::Podman;
use serde_json::{json, Value};
use test_support::{env_or, free_port};

const ROUNDS: usize = 200;
const WARMUP: usize = 10;

/// `ROUNDS` timings of `op` after `WARMUP` untimed ones.
async fn timed<F, Fut>(mut op: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS + WARMUP {
        let t = Instant::now();
        op().await;
        if i >= WARMUP {
            out.push(t.elapsed());
        }
    }
    out
}

fn p50(d: &[Duration]) -> f64 {
    let mut d = d.to_vec();
    d.sort();
    percentile_ms(&d, 0.5)
}

/// The same as `timed`, for a blocking `op` (podman's CLI).
fn timed_blocking(mut op: impl FnMut()) -> Vec<Duration> {
    let mut out = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS + WARMUP {
        let t = Instant::now();
        op();
        if i >= WARMUP {
            out.push(t.elapsed());
        }
    }
    out
}

/// podman's exec and stats of one busybox container in a pod shaped like ours; `None` without
/// podman.
fn podman_side(registry: &str) -> Option<(Vec<Duration>, Vec<Duration>)> {
    let pm = Podman::new(registry)?;
    let pod = format!("exec-bench-{}", std::process::id());
    pm.create_pod(&pod, free_port());
    let ids = pm.run(&["ps", "-q", "--no-trunc", "--filter", &format!("pod={pod}")]);
    let infra = pm.run(&["pod", "inspect", &pod, "--format", "{{.InfraContainerID}}"]);
    let id = ids
        .split_whitespace()
        .find(|id| *id != infra.trim())
        .expect("a busybox container in the pod")
        .to_owned();
    let hostname = pm.run(&["exec", &id, "cat", "/etc/hostname"]);
    assert!(!hostname.trim().is_empty(), "podman exec printed nothing");
    let exec = timed_blocking(|| {
        pm.run(&["exec", &id, "cat", "/etc/hostname"]);
    });
    let stats = timed_blocking(|| {
        let out = pm.run(&["stats", "--no-stream", "--format", "json", &id]);
        assert!(out.contains("mem_usage"), "podman stats: {out}");
    });
    pm.remove_pod(&pod);
    Some((exec, stats))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let registry = env_or("ZUN_TEST_REGISTRY", "127.0.0.1:5100");
    let stack = Stack::start_with(60).await;
    let host = PodHost::start(&stack, "bench-exec").await;
    let template = json!({"kind": "capsule", "metadata": {"name": "exec-bench"},
    "spec": {"containers": [
        {"image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"],
         "ports": [{"containerPort": 8080, "hostPort": free_port()}]},
        {"image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}
    ]}});
    let uuid = stack.create_template(ADMIN, &template).await;
    let capsule = stack
        .wait_status(&uuid, "Running", Duration::from_secs(120))
        .await;
    let container = capsule["containers"][0]["uuid"]
        .as_str()
        .expect("the capsule's first container")
        .to_owned();
    let hostname = capsule["containers"][0]["hostname"].clone();

    // What `zun exec C "cat /etc/hostname"` sends (zunclient quotes the command).
    let exec_path = format!(
        "/v1/containers/{container}/execute?run=True&interactive=False&command=%22cat%20%2Fetc%2Fhostname%22"
    );
    let stats_path = format!("/v1/containers/{container}/stats");
    let (status, first) = stack
        .call(ADMIN, reqwest::Method::POST, &exec_path, None)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["exit_code"], 0, "{first}");
    let output = first["output"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(!output.is_empty(), "exec printed nothing: {first}");
    if let Some(h) = hostname.as_str() {
        assert_eq!(output, h, "the capsule's hostname");
    }
    let exec = timed(|| async {
        let (status, body) = stack
            .call(ADMIN, reqwest::Method::POST, &exec_path, None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["output"].as_str().map(str::trim),
            Some(output.as_str())
        );
    })
    .await;
    let stats = timed(|| async {
        let (status, body): (u16, Value) = stack
            .call(ADMIN, reqwest::Method::GET, &stats_path, None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("MEM USAGE(MiB)").is_some(), "{body}");
    })
    .await;
    assert_eq!(stack.delete_as(ADMIN, &uuid).await, 204);
    stack.wait_gone(&uuid, Duration::from_secs(120)).await;
    let left = host.leftovers(&uuid);
    assert!(left.is_empty(), "left on the host: {left:#?}");
    drop(host);
    stack.stop().await;

    let mut f = Figures::new("exec");
    let runtime = Command::new("runc").arg("--version").output();
    let runtime = runtime.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .map(str::to_owned)
    });
    println!(
        "`cat /etc/hostname` in a busybox container of a running 2-container capsule, one host; \
         podman with {}:",
        runtime.ok().flatten().unwrap_or_else(|| "runc".into())
    );
    report("exec round trip (API -> host -> container)", &exec);
    report("stats (API -> host -> cgroup + netns)", &stats);
    f.latency("exec", "exec round trip, API -> container -> output", &exec);
    f.latency("stats", "stats round trip, API -> host -> cgroup", &stats);
    if let Some((p_exec, p_stats)) = podman_side(&registry) {
        report("podman exec", &p_exec);
        report("podman stats --no-stream", &p_stats);
        f.latency("podman_exec", "podman exec", &p_exec);
        f.latency("podman_stats", "podman stats --no-stream", &p_stats);
        println!(
            "ratio podman / capsule service (p50): exec {:.1}x, stats {:.1}x",
            p50(&p_exec) / p50(&exec),
            p50(&p_stats) / p50(&stats)
        );
    }
    f.save().expect("bench/out/exec.json");
}
