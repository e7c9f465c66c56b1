//! Real pods end to end: API -> RabbitMQ -> zun-compute with the pod driver -> containerd,
//! netavark and a libcontainer shim, with the images devstack seeds in its registry. Each test
//! checks the host afterwards (cgroups, network namespaces, mounts, shims) and cleans up what
//! it finds even when it fails. Needs root and a running devstack (containerd, registry).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Compute, Stack, ADMIN, DEMO};
use serde_json::{json, Value};
use zun_compute::config::{Config, DriverKind};

const LONG: Duration = Duration::from_secs(120);

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// A compute host running real pods, on its own bridge and subnet.
struct PodHost {
    compute: Compute,
    config: PathBuf,
    netns_dir: PathBuf,
    bridge: String,
}

impl PodHost {
    async fn start(stack: &Stack, host: &str) -> Self {
        let socket = env_or(
            "ZUN_TEST_CONTAINERD_SOCKET",
            "/opt/capsule/run/containerd/containerd.sock",
        );
        assert!(
            Path::new(&socket).exists(),
            "no containerd socket at {socket}: run devstack/stack.sh first"
        );
        let registry = env_or("ZUN_TEST_REGISTRY", "127.0.0.1:5100");
        let dir = stack.compute_dir(host);
        let certs = dir.join("certs.d/docker.io");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::write(
            certs.join("hosts.toml"),
            format!(
                "server = \"https://registry-1.docker.io\"\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..6];
        let bridge = format!("cpp{tag}");
        let octet = u8::from_str_radix(&tag[..2], 16).unwrap();
        let netns_dir = dir.join("netns");
        let toml = format!(
            "[runtime]\ndriver = \"pod\"\n\
             [pod]\nshim = \"{shim}\"\nstop_grace_seconds = 2\nstart_timeout_seconds = 120\n\
             [image]\ncontainerd_socket = \"{socket}\"\nnamespace = \"capsule-test\"\ncerts_dir = \"{certs}\"\n\
             [network]\nnetavark = \"{netavark}\"\nconfig_dir = \"{nv}\"\nnetwork_name = \"{bridge}\"\n\
             bridge = \"{bridge}\"\nsubnet = \"10.214.{octet}.0/24\"\nnetns_dir = \"{netns}\"\n",
            shim = env!("CARGO_BIN_EXE_capsule-shim"),
            certs = dir.join("certs.d").display(),
            netavark = env_or("ZUN_TEST_NETAVARK", "/usr/lib/podman/netavark"),
            nv = dir.join("netavark").display(),
            netns = netns_dir.display(),
        );
        let compute = stack.compute_with(host, 8192, &toml).await;
        let config = dir.join("zun-compute.toml");
        PodHost {
            compute,
            config,
            netns_dir,
            bridge,
        }
    }

    fn capsule_dir(&self, uuid: &str) -> PathBuf {
        self.compute.state_dir.join("capsules").join(uuid)
    }

    /// What of `uuid` is left on the host, in words (empty: nothing).
    fn leftovers(&self, uuid: &str) -> Vec<String> {
        let mut left = Vec::new();
        if self.capsule_dir(uuid).exists() {
            left.push(format!("{}", self.capsule_dir(uuid).display()));
        }
        if self.netns_dir.join(format!("capsule-{uuid}")).exists() {
            left.push(format!("netns capsule-{uuid}"));
        }
        for sub in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = sub.path().join("capsule").join(uuid);
            if p.exists() {
                left.push(format!("cgroup {}", p.display()));
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for m in mounts.lines().filter(|l| l.contains(uuid)) {
            left.push(format!("mount {m}"));
        }
        left
    }
}

impl Drop for PodHost {
    /// Tears down whatever capsules are still on the host (a failed test's), with the
    /// driver's own teardown, then what remains of the test's kernel state.
    fn drop(&mut self) {
        self.compute.kill9();
        let config = self.config.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let cfg = Config::load(Some(&config)).unwrap();
                assert_eq!(cfg.runtime.driver, DriverKind::Pod);
                let dir = cfg.compute.state_dir.join("capsules");
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    return;
                };
                let ids: Vec<uuid::Uuid> = entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                    .collect();
                if ids.is_empty() {
                    return;
                }
                let images = zun_compute::image::ImageStore::connect(&cfg.image)
                    .await
                    .unwrap();
                let network = zun_compute::network::Network::new(cfg.network.clone()).unwrap();
                let driver = zun_compute::driver::pod::PodDriver::new(
                    &cfg.compute.state_dir,
                    cfg.pod.clone(),
                    images,
                    network,
                )
                .await
                .unwrap();
                for id in ids {
                    eprintln!("cleanup: tearing down capsule {id} left by the test");
                    if let Err(e) = zun_compute::driver::RuntimeDriver::delete(&driver, id).await {
                        eprintln!("cleanup of {id}: {e}");
                    }
                }
            });
        });
        let _ = cleanup.join();
        // The netns directory was made a shared mount point of its own.
        let _ = nix::mount::umount2(&self.netns_dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

async fn container_named<'a>(capsule: &'a Value, name: &str) -> &'a Value {
    capsule["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {capsule}"))
}

