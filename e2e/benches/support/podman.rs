//! The pod benchmark's comparison: Debian's podman doing the same pod work (a pod sharing
//! net, ipc, uts and pid, two busybox containers, one published port, the image cached), one
//! at a time and 100 at once, and what a pod costs the host (conmons and the infra process);
//! plus the /proc readers both sides are measured with.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Private memory (KiB) of process `pid`: what it alone costs the host.
pub fn private_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("Private_Clean:") || l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// Resident memory (KiB) of process `pid`.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The netavark binary both sides use.
pub fn netavark_bin() -> String {
    test_support::env_or("ZUN_TEST_NETAVARK", "/usr/lib/podman/netavark")
}

/// What podman measured.
#[derive(Debug, Default)]
pub struct PodmanFigures {
    /// One at a time: pod create + 2 x run, and pod rm.
    pub create: Vec<Duration>,
    /// One at a time: `pod rm -f`.
    pub delete: Vec<Duration>,
    /// 100 at once: each pod's create, from the start of the burst.
    pub burst_create: Vec<Duration>,
    /// 100 at once: each pod's removal, from the start of the removals.
    pub burst_delete: Vec<Duration>,
    /// 100 at once: wall time of the creates.
    pub burst_wall: Duration,
    /// Private memory of one pod's conmons and infra process, KiB (mean of 10).
    pub per_pod_private_kib: f64,
}

/// Debian's podman with its own storage and config (runc, cgroupfs, lower ulimits), so it
/// touches nothing of the host's podman; it runs the same netavark binary and firewall driver
/// as the agent, so both pay the same for the network.
pub struct Podman {
    dir: PathBuf,
    firewall: Option<String>,
    image: String,
}

impl Podman {
    /// A private podman, with the registry's busybox pulled; `None` (said on stdout) when podman
    /// is not installed.
    pub fn new(registry: &str) -> Option<Self> {
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
        let pm = Self {
            dir,
            firewall,
            image: format!("{registry}/library/busybox:latest"),
        };
        pm.run(&["pull", "--quiet", "--tls-verify=false", &pm.image]);
        Some(pm)
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

    /// Runs podman with `args`; its stdout. Panics with podman's stderr on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("podman runs");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pod: `pod create` sharing net, ipc, uts and pid with `port` published, then two
    /// `run -d --pod` of busybox sleeping.
    pub fn create_pod(&self, name: &str, port: u16) {
        let publish = format!("{port}:8080");
        let share = "net,ipc,uts,pid";
        self.run(&[
            "pod", "create", "--name", name, "--share", share, "-p", &publish,
        ]);
        for _ in 0..2 {
            self.run(&["run", "-d", "--pod", name, &self.image, "sleep", "3600"]);
        }
    }

    /// `pod rm -f` with a 2 s stop timeout.
    pub fn remove_pod(&self, name: &str) {
        self.run(&["pod", "rm", "-f", "-t", "2", name]);
    }

    /// Private memory (KiB) of pod `name`'s conmons and its infra process.
    fn pod_private_kib(&self, name: &str) -> u64 {
        let ids = self.run(&[
            "pod",
            "inspect",
            name,
            "--format",
            "{{range .Containers}}{{.ID}} {{end}}",
        ]);
        let mut args = vec![
            "inspect",
            "--format",
            "{{.State.ConmonPid}} {{.State.Pid}} {{.IsInfra}}",
        ];
        args.extend(ids.split_whitespace());
        let mut kib = 0;
        for line in self.run(&args).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let pid = |i: usize| f.get(i).and_then(|p| p.parse::<u32>().ok());
            kib += pid(0).map(private_kib).unwrap_or(0);
            if f.get(2) == Some(&"true") {
                kib += pid(1).map(private_kib).unwrap_or(0);
            }
        }
        kib
    }

    /// `rounds` after `warmup` pods made and removed one at a time, then `burst` at once on
    /// the given ports (its first 10 also measured for memory), removed at once.
    pub fn measure(&self, rounds: usize, warmup: usize, burst_ports: &[u16]) -> PodmanFigures {
        let mut f = PodmanFigures::default();
        for i in 0..rounds + warmup {
            let name = format!("bench-pod-{i}");
            let t = Instant::now();
            self.create_pod(&name, test_support::free_port());
            let made = t.elapsed();
            let t = Instant::now();
            self.remove_pod(&name);
            if i >= warmup {
                f.create.push(made);
                f.delete.push(t.elapsed());
            }
        }
        let names: Vec<String> = (0..burst_ports.len())
            .map(|i| format!("bench-burst-{i}"))
            .collect();
        let start = Instant::now();
        f.burst_create = std::thread::scope(|s| {
            let handles: Vec<_> = names
                .iter()
                .zip(burst_ports)
                .map(|(name, port)| {
                    s.spawn(move || {
                        self.create_pod(name, *port);
                        start.elapsed()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("podman burst"))
                .collect()
        });
        f.burst_wall = start.elapsed();
        let measured = names.iter().take(10);
        let kib: u64 = measured.clone().map(|n| self.pod_private_kib(n)).sum();
        f.per_pod_private_kib = kib as f64 / measured.count().max(1) as f64;
        let start = Instant::now();
        f.burst_delete = std::thread::scope(|s| {
            let handles: Vec<_> = names
                .iter()
                .map(|name| {
                    s.spawn(move || {
                        self.remove_pod(name);
                        start.elapsed()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("podman burst rm"))
                .collect()
        });
        f
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command().args(["system", "reset", "--force"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
