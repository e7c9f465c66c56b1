//! What health probes cost the host: 100 running capsules on a real pod agent, first without
//! probes, then with one probe each every second (exec, the costly kind: a process started in
//! the container through its shim; then TCP), and the CPU the agent and the shims used over
//! the same window in each case, from `/proc/<pid>/stat`; the host's whole CPU beside it.
//! Podman runs health checks from systemd timers (absent here), each a `podman healthcheck
//! run`; the same run measures what one such check costs, and what 100 a second would.
//! Figures go to `bench/out/probes.json` for `bench-report`. Run it with
//! `devstack/bench.sh probes`.

#[allow(dead_code)] // The pod benchmark uses the rest of it.
#[path = "support/podman.rs"]
mod podman;

use std::time::{Duration, Instant};

use bench::Figures;
use e2e::pod::PodHost;
use e2e::{Stack, ADMIN};
use nix::sys::resource::{getrusage, UsageWho};
use serde_json::{json, Value};
use test_support::env_or;

/// Capsules probed at once.
const CAPSULES: usize = 100;
/// The window CPU is measured over.
const WINDOW: Duration = Duration::from_secs(30);
/// podman health checks timed.
const PODMAN_CHECKS: usize = 20;

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// CPU time (user + system) of process `pid`, seconds; 0 when it is gone.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    (field(11) + field(12)) / ticks_per_second()
}

/// Busy CPU time of the whole host, seconds (all CPUs).
fn host_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = cpu.get(3).copied().unwrap_or(0.0) + cpu.get(4).copied().unwrap_or(0.0);
    (cpu.iter().sum::<f64>() - idle) / ticks_per_second()
}

