//! Pod benchmark on the real runtime: a 2-container busybox capsule with one published port,
//! image cached, created through the whole path (HTTP create -> database -> outbox -> broker
//! -> agent -> images, netavark, shim -> report -> conductor -> database says Running) and
//! deleted until its row is gone; p50/p99 of each, sequentially. The same pod made with
//! Debian's podman (`podman pod create` + two `podman run --pod`, `podman pod rm`) in the same
//! run, with the ratio. Then zun-compute's idle RSS and the host memory each capsule costs
//! (its shim and pause processes). Run it with `devstack/bench.sh pod`.
//!
//! The capsules are created as admin, because only admins may set `imagePullPolicy` (Zun's
//! policy); `IfNotPresent` keeps the registry out of the measured path, as podman's cached
//! image does.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pod::PodHost;
use common::{Stack, ADMIN};
use serde_json::json;
use tempest::free_port;

const ROUNDS: usize = 40;
const WARMUP: usize = 3;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn report(what: &str, mut d: Vec<Duration>) -> f64 {
    d.sort();
    let p50 = pct(&d, 0.5);
    println!(
        "{what:<44} p50 {p50:8.1} ms   p99 {:8.1} ms   min {:7.1}   max {:7.1}   (n={})",
        pct(&d, 0.99),
        pct(&d, 0.0),
        pct(&d, 1.0),
        d.len()
    );
    p50
}

