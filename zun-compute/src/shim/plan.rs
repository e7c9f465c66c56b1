//! The plan: everything the shim needs to run one capsule, written by the agent to
//! `<dir>/plan.json`.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a capsule runs and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The capsule.
    pub uuid: Uuid,
    /// The host name every container of the capsule sees.
    pub hostname: String,
    /// An existing network namespace to join (e.g. `/run/netns/capsule-<uuid>`, set up by the
    /// network module); `None` gives the sandbox a new one with only `lo`, which the shim
    /// brings up.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// The capsule's cgroup, relative to each hierarchy's root (e.g. `/capsule/<uuid>`). Each
    /// container gets `<cgroup_parent>/<name>`, the sandbox `<cgroup_parent>/_sandbox`; the
    /// shim removes the whole subtree at shutdown.
    pub cgroup_parent: String,
    /// The pause rootfs ([`super::ensure_sandbox_rootfs`]), shared by all capsules, mounted
    /// read-only.
    pub sandbox_rootfs: PathBuf,
    /// When app containers are restarted.
    pub restart_policy: RestartPolicy,
    /// How many restarts a container gets; 0 means no limit.
    #[serde(default)]
    pub max_retries: u32,
    /// Run to completion, one after the other, before any app container starts.
    #[serde(default)]
    pub init_containers: Vec<ContainerPlan>,
    /// The app containers, started together once the init containers succeeded.
    pub containers: Vec<ContainerPlan>,
    /// The capsule's host-side bounds (none in a plan written before they existed).
    #[serde(default)]
    pub limits: CapsuleLimits,
}

/// What one capsule may take of its host, whatever its containers ask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsuleLimits {
    /// `pids.max` of the capsule's cgroup (`cgroup_parent`), set before any of its processes
    /// starts: its processes and threads together; `None`: no bound.
    #[serde(default)]
    pub pids_max: Option<u64>,
    /// How each container's log rotates; `None`: one file, never rotated.
    #[serde(default)]
    pub logs: Option<LogRotation>,
}

/// How a container's log rotates (see `logfile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRotation {
    /// A file is rotated before it grows past this many bytes.
    pub max_bytes: u64,
    /// Files kept, the one being written included (at least 2).
    pub max_files: u32,
}

/// When an app container that exited is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// On every exit.
    Always,
    /// On a non-zero exit code or a death by signal.
    OnFailure,
    /// Never.
    Never,
}

impl RestartPolicy {
    /// Whether a container that exited with `exit_code` is restarted.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// One container of the capsule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerPlan {
    /// Unique in the capsule (init and app containers together); a DNS label.
    pub name: String,
    /// The container's id in the API.
    pub uuid: Uuid,
    /// Its root filesystem (prepared by the image module), writable.
    pub rootfs: PathBuf,
    /// The command and its arguments (entrypoint and command already merged).
    pub args: Vec<String>,
    /// `KEY=value` pairs; `PATH` and `HOSTNAME` are added when missing.
    #[serde(default)]
    pub env: Vec<String>,
    /// The working directory; empty means `/`.
    #[serde(default)]
    pub cwd: String,
    /// `(uid, gid)`; `None` is root.
    #[serde(default)]
    pub user: Option<(u32, u32)>,
    /// The memory limit (bytes), swap included.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// CPU in thousandths of a core: both the share weight and the CFS quota.
    #[serde(default)]
    pub cpu_millis: Option<u64>,
    /// Bind mounts (volumes, shared `emptyDir`s).
    #[serde(default)]
    pub mounts: Vec<MountPlan>,
    /// `CAP_NET_RAW` on top of the default capabilities (the template's
    /// `securityContext.capabilities.add: [NET_RAW]`, which the API allowed).
    #[serde(default)]
    pub net_raw: bool,
    /// The signal that asks it to stop (its image's `STOPSIGNAL`); `None`: SIGTERM.
    #[serde(default)]
    pub stop_signal: Option<i32>,
}

/// A bind mount into a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountPlan {
    /// A host path (file or directory).
    pub source: PathBuf,
    /// An absolute path inside the container.
    pub destination: String,
    /// Mounted read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// Why a plan cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a plan.
    #[error("cannot parse {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The plan is inconsistent.
    #[error("invalid plan: {0}")]
    Invalid(String),
}

/// The reserved cgroup leaf of the sandbox (not a DNS label, so no container can take it).
pub(crate) const SANDBOX_CGROUP: &str = "_sandbox";