/// The capsules' shims' pids.
fn shims(host: &PodHost, uuids: &[String]) -> Vec<u32> {
    uuids
        .iter()
        .filter_map(|u| {
            std::fs::read_to_string(host.capsule_dir(u).join(zun_compute::shim::PID_FILE))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .collect()
}

/// CPU percent of one CPU: (agent, shims, whole host) over `WINDOW`.
async fn measure(host: &PodHost, uuids: &[String]) -> (f64, f64, f64) {
    let agent = host.compute.pid().expect("the agent runs");
    let shim_pids = shims(host, uuids);
    assert_eq!(shim_pids.len(), uuids.len(), "every capsule has a shim");
    let sum = |pids: &[u32]| pids.iter().map(|p| cpu_of(*p)).sum::<f64>();
    let (a0, s0, h0) = (cpu_of(agent), sum(&shim_pids), host_busy());
    let t0 = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let wall = t0.elapsed().as_secs_f64();
    let (a1, s1, h1) = (cpu_of(agent), sum(&shim_pids), host_busy());
    let pct = |d: f64| d / wall * 100.0;
    (pct(a1 - a0), pct(s1 - s0), pct(h1 - h0))
}

/// `CAPSULES` capsules of one sleeping busybox container with `probe` (if any), Running.
async fn create_all(stack: &Stack, prefix: &str, probe: Option<Value>) -> Vec<String> {
    let mut uuids = Vec::new();
    for i in 0..CAPSULES {
        // Small requests, so that 100 fit the agent's 8 GiB and 2 CPUs.
        let mut c = json!({"image": "busybox", "imagePullPolicy": "IfNotPresent",
                           "command": ["httpd", "-f", "-p", "8080"],
                           "resources": {"requests": {"cpu": 0.1, "memory": 32}}});
        if let Some(p) = &probe {
            c["livenessProbe"] = p.clone();
        }
        let t = json!({"kind": "capsule", "metadata": {"name": format!("{prefix}{i}")},
                       "spec": {"containers": [c]}});
        uuids.push(stack.create_template(ADMIN, &t).await);
    }
    for u in &uuids {
        stack
            .wait_status(u, "Running", Duration::from_secs(300))
            .await;
    }
    uuids
}

async fn delete_all(stack: &Stack, host: &PodHost, uuids: &[String]) {
    for u in uuids {
        assert_eq!(stack.delete_as(ADMIN, u).await, 204);
    }
    for u in uuids {
        stack.wait_gone(u, Duration::from_secs(300)).await;
        let left = host.leftovers(u);
        assert!(left.is_empty(), "left on the host: {left:#?}");
    }
}

/// CPU seconds one `podman healthcheck run` takes (the podman process and what it starts),
/// and its wall time; `None` without podman.
fn podman_side(registry: &str) -> Option<(f64, f64)> {
    let pm = podman::Podman::new(registry)?;
    let name = format!("probe-bench-{}", std::process::id());
    let image = format!("{registry}/library/busybox:latest");
    pm.run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "true",
        "--health-interval",
        "disable",
        &image,
        "sleep",
        "3600",
    ]);
    pm.run(&["healthcheck", "run", &name]);
    let before = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let t0 = Instant::now();
    for _ in 0..PODMAN_CHECKS {
        pm.run(&["healthcheck", "run", &name]);
    }
    let wall = t0.elapsed().as_secs_f64() / PODMAN_CHECKS as f64;
    let after = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let secs = |r: &nix::sys::resource::Usage| {
        let (u, s) = (r.user_time(), r.system_time());
        u.tv_sec() as f64 + u.tv_usec() as f64 / 1e6 + s.tv_sec() as f64 + s.tv_usec() as f64 / 1e6
    };
    let cpu = (secs(&after) - secs(&before)) / PODMAN_CHECKS as f64;
    pm.run(&["rm", "-f", "-t", "0", &name]);
    Some((cpu, wall))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let registry = env_or("ZUN_TEST_REGISTRY", "127.0.0.1:5100");
    let stack = Stack::start_with(60).await;
    let host = PodHost::start(&stack, "bench-probes").await;
    let mut f = Figures::new("probes");
    println!(
        "{CAPSULES} capsules of one busybox container, CPU over {} s, percent of one CPU:",
        WINDOW.as_secs()
    );
    let cases = [
        ("none", "no probes", None),
        (
            "exec",
            "an exec liveness probe each, every 1 s",
            Some(json!({"exec": {"command": ["true"]}, "periodSeconds": 1})),
        ),
        (
            "tcp",
            "a TCP liveness probe each, every 1 s",
            Some(json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1})),
        ),
    ];
    let (mut baseline, mut host_baseline) = (0.0, 0.0);
    for (key, what, probe) in cases {
        let uuids = create_all(&stack, key, probe).await;
        let (agent, shims, whole) = measure(&host, &uuids).await;
        let cost = agent + shims;
        println!(
            "  {what:<40} agent {agent:5.1} %  shims {shims:5.1} %  (agent + shims {cost:5.1} %)  whole host {whole:5.1} %"
        );
        // % of one CPU over 100 probes a second -> ms of CPU per probe.
        let per_probe = |pct: f64| pct.max(0.0) / 100.0 * 1000.0 / CAPSULES as f64;
        if key == "none" {
            (baseline, host_baseline) = (cost, whole);
        } else {
            let per = per_probe(cost - baseline);
            let host_per = per_probe(whole - host_baseline);
            println!(
                "    {:<38} {per:.2} ms of CPU per probe (agent + shim), {host_per:.2} ms (whole host)",
                ""
            );
            f.value(
                &format!("{key}_host_cpu_per_probe"),
                &format!("{what}: whole host CPU per probe"),
                host_per,
                "ms",
            );
            f.value(
                &format!("{key}_cpu_per_probe"),
                &format!("{what}: agent + shim CPU per probe"),
                per,
                "ms",
            );
        }
        f.value(
            &format!("{key}_agent_shims_cpu"),
            &format!("{what}: agent + shims CPU"),
            cost,
            "%",
        );
        f.value(
            &format!("{key}_host_cpu"),
            &format!("{what}: whole host CPU"),
            whole,
            "%",
        );
        // No probe failed: nothing was restarted.
        for u in &uuids {
            let c = stack
                .wait_status(u, "Running", Duration::from_secs(5))
                .await;
            assert_eq!(c["containers"][0]["restart_count"], 0, "{c}");
        }
        delete_all(&stack, &host, &uuids).await;
    }
    drop(host);
    stack.stop().await;
    if let Some((cpu, wall)) = podman_side(&registry) {
        let ms = cpu * 1000.0;
        println!(
            "podman healthcheck run (podman's checks run from systemd timers, absent here): \
             {ms:.1} ms of CPU and {:.0} ms wall per check; 100 a second would take {:.0} % of one CPU",
            wall * 1000.0,
            ms * 100.0 / 10.0
        );
        f.value(
            "podman_cpu_per_check",
            "podman healthcheck run: CPU per check",
            ms,
            "ms",
        );
    }
    f.save().expect("bench/out/probes.json");
}
