//! The shim tests' fixture: busybox root filesystems, process and cgroup probes, and a
//! [`Capsule`] guard that shuts its shim down when the test ends, pass or fail, and checks that
//! no cgroup, process or mount of the capsule is left.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;
use zun_compute::shim::{self, ContainerPlan, Plan, RestartPolicy, Status};

pub(crate) const SHIM: &str = env!("CARGO_BIN_EXE_capsule-shim");
pub(crate) const APPLETS: &[&str] = &[
    "sh", "sleep", "ps", "hostname", "cat", "echo", "wget", "httpd", "id", "mount", "unshare",
    "grep", "wc", "seq", "touch", "ls", "true", "test", "usleep",
];

pub(crate) fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the shim tests need root (namespaces, cgroups, mounts)"
    );
    assert!(
        Path::new("/bin/busybox").exists(),
        "the shim tests need a static busybox at /bin/busybox (Debian busybox-static)"
    );
}

/// A busybox root filesystem: `/bin/busybox`, the applets as symlinks, the usual directories.
pub(crate) fn busybox_rootfs(at: &Path) -> PathBuf {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "www", "shared"] {
        std::fs::create_dir_all(at.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", at.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", at.join("bin").join(a)).unwrap();
    }
    at.to_owned()
}

pub(crate) fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(str::to_owned))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

/// The processes whose parent is `pid`, with their state.
pub(crate) fn children_of(pid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or_default().to_owned();
        if f.next().and_then(|p| p.parse::<i32>().ok()) == Some(pid) {
            out.push((child, state));
        }
    }
    out
}

/// `VmRSS`, `RssAnon`, `RssFile` (from `status`) and `Pss` (from `smaps_rollup`), in KiB.
pub(crate) fn memory(pid: i32) -> String {
    let field = |file: &str, key: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    format!(
        "VmRSS {:?} KiB (anon {:?}, file {:?}), Pss {:?} KiB",
        field("status", "VmRSS:"),
        field("status", "RssAnon:"),
        field("status", "RssFile:"),
        field("smaps_rollup", "Pss:"),
    )
}

pub(crate) fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join(name))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

/// One capsule of a test, shut down and checked when dropped.
pub(crate) struct Capsule {
    pub(crate) base: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) uuid: Uuid,
    pub(crate) cgroup: String,
    pids: Mutex<Vec<i32>>,
}

impl Capsule {
    pub(crate) fn new() -> Capsule {
        require_root();
        let uuid = Uuid::new_v4();
        let base = std::env::temp_dir().join(format!("shim-test-{uuid}"));
        let dir = base.join("capsule");
        std::fs::create_dir_all(&dir).unwrap();
        Capsule {
            base,
            dir,
            uuid,
            cgroup: format!("capsule-test-{uuid}"),
            pids: Mutex::new(Vec::new()),
        }
    }

    /// A container with its own busybox rootfs.
    pub(crate) fn container(&self, name: &str, script: &str) -> ContainerPlan {
        ContainerPlan {
            name: name.into(),
            uuid: Uuid::new_v4(),
            rootfs: busybox_rootfs(&self.base.join("rootfs").join(name)),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![],
            cwd: String::new(),
            user: None,
            memory_bytes: None,
            cpu_millis: None,
            mounts: vec![],
            net_raw: false,
            stop_signal: None,
        }
    }

    pub(crate) fn plan(
        &self,
        policy: RestartPolicy,
        init: Vec<ContainerPlan>,
        apps: Vec<ContainerPlan>,
    ) -> Plan {
        Plan {
            uuid: self.uuid,
            hostname: "capsule-host".into(),
            netns: None,
            cgroup_parent: format!("/{}", self.cgroup),
            sandbox_rootfs: self.base.join("sandbox-rootfs"),
            restart_policy: policy,
            max_retries: 0,
            init_containers: init,
            containers: apps,
            limits: Default::default(),
        }
    }