impl Plan {
    /// Reads and checks `<dir>/plan.json`.
    pub fn load(dir: &Path) -> Result<Plan, PlanError> {
        let path = dir.join(super::PLAN_FILE);
        let bytes = std::fs::read(&path).map_err(|source| PlanError::Read {
            path: path.clone(),
            source,
        })?;
        let plan: Plan =
            serde_json::from_slice(&bytes).map_err(|source| PlanError::Parse { path, source })?;
        plan.validate()?;
        Ok(plan)
    }

    /// The cgroup parent named by `<dir>/plan.json`, for cleaning up after a dead shim: `None`
    /// if there is no plan, or one no shim would have run (unparsable, or with a cgroup parent
    /// that is not a safe path), since then no shim created anything for it.
    pub(crate) fn cgroup_parent_of(dir: &Path) -> Result<Option<String>, PlanError> {
        let path = dir.join(super::PLAN_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PlanError::Read { path, source }),
        };
        Ok(serde_json::from_slice::<Plan>(&bytes)
            .ok()
            .filter(|p| p.validate().is_ok())
            .map(|p| p.cgroup_parent))
    }

    /// Checks what the shim relies on: names usable as file and cgroup names, a cgroup parent
    /// it may remove, absolute mount destinations, a command for every container.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: String| Err(PlanError::Invalid(m));
        if !is_hostname(&self.hostname) {
            return bad(format!(
                "hostname {:?} is not a valid host name",
                self.hostname
            ));
        }
        if !is_cgroup_parent(&self.cgroup_parent) {
            return bad(format!(
                "cgroup parent {:?} must be an absolute path below the root, without '.' or '..'",
                self.cgroup_parent
            ));
        }
        if !self.sandbox_rootfs.is_absolute() {
            return bad("the sandbox rootfs must be an absolute path".into());
        }
        if let Some(ns) = &self.netns {
            if !ns.is_absolute() {
                return bad("the network namespace must be an absolute path".into());
            }
        }
        if self.containers.is_empty() {
            return bad("a capsule needs at least one container".into());
        }
        if self.limits.pids_max == Some(0) {
            return bad("a pids limit of 0 would run nothing".into());
        }
        if let Some(r) = self.limits.logs {
            if r.max_bytes == 0 || r.max_files < 2 {
                return bad(format!(
                    "log rotation needs a size and at least 2 files (got {} bytes, {} files)",
                    r.max_bytes, r.max_files
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for c in self.init_containers.iter().chain(&self.containers) {
            if !is_dns_label(&c.name) {
                return bad(format!("container name {:?} is not a DNS label", c.name));
            }
            if !seen.insert(c.name.as_str()) {
                return bad(format!("container name {:?} is used twice", c.name));
            }
            if c.args.is_empty() || c.args[0].is_empty() {
                return bad(format!("container {:?} has no command", c.name));
            }
            if !c.rootfs.is_absolute() {
                return bad(format!("container {:?}: rootfs must be absolute", c.name));
            }
            if !c.cwd.is_empty() && !c.cwd.starts_with('/') {
                return bad(format!("container {:?}: cwd must be absolute", c.name));
            }
            if c.env.iter().any(|e| !e.contains('=')) {
                return bad(format!("container {:?}: env entries are KEY=value", c.name));
            }
            if c.memory_bytes == Some(0) || c.cpu_millis == Some(0) {
                return bad(format!("container {:?}: a limit of 0 is no limit", c.name));
            }
            for m in &c.mounts {
                let dest = Path::new(&m.destination);
                if !dest.is_absolute()
                    || dest.components().any(|c| matches!(c, Component::ParentDir))
                {
                    return bad(format!(
                        "container {:?}: mount destination {:?} must be absolute, without '..'",
                        c.name, m.destination
                    ));
                }
                if !m.source.is_absolute() {
                    return bad(format!(
                        "container {:?}: mount source {} must be absolute",
                        c.name,
                        m.source.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The cgroup (relative to each hierarchy's root) of container `name`.
    pub(crate) fn cgroup_of(&self, name: &str) -> String {
        format!("{}/{}", self.cgroup_parent.trim_end_matches('/'), name)
    }
}

/// A DNS-1123 label: what Kubernetes allows as a container name.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_cgroup_parent(s: &str) -> bool {
    let p = Path::new(s);
    p.is_absolute()
        && p.components().count() > 1
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !s.contains("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str) -> ContainerPlan {
        ContainerPlan {
            name: name.into(),
            uuid: Uuid::nil(),
            rootfs: "/r".into(),
            args: vec!["sh".into()],
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

    fn plan() -> Plan {
        Plan {
            uuid: Uuid::nil(),
            hostname: "web-1".into(),
            netns: None,
            cgroup_parent: "/capsule/x".into(),
            sandbox_rootfs: "/s".into(),
            restart_policy: RestartPolicy::Always,
            max_retries: 0,
            init_containers: vec![container("init")],
            containers: vec![container("a"), container("b")],
            limits: CapsuleLimits {
                pids_max: Some(100),
                logs: Some(LogRotation {
                    max_bytes: 1 << 20,
                    max_files: 3,
                }),
            },
        }
    }

    #[test]
    fn a_good_plan_passes_and_round_trips() {
        let p = plan();
        p.validate().unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), p);
        assert_eq!(p.cgroup_of("a"), "/capsule/x/a");
    }

    #[test]
    fn bad_plans_are_refused() {
        type Change = Box<dyn Fn(&mut Plan)>;
        let cases: Vec<(&str, Change)> = vec![
            ("dup", Box::new(|p| p.containers[1].name = "init".into())),
            ("upper", Box::new(|p| p.containers[0].name = "A".into())),
            (
                "traversal",
                Box::new(|p| p.containers[0].name = "../x".into()),
            ),
            ("root cgroup", Box::new(|p| p.cgroup_parent = "/".into())),
            (
                "relative cgroup",
                Box::new(|p| p.cgroup_parent = "capsule".into()),
            ),
            (
                "dotdot cgroup",
                Box::new(|p| p.cgroup_parent = "/a/../b".into()),
            ),
            ("no apps", Box::new(|p| p.containers.clear())),
            ("no pids", Box::new(|p| p.limits.pids_max = Some(0))),
            (
                "one log file",
                Box::new(|p| {
                    p.limits.logs = Some(LogRotation {
                        max_bytes: 10,
                        max_files: 1,
                    })
                }),
            ),
            ("no args", Box::new(|p| p.containers[0].args.clear())),
            ("hostname", Box::new(|p| p.hostname = "a b".into())),
            (
                "mount dest",
                Box::new(|p| {
                    p.containers[0].mounts.push(MountPlan {
                        source: "/x".into(),
                        destination: "/a/../../etc".into(),
                        read_only: false,
                    })
                }),
            ),
        ];
        for (what, change) in cases {
            let mut p = plan();
            change(&mut p);
            assert!(p.validate().is_err(), "{what} passed");
        }
    }

    #[test]
    fn the_cgroup_to_clean_comes_only_from_a_runnable_plan() {
        let dir = std::env::temp_dir().join(format!("shim-plan-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Plan::cgroup_parent_of(&dir).unwrap(), None);
        let file = dir.join(super::super::PLAN_FILE);
        std::fs::write(&file, b"{nope").unwrap();
        assert_eq!(Plan::cgroup_parent_of(&dir).unwrap(), None);
        let mut p = plan();
        p.cgroup_parent = "/".into();
        std::fs::write(&file, serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(Plan::cgroup_parent_of(&dir).unwrap(), None);
        std::fs::write(&file, serde_json::to_vec(&plan()).unwrap()).unwrap();
        assert_eq!(
            Plan::cgroup_parent_of(&dir).unwrap().as_deref(),
            Some("/capsule/x")
        );
        assert_eq!(Plan::load(&dir).unwrap(), plan());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_plan_written_before_limits_existed_has_none() {
        let mut json = serde_json::to_value(plan()).unwrap();
        json.as_object_mut().unwrap().remove("limits");
        for c in json["containers"].as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("net_raw");
        }
        let old: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(old.limits, CapsuleLimits::default());
        assert!(!old.containers[0].net_raw);
    }

    #[test]
    fn restart_policy_table() {
        use RestartPolicy::*;
        for (policy, code, expected) in [
            (Always, 0, true),
            (Always, 1, true),
            (OnFailure, 0, false),
            (OnFailure, 1, true),
            (OnFailure, 137, true),
            (Never, 1, false),
            (Never, 0, false),
        ] {
            assert_eq!(policy.restarts(code), expected, "{policy:?} {code}");
        }
    }
}
