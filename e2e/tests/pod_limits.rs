//! A capsule's limits on a real pod host (API -> RabbitMQ -> zun-compute with the pod driver ->
//! containerd, netavark, a libcontainer shim): a container without requests gets the API's
//! default CPU and memory, shown in its view and enforced by its cgroup; every capsule's
//! cgroup has a number for `pids.max`; all capsules together are held below the host's memory
//! less the reserve, with the shims outside them; a container that fills its writable layer gets
//! `ENOSPC` there and nowhere else. Each test checks the host after its deletes and cleans up
//! what it finds even when it fails. Needs root and a running devstack.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::pod::PodHost;
use e2e::{Stack, DEMO};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(120);

fn container<'a>(capsule: &'a Value, name: &str) -> &'a Value {
    capsule["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {capsule}"))
}

/// The host-side name of a container: `c<uuid without dashes>`.
fn host_name(c: &Value) -> String {
    format!("c{}", c["uuid"].as_str().unwrap().replace('-', ""))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_and_the_pids_limit_are_in_the_view_and_the_cgroups() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "l1").await;
    let t = json!({"kind": "capsule", "metadata": {"name": "bare"},
        "spec": {"containers": [
            {"name": "bare", "image": "busybox", "command": ["sleep", "3600"]},
            {"name": "asks", "image": "busybox", "command": ["sleep", "3600"],
             "resources": {"requests": {"memory": 48, "cpu": 0.5}}}]}});
    let uuid = stack.create_template(DEMO, &t).await;
    let c = stack.wait_status(&uuid, "Running", LONG).await;
    // The view: Zun's default_cpu 1.0 and default_memory 512 for the container without
    // requests, the capsule their sum with the other's.
    let (bare, asks) = (container(&c, "bare"), container(&c, "asks"));
    assert_eq!(
        (&bare["cpu"], &bare["memory"]),
        (&json!(1.0), &json!("512"))
    );
    assert_eq!((&asks["cpu"], &asks["memory"]), (&json!(0.5), &json!("48")));
    assert_eq!((&c["cpu"], &c["memory"]), (&json!(1.5), &json!("560")));
    // The cgroups: the capsule's pids limit, each container's memory limit and CPU quota.
    let cg = |controller: &str, rest: &str| {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("capsule")
            .join(&uuid)
            .join(rest)
    };
    assert_eq!(read(&cg("pids", "pids.max")), "2048");
    for (c, bytes, quota) in [(bare, 512u64 << 20, 100_000), (asks, 48 << 20, 50_000)] {
        let name = host_name(c);
        let memory = read(&cg("memory", &format!("{name}/memory.limit_in_bytes")));
        assert_eq!(memory, bytes.to_string(), "{}", c["name"]);
        let period = read(&cg("cpu", &format!("{name}/cpu.cfs_period_us")));
        assert_eq!(period, "100000", "{}", c["name"]);
        let q = read(&cg("cpu", &format!("{name}/cpu.cfs_quota_us")));
        assert_eq!(q, quota.to_string(), "{}", c["name"]);
    }
    // The host's reserve: every capsule together may take the host's memory less 512 MiB,
    // and the shim (like the agent that started it) lives outside that subtree.
    let total = zun_compute::host::meminfo_mib();
    let all = read(Path::new(
        "/sys/fs/cgroup/memory/capsule/memory.limit_in_bytes",
    ));
    assert_eq!(all, ((total - 512) << 20).to_string());
    let shim = read(&host.capsule_dir(&uuid).join("shim.pid"));
    let cgroups = read(Path::new(&format!("/proc/{shim}/cgroup")));
    let memory = cgroups.lines().find(|l| l.contains(":memory:")).unwrap();
    assert!(
        !memory.contains(":/capsule"),
        "the shim is a capsule's: {memory}"
    );
    host.delete_and_check(&stack, &uuid).await;
    drop(host);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_fills_its_writable_layer_gets_enospc() {
    let stack = Stack::start().await;
    let host = PodHost::start_with(&stack, "l2", "[limits]\nwritable_layer_mib = 32\n").await;
    let t = json!({"kind": "capsule", "metadata": {"name": "filler"}, "restartPolicy": "Never",
        "spec": {"containers": [{"name": "filler", "image": "busybox", "command": ["sh", "-c",
            "dd if=/dev/zero of=/fill bs=1M count=64; echo dd-exit=$?; df -k /; sleep 3600"]}]}});
    let started = Instant::now();
    let uuid = stack.create_template(DEMO, &t).await;
    let c = stack.wait_status(&uuid, "Running", LONG).await;
    eprintln!(
        "create to Running with a 32 MiB layer: {:?}",
        started.elapsed()
    );
    let filler = container(&c, "filler")["uuid"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + LONG;
    let log = loop {
        let l = stack.container_logs(&filler).await;
        if l.contains("dd-exit=") || Instant::now() > deadline {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(log.contains("No space left on device"), "{log}");
    assert!(!log.contains("dd-exit=0"), "{log}");
    // The writes went to the capsule's layer: its file system is full, and it is mounted
    // from the layer's directory.
    let layer = host.layer_dir();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(&uuid) && l.contains(layer.to_str().unwrap())),
        "no layer of {uuid} mounted under {}",
        layer.display()
    );
    host.delete_and_check(&stack, &uuid).await;
    drop(host);
    stack.stop().await;
}