/// The logs of container `uuid`, as `who` asks for them.
async fn logs(stack: &Stack, uuid: &str) -> String {
    let (status, body) = stack
        .call(
            DEMO,
            reqwest::Method::GET,
            &format!("/v1/containers/{uuid}/logs"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_str().unwrap().to_owned()
}

/// Waits until `pred` holds for the capsule as an admin sees it.
async fn wait_for(stack: &Stack, uuid: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + LONG;
    loop {
        let c = stack.show(uuid).await;
        if let Some(c) = &c {
            if pred(c) {
                return c.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "capsule {uuid}: never {what}; last: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn delete_and_check(stack: &Stack, host: &PodHost, uuid: &str) {
    assert_eq!(stack.delete(uuid, false).await, 204);
    stack.wait_gone(uuid, LONG).await;
    let left = host.leftovers(uuid);
    assert!(left.is_empty(), "left on the host: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_container_pod_shares_network_pid_and_hostname() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "p1").await;
    let t = json!({"kind": "capsule", "metadata": {"name": "pair"},
    "spec": {"containers": [
        {"name": "web", "image": "busybox", "command": ["sh", "-c",
            "echo host=$(hostname); mkdir -p /www; echo hello-from-web > /www/index.html; exec httpd -f -p 8080 -h /www"]},
        {"name": "probe", "image": "busybox", "command": ["sh", "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8080/ && break; sleep 0.2; done; echo host=$(hostname); ps; sleep 3600"]}
    ]}});
    let uuid = stack.create_template(DEMO, &t).await;
    let running = stack.wait_status(&uuid, "Running", LONG).await;
    assert_eq!(running["host"], "p1");
    let addr = running["addresses"][&host.bridge][0]["addr"]
        .as_str()
        .unwrap_or_else(|| panic!("no address: {running}"));
    assert!(addr.starts_with("10.214."), "{addr}");
    for c in running["containers"].as_array().unwrap() {
        assert_eq!(c["status"], "Running", "{c}");
    }
    let web = container_named(&running, "web").await["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let probe = container_named(&running, "probe").await["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The probe reached web's server on 127.0.0.1, sees its process and the sandbox's pause
    // as PID 1, and has the same host name.
    let deadline = Instant::now() + LONG;
    let probe_log = loop {
        let l = logs(&stack, &probe).await;
        if l.contains("PID") || Instant::now() > deadline {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(probe_log.contains("hello-from-web"), "{probe_log}");
    assert!(probe_log.contains("httpd"), "{probe_log}");
    assert!(
        probe_log
            .lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("/pause")),
        "{probe_log}"
    );
    let web_log = logs(&stack, &web).await;
    assert!(web_log.contains("host=pair"), "{web_log}");
    assert!(probe_log.contains("host=pair"), "{probe_log}");
    // Zun's query: timestamps and tail.
    let (status, body) = stack
        .call(
            DEMO,
            reqwest::Method::GET,
            &format!("/v1/containers/{web}/logs?timestamps=True&tail=1"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let line = body.as_str().unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("20"), "{line}");
    delete_and_check(&stack, &host, &uuid).await;
    drop(host);
    stack.stop().await;
}

/// A free TCP port on the host.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_port_reaches_nginx_from_the_host() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "p2").await;
    let port = free_port();
    let t = json!({"kind": "capsule", "metadata": {"name": "web"},
        "spec": {"containers": [{"image": "nginx",
            "ports": [{"containerPort": 80, "hostPort": port, "protocol": "TCP"}]}]}});
    let uuid = stack.create_template(DEMO, &t).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        match reqwest::get(&url).await {
            Ok(r) if r.status().is_success() => break r.text().await.unwrap(),
            other => {
                assert!(Instant::now() < deadline, "{url}: {other:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(body.contains("Welcome to nginx!"), "{body}");
    // A second capsule asking for the same host port is never placed on this host.
    let (status, answer) = stack
        .call(
            DEMO,
            reqwest::Method::POST,
            "/v1/capsules",
            Some(&json!({"template": t})),
        )
        .await;
    if status == 202 {
        let other = answer["uuid"].as_str().unwrap().to_owned();
        let c = stack.wait_status(&other, "Error", LONG).await;
        assert!(c["host"].is_null(), "{c}");
        assert_eq!(stack.delete(&other, false).await, 204);
        stack.wait_gone(&other, LONG).await;
    } else {
        assert_eq!(status, 409, "{answer}");
    }
    delete_and_check(&stack, &host, &uuid).await;
    // The port is closed again.
    assert!(reqwest::get(&url).await.is_err());
    drop(host);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_restarts_and_oom_kills_show_in_the_status() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "p3").await;
    // OnFailure: a container that exits 1 is restarted, and the count shows.
    let flaky = json!({"kind": "capsule", "metadata": {"name": "flaky"}, "restartPolicy": "OnFailure",
        "spec": {"containers": [{"image": "busybox", "command": ["sh", "-c", "echo try; exit 1"]}]}});
    let flaky = stack.create_template(DEMO, &flaky).await;
    let c = wait_for(&stack, &flaky, "restarted twice", |c| {
        c["containers"][0]["restart_count"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    assert_ne!(c["status"], "Error", "{c}");
    // Never: memory over the request gets the container OOM-killed, and that is reported.
    let hog = json!({"kind": "capsule", "metadata": {"name": "hog"}, "restartPolicy": "Never",
        "spec": {"containers": [{"image": "busybox",
            "command": ["sh", "-c", "x=a; while true; do x=$x$x; done"],
            "resources": {"requests": {"memory": 16}}}]}});
    let hog = stack.create_template(DEMO, &hog).await;
    let c = wait_for(&stack, &hog, "OOM-killed", |c| {
        c["containers"][0]["status"] == "Error"
    })
    .await;
    let reason = c["containers"][0]["status_reason"].as_str().unwrap_or("");
    assert!(reason.contains("OOMKilled"), "{c}");
    assert_eq!(c["status"], "Error", "{c}");
    // An init container that fails fails the capsule, with its exit code.
    let init = json!({"kind": "capsule", "metadata": {"name": "badinit"},
        "spec": {"initContainers": [{"image": "busybox", "command": ["sh", "-c", "exit 3"]}],
                 "containers": [{"image": "busybox", "command": ["sleep", "3600"]}]}});
    let init = stack.create_template(DEMO, &init).await;
    let c = stack.wait_status(&init, "Error", LONG).await;
    let reason = c["status_reason"].as_str().unwrap_or("");
    assert!(reason.contains("exited with code 3"), "{c}");
    for uuid in [&flaky, &hog, &init] {
        delete_and_check(&stack, &host, uuid).await;
    }
    drop(host);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capsules_outlive_a_killed_agent_and_are_deleted_after_its_restart() {
    let stack = Stack::start().await;
    let mut host = PodHost::start(&stack, "p4").await;
    let t = json!({"kind": "capsule", "metadata": {"name": "survivor"},
        "spec": {"containers": [{"image": "busybox", "command": ["sleep", "3600"]}]}});
    let uuid = stack.create_template(DEMO, &t).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    let pid: i32 = std::fs::read_to_string(host.capsule_dir(&uuid).join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    host.compute.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the shim died with the agent"
    );
    host.compute.restart();
    stack.wait_service("p4", true, LONG).await;
    let c = stack.wait_status(&uuid, "Running", LONG).await;
    assert_eq!(c["containers"][0]["status"], "Running", "{c}");
    delete_and_check(&stack, &host, &uuid).await;
    drop(host);
    // Admin view of the service: it is still registered.
    let (status, _) = stack
        .call(ADMIN, reqwest::Method::GET, "/v1/services", None)
        .await;
    assert_eq!(status, 200);
    stack.stop().await;
}
