//! A compute host running real pods for tests and benchmarks: the pod driver with the
//! containerd and registry devstack runs, on its own bridge and subnet, and a guard that tears
//! down whatever a failed test left; and a capsule's processes as the kernel shows them.

use std::path::{Path, PathBuf};

use test_support::env_or;
use zun_compute::config::{Config, DriverKind};

use crate::{bins, Compute, Stack};

/// A process of a capsule as the kernel shows it: a pid may be reused, its start time with it
/// may not, so two equal values are the same process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapsuleProcess {
    /// What it is: `shim`, `sandbox`, or the container's name.
    pub role: String,
    /// Its pid (host namespace).
    pub pid: i32,
    /// When it started (`/proc/<pid>/stat` field 22, clock ticks after boot).
    pub start_time: u64,
    /// Its command line, arguments joined by spaces.
    pub cmdline: String,
}

impl CapsuleProcess {
    /// Process `pid` as `/proc` shows it now; panics if there is none.
    fn read(role: &str, pid: i32) -> Self {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_else(|e| panic!("{role}: no process {pid}: {e}"));
        // After the command name (in parentheses, which may hold anything) come fields 3...
        let start_time = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(19))
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("{role}: unreadable /proc/{pid}/stat: {stat}"));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            role: role.to_owned(),
            pid,
            start_time,
            cmdline,
        }
    }
}

/// A compute host running real pods, on its own bridge and subnet.
pub struct PodHost {
    /// The agent.
    pub compute: Compute,
    config: PathBuf,
    netns_dir: PathBuf,
    /// Its bridge (also the network name, the key of `addresses`).
    pub bridge: String,
    /// Its security-group table (`inet`), its own so it never touches devstack's agent's.
    pub table: String,
}

impl PodHost {
    /// Starts agent `host` with the pod driver on its own bridge and subnet.
    pub async fn start(stack: &Stack, host: &str) -> Self {
        Self::start_with(stack, host, "").await
    }

    /// As [`Self::start`], with `extra` (whole TOML sections, e.g. `[limits]`) added to the
    /// agent's configuration.
    pub async fn start_with(stack: &Stack, host: &str, extra: &str) -> Self {
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
        let mut toml = format!(
            "[runtime]\ndriver = \"pod\"\n\
             [pod]\nshim = \"{shim}\"\nstop_grace_seconds = 2\nstart_timeout_seconds = 120\n\
             [image]\ncontainerd_socket = \"{socket}\"\nnamespace = \"capsule-test\"\ncerts_dir = \"{certs}\"\n\
             [network]\nnetavark = \"{netavark}\"\nconfig_dir = \"{nv}\"\nnetwork_name = \"{bridge}\"\n\
             bridge = \"{bridge}\"\nsubnet = \"10.214.{octet}.0/24\"\nnetns_dir = \"{netns}\"\n",
            shim = bins::capsule_shim(),
            certs = dir.join("certs.d").display(),
            netavark = env_or("ZUN_TEST_NETAVARK", "/usr/lib/podman/netavark"),
            nv = dir.join("netavark").display(),
            netns = netns_dir.display(),
        );
        if let Ok(fw) = std::env::var("ZUN_TEST_NETAVARK_FW") {
            toml.push_str(&format!("firewall_driver = \"{fw}\"\n"));
        }
        let table = format!("capsule_sg_{tag}");
        toml.push_str(&format!("[firewall]\ntable = \"{table}\"\n"));
        toml.push_str(extra);
        let compute = stack.compute_with(host, 8192, &toml).await;
        let config = dir.join("zun-compute.toml");
        PodHost {
            compute,
            config,
            netns_dir,
            bridge,
            table,
        }
    }

    /// The state directory of capsule `uuid`.
    pub fn capsule_dir(&self, uuid: &str) -> PathBuf {
        self.compute.state_dir.join("capsules").join(uuid)
    }