    pub(crate) async fn spawn(&self, plan: &Plan) {
        std::fs::write(
            self.dir.join("plan.json"),
            serde_json::to_vec_pretty(plan).unwrap(),
        )
        .unwrap();
        shim::spawn(Path::new(SHIM), &self.dir).await.unwrap();
        let pid: i32 = std::fs::read_to_string(self.dir.join("shim.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        self.pids.lock().unwrap().push(pid);
    }

    pub(crate) fn shim_pid(&self) -> i32 {
        self.pids.lock().unwrap()[0]
    }

    pub(crate) fn remember(&self, s: &Status) {
        let mut pids = self.pids.lock().unwrap();
        pids.extend(s.sandbox_pid);
        pids.extend(s.containers.iter().filter_map(|c| c.pid));
        pids.sort_unstable();
        pids.dedup();
    }

    /// Follows the capsule until `done` holds; panics with the last status after `within`.
    pub(crate) async fn wait_for(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&Status) -> bool,
    ) -> Status {
        let mut rx = shim::watch(&self.dir).await.unwrap();
        let deadline = tokio::time::Instant::now() + within;
        let mut last = None;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(s)) => {
                    self.remember(&s);
                    if done(&s) {
                        return s;
                    }
                    last = Some(s);
                }
                Ok(None) => panic!("the shim went away while waiting for {what}; last: {last:#?}"),
                Err(_) => panic!("no {what} within {within:?}; last: {last:#?}"),
            }
        }
    }

    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(shim::log_path(&self.dir, name)).unwrap_or_default()
    }

    /// Waits until container `name`'s log contains `needle`.
    pub(crate) async fn wait_log(&self, name: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log(name);
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never showed in {name}'s log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn pids(&self) -> Vec<i32> {
        self.pids.lock().unwrap().clone()
    }

    /// Nothing of the capsule is left: no cgroup, no live process, no mount.
    pub(crate) fn leftovers(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for d in cgroup_dirs(&self.cgroup) {
            problems.push(format!("cgroup left: {}", d.display()));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for pid in self.pids() {
            while process_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if process_alive(pid) {
                problems.push(format!("process {pid} still runs"));
            }
        }
        let base = self.base.to_string_lossy().into_owned();
        if std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.contains(&base)) {
            problems.push(format!("a mount under {base} is left"));
        }
        problems
    }
}

impl Drop for Capsule {
    fn drop(&mut self) {
        // Runs on its own thread: the test's runtime may be the one dropping us.
        let dir = self.dir.clone();
        let shut = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(shim::shutdown(&dir, Duration::from_millis(500)))
        })
        .join();
        let mut problems = self.leftovers();
        match shut {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(format!("shutdown failed: {e}")),
            Err(_) => problems.push("shutdown panicked".into()),
        }
        // Last resort, so a failed test does not leak: only what this capsule started.
        for pid in self.pids() {
            if process_alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for d in cgroup_dirs(&self.cgroup) {
            let _ = std::fs::remove_dir(d);
        }
        let _ = std::fs::remove_dir_all(&self.base);
        if !problems.is_empty() {
            if std::thread::panicking() {
                eprintln!("capsule {}: {}", self.uuid, problems.join("; "));
            } else {
                panic!("capsule {}: {}", self.uuid, problems.join("; "));
            }
        }
    }
}

/// `<RFC 3339 nano UTC> <stdout|stderr> <F|P> <text>`.
pub(crate) fn check_cri_line(line: &str) {
    let mut parts = line.splitn(4, ' ');
    let ts = parts.next().unwrap();
    let stream = parts.next().unwrap_or_default();
    let tag = parts.next().unwrap_or_default();
    assert!(parts.next().is_some(), "no text in {line:?}");
    let t = chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(t.offset().local_minus_utc(), 0, "{line:?}");
    assert!(
        ts.ends_with('Z') && ts.split('.').nth(1).is_some_and(|f| f.len() == 10),
        "{ts}"
    );
    assert!(stream == "stdout" || stream == "stderr", "{line:?}");
    assert!(tag == "F" || tag == "P", "{line:?}");
}
