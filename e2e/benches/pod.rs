//! Pod benchmark on the real runtime: a 2-container busybox capsule with one published port,
//! image cached, created through the whole path (HTTP create -> database -> outbox -> broker
//! -> agent -> images, netavark, shim -> report -> conductor -> database says Running) and
//! deleted until its row is gone; p50/p99 of each, one at a time, then 10 and 100 at once
//! (all must reach Running, none lost, and the host must be clean after). The same pod work
//! done by Debian's podman in the same run, with the ratio. Then zun-compute's idle RSS and the
//! host memory each capsule costs (its shim and pause processes) beside podman's (conmons and
//! infra). Figures go to `bench/out/pod.json` for `bench-report`. Run it with
//! `devstack/bench.sh pod`.
//!
//! The capsules are created as admin, because only admins may set `imagePullPolicy` (Zun's
//! policy); `IfNotPresent` keeps the registry out of the measured path, as podman's cached
//! image does.

#[path = "support/podman.rs"]
mod podman;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use bench::{percentile_ms, print_latency as report, Figures};
use e2e::pod::PodHost;
use e2e::{Stack, ADMIN};
use podman::{netavark_bin, private_kib, rss_kib, Podman};
use serde_json::json;
use test_support::{env_or, free_port};
use zun_api::state::AppState;

const ROUNDS: usize = 40;
const WARMUP: usize = 3;
/// Capsules created at once in the large burst.
const BURST: usize = 100;

