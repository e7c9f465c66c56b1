//! A compute agent run as a real process for one test: its config and state directory under
//! the stack's, its log in `agent.log` there; killed when dropped. Its store says what it was
//! asked to run and how far it got; with the fake runtime, its journal and live table say what
//! it built and removed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use capsule_types::secgroup::{Direction, HostFirewall};
use serde_json::Value;
use zun_compute::store::{Record, Store};

/// A compute agent process.
pub struct Compute {
    /// Host name.
    pub host: String,
    /// Its state directory.
    pub state_dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl Compute {
    /// Starts `zun-compute --config <config>` for `host`, logging to `agent.log` in `state_dir`.
    pub(crate) fn spawn(host: &str, config: PathBuf, state_dir: PathBuf) -> Self {
        Self {
            host: host.to_owned(),
            child: Some(spawn_compute(&config, &state_dir)),
            state_dir,
            config,
        }
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts it again (after `kill9`).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.child = Some(spawn_compute(&self.config, &self.state_dir));
    }

    /// The fake runtime's journal: `create <uuid>` / `delete <uuid>` lines.
    pub fn journal(&self) -> Vec<String> {
        std::fs::read_to_string(self.state_dir.join("runtime/fake-runtime.journal"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The security-group document the fake runtime keeps (empty before the first).
    pub fn firewall(&self) -> HostFirewall {
        std::fs::read(self.state_dir.join("runtime/firewall.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Waits (`within` at most; `what` names it in the failure) until the host's document
    /// satisfies `pred`; returns it.
    pub fn wait_firewall(
        &self,
        what: &str,
        within: std::time::Duration,
        pred: impl Fn(&HostFirewall) -> bool,
    ) -> HostFirewall {
        let deadline = std::time::Instant::now() + within;
        loop {
            let d = self.firewall();
            if pred(&d) {
                return d;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: last document {d:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// What the agent remembers of each capsule (its store in the state directory): the spec,
    /// the last state, whether the create finished (`settled`) and whether that state is still
    /// to be reported. Read while the agent is killed, it is what the agent knew when it died.
    pub fn records(&self) -> Vec<Record> {
        Store::open(&self.state_dir)
            .and_then(|s| s.list())
            .unwrap_or_else(|e| panic!("{}: {}", self.host, zun_compute::chain::chain(&e)))
    }

    /// Every file of the state directory but the agent's log and configuration, with its
    /// contents: what the host holds, to compare before and after a request.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
                if rel == Path::new("agent.log") || rel == Path::new("zun-compute.toml") {
                    continue;
                }
                if path.is_dir() {
                    walk(&path, root, out);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    out.insert(rel, bytes);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.state_dir, &self.state_dir, &mut out);
        out
    }

    /// Capsules live in the fake runtime now.
    pub fn live(&self) -> Vec<String> {
        let t: HashMap<String, Value> =
            std::fs::read(self.state_dir.join("runtime/fake-runtime.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
        t.into_keys().collect()
    }
}

impl Drop for Compute {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn_compute(config: &Path, state_dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join("agent.log"))
        .expect("agent log");
    Command::new(crate::bins::zun_compute())
        .arg("--config")
        .arg(config)
        .env(
            "ZUN_LOG",
            test_support::env_or("ZUN_TEST_AGENT_LOG", "info"),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start zun-compute")
}

/// How often each capsule appears in `create` and `delete` journal lines.
pub fn journal_counts(lines: &[String]) -> HashMap<String, (usize, usize)> {
    let mut m: HashMap<String, (usize, usize)> = HashMap::new();
    for l in lines {
        if let Some((what, id)) = l.split_once(' ') {
            let e = m.entry(id.to_owned()).or_default();
            match what {
                "create" => e.0 += 1,
                "delete" => e.1 += 1,
                _ => {}
            }
        }
    }
    m
}

/// Whether group `group` of document `d` opens ingress port `port`.
pub fn opens(d: &HostFirewall, group: &str, port: u16) -> bool {
    d.groups.get(group).is_some_and(|rules| {
        rules
            .iter()
            .any(|r| r.direction == Direction::Ingress && r.port_range_min == Some(port))
    })
}