/// Waits (polling the database) until capsule `uuid` is Running, or gone when `gone`.
async fn wait_db(stack: &Stack, uuid: &str, gone: bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rec = stack
            .state
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

/// `DELETE /v1/capsules/{uuid}` as the admin who made it.
async fn delete_capsule(stack: &Stack, uuid: &str) -> u16 {
    let path = format!("/v1/capsules/{uuid}");
    stack
        .call(ADMIN, reqwest::Method::DELETE, &path, None)
        .await
        .0
}

/// Private memory (KiB) of process `pid`: what it alone costs the host.
fn private_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("Private_Clean:") || l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn netavark_bin() -> String {
    std::env::var("ZUN_TEST_NETAVARK").unwrap_or_else(|_| "/usr/lib/podman/netavark".into())
}

fn template(name: &str, port: u16) -> serde_json::Value {
    json!({"kind": "capsule", "metadata": {"name": name},
    "spec": {"containers": [
        {"image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"],
         "ports": [{"containerPort": 8080, "hostPort": port}]},
        {"image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}
    ]}})
}

/// Debian's podman with its own storage and config (runc, cgroupfs, lower ulimits), so it
/// touches nothing of the host's podman; it runs the same netavark binary and firewall driver
/// as the agent, so both pay the same for the network.
struct Podman {
    dir: PathBuf,
    firewall: Option<String>,
}

impl Podman {
    fn new() -> Option<Self> {
        if Command::new("podman").arg("--version").output().is_err() {
            println!("podman: not installed (devstack/stack.sh installs it); no comparison");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("capsule-bench-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let netavark = PathBuf::from(netavark_bin());
        let helpers = netavark.parent().expect("netavark's directory").display();
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n\
                 [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                 helper_binaries_dir = [\"{helpers}\", \"/usr/libexec/podman\", \"/usr/lib/podman\"]\n\
                 [network]\nnetwork_backend = \"netavark\"\n"
            ),
        )
        .unwrap();
        let firewall = std::env::var("ZUN_TEST_NETAVARK_FW").ok();
        Some(Self { dir, firewall })
    }

    fn command(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"));
        match &self.firewall {
            Some(fw) => c.env("NETAVARK_FW", fw),
            None => c.env_remove("NETAVARK_FW"),
        };
        c
    }

    fn run(&self, args: &[&str]) {
        let out = self.command().args(args).output().expect("podman runs");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command().args(["system", "reset", "--force"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn podman_rounds(registry: &str) -> Option<(Vec<Duration>, Vec<Duration>)> {
    let pm = Podman::new()?;
    let image = format!("{registry}/library/busybox:latest");
    pm.run(&["pull", "--quiet", "--tls-verify=false", &image]);
    let (mut create, mut delete) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS + WARMUP {
        let name = format!("bench-pod-{i}");
        let port = format!("{}:8080", free_port());
        let t = Instant::now();
        pm.run(&[
            "pod",
            "create",
            "--name",
            &name,
            "--share",
            "net,ipc,uts,pid",
            "-p",
            &port,
        ]);
        for _ in 0..2 {
            pm.run(&["run", "-d", "--pod", &name, &image, "sleep", "3600"]);
        }
        let made = t.elapsed();
        let t = Instant::now();
        pm.run(&["pod", "rm", "-f", "-t", "2", &name]);
        if i >= WARMUP {
            create.push(made);
            delete.push(t.elapsed());
        }
    }
    Some((create, delete))
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
        wait_db(stack, &uuid, false).await;
        let made = t.elapsed();
        let t = Instant::now();
        assert_eq!(delete_capsule(stack, &uuid).await, 204);
        wait_db(stack, &uuid, true).await;
        if i >= WARMUP {
            create.push(made);
            delete.push(t.elapsed());
        }
        let left = host.leftovers(&uuid);
        assert!(left.is_empty(), "{left:?}");
    }
    (create, delete)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let registry = std::env::var("ZUN_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5100".into());
    let stack = Stack::start_with(60).await;
    let host = PodHost::start(&stack, "bench").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let agent_pid = host.compute.pid().expect("agent runs");
    let idle_rss = rss_kib(agent_pid);

    // Sequential create -> Running and delete -> gone: first the only capsule on the host
    // (netavark makes the bridge and its network-wide rules for each create and removes them
    // with each delete), then beside a capsule that keeps the network up.
    let (create, delete) = rounds(&stack, &host, "b").await;
    let neighbour = stack
        .create_template(ADMIN, &template("neighbour", free_port()))
        .await;
    wait_db(&stack, &neighbour, false).await;
    let (create_n, delete_n) = rounds(&stack, &host, "n").await;
    assert_eq!(delete_capsule(&stack, &neighbour).await, 204);
    wait_db(&stack, &neighbour, true).await;

    // Host memory per capsule: 10 capsules running, their shims' and pauses' private memory.
    let mut uuids = Vec::new();
    for i in 0..10 {
        let uuid = stack
            .create_template(ADMIN, &template(&format!("m{i}"), free_port()))
            .await;
        wait_db(&stack, &uuid, false).await;
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
        assert_eq!(delete_capsule(&stack, uuid).await, 204);
    }
    for uuid in &uuids {
        wait_db(&stack, uuid, true).await;
    }

    let netavark = netavark_bin();
    let version = Command::new(&netavark).arg("--version").output();
    let version = version.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    println!(
        "2-container busybox capsule with a published port, image cached, one host; \
         {} ({netavark}), firewall driver {}:",
        version.unwrap_or_default(),
        std::env::var("ZUN_TEST_NETAVARK_FW").unwrap_or_else(|_| "netavark's default".into())
    );
    let ours = report("capsule create -> all Running (API path)", create);
    let ours_del = report("capsule delete -> gone (API path)", delete);
    report("  the same beside another capsule: create", create_n);
    report("  the same beside another capsule: delete", delete_n);
    if let Some((pc, pd)) = podman_rounds(&registry) {
        let theirs = report("podman pod create + 2 x run --pod", pc);
        let theirs_del = report("podman pod rm -f", pd);
        println!(
            "ratio podman / capsule service (p50): create {:.1}x, delete {:.1}x",
            theirs / ours,
            theirs_del / ours_del
        );
    }
    println!(
        "zun-compute RSS: idle {:.1} MiB, with 10 capsules {:.1} MiB",
        idle_rss as f64 / 1024.0,
        busy_rss as f64 / 1024.0
    );
    println!(
        "per capsule on the host (shim + pause): private {:.2} MiB, RSS {:.2} MiB",
        private as f64 / 10.0 / 1024.0,
        rss as f64 / 10.0 / 1024.0
    );
    drop(host);
    stack.stop().await;
}