/// Waits (polling the database) until capsule `uuid` is Running, or gone when `gone`.
async fn wait_db(state: &AppState, uuid: &str, gone: bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rec = state
            .db
            .capsule_by_uuid(&db::Scope::All, uuid)
            .await
            .expect("db");
        match (&rec, gone) {
            (None, true) => return,
            (Some(r), false) if r.capsule.status == "Running" => return,
            (Some(r), _) if r.capsule.status == "Error" => {
                panic!("capsule {uuid} failed: {:?}", r.capsule.status_reason)
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "capsule {uuid} never settled");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn template(name: &str, port: u16) -> serde_json::Value {
    json!({"kind": "capsule", "metadata": {"name": name},
    "spec": {"containers": [
        {"image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"],
         "ports": [{"containerPort": 8080, "hostPort": port}]},
        {"image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}
    ]}})
}

/// `ROUNDS` (after `WARMUP`) sequential creates until Running and deletes until gone; checks
/// the host after each delete.
async fn rounds(stack: &Stack, host: &PodHost, prefix: &str) -> (Vec<Duration>, Vec<Duration>) {
    let (mut create, mut delete) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS + WARMUP {
        let t = Instant::now();
        let uuid = stack
            .create_template(ADMIN, &template(&format!("{prefix}{i}"), free_port()))
            .await;
        wait_db(&stack.state, &uuid, false).await;
        let made = t.elapsed();
        let t = Instant::now();
        assert_eq!(stack.delete_as(ADMIN, &uuid).await, 204);
        wait_db(&stack.state, &uuid, true).await;
        if i >= WARMUP {
            create.push(made);
            delete.push(t.elapsed());
        }
        let left = host.leftovers(&uuid);
        assert!(left.is_empty(), "{left:?}");
    }
    (create, delete)
}

/// A request of the admin who makes the capsules (noauth headers), at the newest microversion.
fn as_admin(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("x-user-id", ADMIN.0)
        .header("x-project-id", ADMIN.1)
        .header("x-roles", ADMIN.2)
        .header("openstack-api-version", "container 1.40")
}

/// `n` distinct free host ports.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports = BTreeSet::new();
    while ports.len() < n {
        ports.insert(free_port());
    }
    ports.into_iter().collect()
}

/// What a burst measured.
struct Burst {
    /// Each capsule's create -> Running, from the start of the burst.
    create: Vec<Duration>,
    /// Wall time until the last was Running.
    wall: Duration,
    /// Each capsule's delete -> gone, from the start of the deletes.
    delete: Vec<Duration>,
}

/// `ports.len()` capsules created at once (one task each: POST, then poll until Running), then
/// deleted at once; every one must reach Running and then be gone, and the host must be clean.
async fn burst(stack: &Stack, host: &PodHost, prefix: &str, ports: &[u16]) -> Burst {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, port) in ports.iter().enumerate() {
        let (http, api, state) = (
            reqwest::Client::new(),
            stack.api.clone(),
            stack.state.clone(),
        );
        let body = json!({ "template": template(&format!("{prefix}{i}"), *port) });
        tasks.spawn(async move {
            let resp = as_admin(http.post(format!("{api}/v1/capsules")))
                .json(&body)
                .send()
                .await
                .expect("API answers");
            assert_eq!(resp.status().as_u16(), 202, "burst create {i}");
            let v: serde_json::Value = resp.json().await.expect("JSON");
            let uuid = v["uuid"].as_str().expect("uuid").to_owned();
            wait_db(&state, &uuid, false).await;
            (uuid, start.elapsed())
        });
    }
    let mut made = Vec::new();
    while let Some(done) = tasks.join_next().await {
        made.push(done.expect("burst create task"));
    }
    let wall = start.elapsed();
    let mut running = 0;
    for (uuid, _) in &made {
        let rec = stack.state.db.capsule_by_uuid(&db::Scope::All, uuid).await;
        running += usize::from(
            rec.expect("db")
                .is_some_and(|r| r.capsule.status == "Running"),
        );
    }
    assert_eq!(running, ports.len(), "all {} Running at once", ports.len());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (uuid, _) in &made {
        let (http, api, state, uuid) = (
            reqwest::Client::new(),
            stack.api.clone(),
            stack.state.clone(),
            uuid.clone(),
        );
        tasks.spawn(async move {
            let resp = as_admin(http.delete(format!("{api}/v1/capsules/{uuid}")))
                .send()
                .await
                .expect("API answers");
            assert_eq!(resp.status().as_u16(), 204, "burst delete {uuid}");
            wait_db(&state, &uuid, true).await;
            start.elapsed()
        });
    }
    let mut delete = Vec::new();
    while let Some(done) = tasks.join_next().await {
        delete.push(done.expect("burst delete task"));
    }
    for (uuid, _) in &made {
        let left = host.leftovers(uuid);
        assert!(
            left.is_empty(),
            "after the burst, capsule {uuid} left {left:?}"
        );
    }
    Burst {
        create: made.into_iter().map(|(_, d)| d).collect(),
        wall,
        delete,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let registry = env_or("ZUN_TEST_REGISTRY", "127.0.0.1:5100");
    let stack = Stack::start_with(60).await;
    let host = PodHost::start(&stack, "bench").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let agent_pid = host.compute.pid().expect("agent runs");
    let idle_rss = rss_kib(agent_pid);
    let mut figures = Figures::new("pod");

    // Sequential create -> Running and delete -> gone: first the only capsule on the host
    // (netavark makes the bridge and its network-wide rules for each create and removes them
    // with each delete), then beside a capsule that keeps the network up.
    let (create, delete) = rounds(&stack, &host, "b").await;
    let neighbour = stack
        .create_template(ADMIN, &template("neighbour", free_port()))
        .await;
    wait_db(&stack.state, &neighbour, false).await;
    let (create_n, delete_n) = rounds(&stack, &host, "n").await;
    assert_eq!(stack.delete_as(ADMIN, &neighbour).await, 204);
    wait_db(&stack.state, &neighbour, true).await;

    // Many at once: 10, then BURST.
    let small = burst(&stack, &host, "s", &free_ports(10)).await;
    let ports = free_ports(BURST);
    let large = burst(&stack, &host, "l", &ports).await;

    // Host memory per capsule: 10 capsules running, their shims' and pauses' private memory.
    let mut uuids = Vec::new();
    for i in 0..10 {
        let uuid = stack
            .create_template(ADMIN, &template(&format!("m{i}"), free_port()))
            .await;
        wait_db(&stack.state, &uuid, false).await;
        uuids.push(uuid);
    }
    let (mut private, mut rss) = (0u64, 0u64);
    for uuid in &uuids {
        let dir = host.capsule_dir(uuid);
        let shim: u32 = std::fs::read_to_string(dir.join("shim.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pause = zun_compute::shim::status(&dir)
            .await
            .ok()
            .and_then(|s| s.sandbox_pid)
            .and_then(|p| u32::try_from(p).ok());
        for pid in [Some(shim), pause].into_iter().flatten() {
            private += private_kib(pid);
            rss += rss_kib(pid);
        }
    }
    let busy_rss = rss_kib(agent_pid);
    for uuid in &uuids {
        assert_eq!(stack.delete_as(ADMIN, uuid).await, 204);
    }
    for uuid in &uuids {
        wait_db(&stack.state, uuid, true).await;
    }

    let netavark = netavark_bin();
    let version = Command::new(&netavark).arg("--version").output();
    let version = version.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    println!(
        "2-container busybox capsule with a published port, image cached, one host; \
         {} ({netavark}), firewall driver {}:",
        version.unwrap_or_default(),
        env_or("ZUN_TEST_NETAVARK_FW", "netavark's default")
    );
    let f = &mut figures;
    let per = |b: &Burst| b.wall.as_secs_f64() * 1e3 / b.create.len() as f64;
    for (key, what, d) in [
        (
            "create_seq",
            "capsule create -> all Running (API path)",
            &create,
        ),
        ("delete_seq", "capsule delete -> gone (API path)", &delete),
        (
            "create_beside",
            "  the same beside another capsule: create",
            &create_n,
        ),
        (
            "delete_beside",
            "  the same beside another capsule: delete",
            &delete_n,
        ),
        (
            "create_burst10",
            "10 at once: create -> Running",
            &small.create,
        ),
        (
            "delete_burst10",
            "10 at once: delete -> gone",
            &small.delete,
        ),
        (
            "create_burst100",
            "100 at once: create -> Running",
            &large.create,
        ),
        (
            "delete_burst100",
            "100 at once: delete -> gone",
            &large.delete,
        ),
    ] {
        report(what, d);
        f.latency(key, what, d);
    }
    println!(
        "wall time per capsule: 10 at once {:.1} ms, {BURST} at once {:.1} ms; all Running, none lost",
        per(&small),
        per(&large)
    );
    f.value(
        "burst10_per_capsule",
        "10 at once: wall time / 10",
        per(&small),
        "ms",
    );
    f.value(
        "burst100_per_capsule",
        "100 at once: wall time / 100",
        per(&large),
        "ms",
    );
    f.value(
        "burst100_running",
        "100 at once: capsules Running",
        large.create.len() as f64,
        "count",
    );
    let (idle, busy) = (idle_rss as f64 / 1024.0, busy_rss as f64 / 1024.0);
    let (private, rss) = (private as f64 / 10.0 / 1024.0, rss as f64 / 10.0 / 1024.0);
    println!("zun-compute RSS: idle {idle:.1} MiB, with 10 capsules {busy:.1} MiB");
    println!("per capsule on the host (shim + pause): private {private:.2} MiB, RSS {rss:.2} MiB");
    f.value("idle_rss", "zun-compute idle RSS", idle, "MiB");
    f.value("busy_rss", "zun-compute RSS with 10 capsules", busy, "MiB");
    f.value(
        "per_capsule_private",
        "shim + pause private memory per capsule",
        private,
        "MiB",
    );
    f.value(
        "per_capsule_rss",
        "shim + pause RSS per capsule",
        rss,
        "MiB",
    );
    drop(host);
    stack.stop().await;

    // podman, same work, same run (after ours, so neither pays for the other's processes).
    if let Some(pm) = Podman::new(&registry) {
        let p = pm.measure(ROUNDS, WARMUP, &ports);
        for (key, what, d) in [
            (
                "podman_create_seq",
                "podman pod create + 2 x run --pod",
                &p.create,
            ),
            ("podman_delete_seq", "podman pod rm -f", &p.delete),
            (
                "podman_create_burst100",
                "podman, 100 at once: create",
                &p.burst_create,
            ),
            (
                "podman_delete_burst100",
                "podman, 100 at once: pod rm -f",
                &p.burst_delete,
            ),
        ] {
            report(what, d);
            f.latency(key, what, d);
        }
        let wall = p.burst_wall.as_secs_f64() * 1e3 / ports.len() as f64;
        let mib = p.per_pod_private_kib / 1024.0;
        println!("podman, {BURST} at once: wall time per pod {wall:.1} ms");
        println!("podman per pod on the host (conmons + infra): private {mib:.2} MiB");
        f.value(
            "podman_burst100_per_capsule",
            "podman, 100 at once: wall time / 100",
            wall,
            "ms",
        );
        f.value(
            "podman_per_pod_private",
            "podman conmons + infra private memory per pod",
            mib,
            "MiB",
        );
        let ratio = |a: &[Duration], b: &[Duration]| {
            let (mut a, mut b) = (a.to_vec(), b.to_vec());
            a.sort();
            b.sort();
            percentile_ms(&a, 0.5) / percentile_ms(&b, 0.5)
        };
        println!(
            "ratio podman / capsule service (p50): create {:.1}x, delete {:.1}x",
            ratio(&p.create, &create),
            ratio(&p.delete, &delete)
        );
    }
    figures.save().expect("bench/out/pod.json");
}