    /// The processes of capsule `uuid`: its shim (from its pid file), and the sandbox and each
    /// running container (as the shim answers), each as `/proc` shows it.
    pub async fn processes(&self, uuid: &str) -> Vec<CapsuleProcess> {
        let dir = self.capsule_dir(uuid);
        let shim: i32 = std::fs::read_to_string(dir.join(zun_compute::shim::PID_FILE))
            .unwrap_or_else(|e| panic!("capsule {uuid}: no shim pid file: {e}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("capsule {uuid}: shim pid file: {e}"));
        let status = zun_compute::shim::status(&dir)
            .await
            .unwrap_or_else(|e| panic!("capsule {uuid}: shim status: {e}"));
        let mut out = vec![CapsuleProcess::read("shim", shim)];
        let sandbox = status
            .sandbox_pid
            .unwrap_or_else(|| panic!("capsule {uuid}: no sandbox: {status:?}"));
        out.push(CapsuleProcess::read("sandbox", sandbox));
        for c in &status.containers {
            if let Some(pid) = c.pid {
                out.push(CapsuleProcess::read(&c.name, pid));
            }
        }
        out
    }

    /// Where the host keeps its volumes.
    pub fn volume_dir(&self) -> PathBuf {
        self.compute.state_dir.join("volumes")
    }

    /// Where the host keeps its capsules' writable layers.
    pub fn layer_dir(&self) -> PathBuf {
        self.compute.state_dir.join("layers")
    }

    /// Volume state on the host that does not belong to a volume in `keep`.
    pub fn volume_leftovers(&self, keep: &[String]) -> Vec<String> {
        test_support::volume_leftovers(&self.volume_dir(), keep)
    }

    /// Deletes capsule `uuid` through the API, waits until it is gone and checks that nothing
    /// of it is left on the host.
    pub async fn delete_and_check(&self, stack: &Stack, uuid: &str) {
        assert_eq!(stack.delete(uuid, false).await, 204);
        stack
            .wait_gone(uuid, std::time::Duration::from_secs(120))
            .await;
        let left = self.leftovers(uuid);
        assert!(left.is_empty(), "left on the host: {left:#?}");
    }

    /// What of `uuid` is left on the host, in words (empty: nothing).
    pub fn leftovers(&self, uuid: &str) -> Vec<String> {
        let mut left = Vec::new();
        if self.capsule_dir(uuid).exists() {
            left.push(format!("{}", self.capsule_dir(uuid).display()));
        }
        left.extend(test_support::host_leftovers(uuid, &self.netns_dir));
        // The capsule's writable layer: its file, mount and loop device.
        left.extend(
            test_support::volume_leftovers(&self.layer_dir(), &[])
                .into_iter()
                .filter(|l| l.contains(uuid)),
        );
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
                // The table goes whole below: no firewall for this teardown.
                let mut cfg = cfg;
                cfg.firewall.enabled = false;
                let drivers = zun_compute::start::pod_drivers(&cfg).await.unwrap();
                for id in ids {
                    eprintln!("cleanup: tearing down capsule {id} left by the test");
                    if let Err(e) = drivers.capsules.delete(id).await {
                        eprintln!("cleanup of {id}: {}", zun_compute::chain::chain(&e));
                    }
                }
            });
        });
        let _ = cleanup.join();
        // Volumes still mounted (a test that failed with a capsule or a volume attached): the
        // loop devices go with their mounts (autoclear), the files with the state directory.
        let (volumes, layers) = (self.volume_dir(), self.layer_dir());
        for m in test_support::mount_points() {
            if m.starts_with(&volumes) || m.starts_with(&layers) {
                let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        // The netns directory was made a shared mount point of its own.
        let _ = nix::mount::umount2(&self.netns_dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = test_support::run("ip", &["link", "del", &self.bridge]);
        let _ = test_support::run("nft", &["delete", "table", "inet", &self.table]);
    }
}
