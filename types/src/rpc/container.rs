//! What the API asks of one running container, and what its host answers and reports: the
//! lifecycle actions (stop, start, restart, kill, pause, unpause), the calls (exec, exec
//! resize, top, stats, archives) and the events a container's history is made of.
//!
//! Sizes and shapes are checked by the API before anything is sent (a command of 0 or too
//! many arguments, a bad signal, `ps` arguments with shell metacharacters, an archive over the
//! limit get a 4xx there); the host checks again and answers `Invalid` rather than trust them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A lifecycle action (a cast: the API answers 202 and the host reports the outcome as a
/// [`ContainerEvent`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ContainerAction {
    /// Stop: the image's stop signal (SIGTERM if it names none), then SIGKILL once the grace
    /// period is over. A container a user stopped stays stopped: its restart policy does not
    /// bring it back until it is started.
    Stop {
        /// Grace period, seconds; `None`: the capsule's `terminationGracePeriodSeconds`, else
        /// the host's default.
        timeout_seconds: Option<u64>,
    },
    /// Start a stopped (or exited) container again.
    Start,
    /// Stop (as `Stop`), then start.
    Restart {
        /// As in `Stop`.
        timeout_seconds: Option<u64>,
    },
    /// Send a signal to the container's main process.
    Kill {
        /// The signal number (1 to 64).
        signal: i32,
    },
    /// Freeze every process of the container (cgroup freezer).
    Pause,
    /// Thaw it.
    Unpause,
}

impl ContainerAction {
    /// The action's name in Zun's history (`stop`, `start`, `reboot`, `kill`, `pause`,
    /// `unpause`).
    pub fn zun_name(&self) -> &'static str {
        match self {
            ContainerAction::Stop { .. } => "stop",
            ContainerAction::Start => "start",
            ContainerAction::Restart { .. } => "reboot",
            ContainerAction::Kill { .. } => "kill",
            ContainerAction::Pause => "pause",
            ContainerAction::Unpause => "unpause",
        }
    }
}

/// A call on a container (answered with a [`ContainerReply`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum ContainerCall {
    /// Run `command` in the container, as the container itself runs (its namespaces, cgroup,
    /// user, environment, working directory, seccomp profile, no new privileges). Not
    /// interactive: wait for it (bounded) and answer its output and exit code
    /// ([`ContainerReply::Exec`]). Interactive: start it attached to a terminal (`tty`) or to
    /// plain pipes, and answer a grant to its stream ([`ContainerReply::ExecSession`]); the
    /// process is killed when the stream ends or the grant expires unused.
    Exec {
        /// The command and its arguments (not a shell line).
        command: Vec<String>,
        /// Stream it rather than wait for it.
        interactive: bool,
        /// With a terminal (interactive only).
        tty: bool,
    },
    /// Resize the terminal of interactive exec `exec_id`.
    ExecResize {
        /// The exec session.
        exec_id: Uuid,
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// The container's processes as `ps` lists them with `ps_args` (checked words only).
    Top {
        /// Arguments for `ps` (`None`: `-ef`).
        ps_args: Option<String>,
    },
    /// CPU, memory, block and network I/O figures of the container now.
    Stats,
    /// A tar archive of `path` in the container (a file or a directory).
    GetArchive {
        /// An absolute path inside the container.
        path: String,
    },
    /// Extract a tar archive into directory `path` in the container.
    PutArchive {
        /// An absolute path inside the container (an existing directory).
        path: String,
        /// The archive, base64 (standard alphabet, padded).
        data: String,
    },
}

impl ContainerCall {
    /// The call's name, for logs and history (`exec`, `exec_resize`, `top`, `stats`,
    /// `get_archive`, `put_archive`).
    pub fn name(&self) -> &'static str {
        match self {
            ContainerCall::Exec { .. } => "exec",
            ContainerCall::ExecResize { .. } => "exec_resize",
            ContainerCall::Top { .. } => "top",
            ContainerCall::Stats => "stats",
            ContainerCall::GetArchive { .. } => "get_archive",
            ContainerCall::PutArchive { .. } => "put_archive",
        }
    }
}

/// The answer to a [`ContainerCall`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ContainerReply {
    /// A non-interactive exec's outcome.
    Exec {
        /// Standard output and standard error, interleaved as written (lossy UTF-8).
        output: String,
        /// The exit code (128 + n when killed by signal n).
        exit_code: i32,
    },
    /// An interactive exec, waiting for its stream.
    ExecSession {
        /// The session (for resizes).
        exec_id: Uuid,
        /// Where and how to attach.
        stream: StreamGrant,
    },
    /// `ps` output.
    Top {
        /// Column titles.
        titles: Vec<String>,
        /// One row per process, a field per title.
        processes: Vec<Vec<String>>,
    },
    /// Resource figures.
    Stats {
        /// The figures.
        stats: ContainerStats,
    },
    /// A `GetArchive`'s archive.
    Archive {
        /// The tar archive, base64.
        data: String,
        /// What `path` is.
        stat: ArchiveStat,
    },
    /// Done (`ExecResize`, `PutArchive`).
    Done,
    /// No such capsule, container, exec session or path (404).
    NotFound {
        /// Why, for users.
        message: String,
    },
    /// Not possible in the container's state (exec into a stopped container, ...) (409).
    Conflict {
        /// Why, for users.
        message: String,
    },
    /// The request itself is wrong (a path that leaves the container, a bad archive) (400).
    Invalid {
        /// Why, for users.
        message: String,
    },
    /// Over a size limit (413).
    TooLarge {
        /// Why, for users.
        message: String,
    },
    /// The host cannot do it now (503).
    Unavailable {
        /// Why, for users.
        message: String,
    },
}

/// Access to one interactive exec's stream on its compute host: good once, and only until
/// `expires_at`. The API attaches its client's websocket to it; the host holds the grant and
/// refuses any other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamGrant {
    /// The host's stream listener (`host:port`), as the host advertises it.
    pub address: String,
    /// The secret that opens this one stream (random, single use).
    pub grant: String,
    /// When an unused grant lapses (and its process is killed).
    pub expires_at: DateTime<Utc>,
}

/// A container's resource figures, from its cgroup and its capsule's network namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// CPU use over the last sampling interval, percent of one CPU.
    pub cpu_percent: f64,
    /// Memory in use (working set), bytes.
    pub memory_usage_bytes: u64,
    /// Memory limit, bytes (the host's memory when unlimited).
    pub memory_limit_bytes: u64,
    /// Bytes read from block devices.
    pub block_read_bytes: u64,
    /// Bytes written to block devices.
    pub block_write_bytes: u64,
    /// Bytes received on the capsule's network interfaces.
    pub network_rx_bytes: u64,
    /// Bytes sent on the capsule's network interfaces.
    pub network_tx_bytes: u64,
}

/// What an archived path is (Docker's `X-Docker-Container-Path-Stat`, as Zun answers it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveStat {
    /// The base name.
    pub name: String,
    /// Size, bytes.
    pub size: u64,
    /// Mode bits (with the file type, as Go's `os.FileMode`).
    pub mode: u32,
    /// Modification time (RFC 3339).
    pub mtime: String,
    /// A symbolic link's target (empty otherwise).
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// What happened to a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerEventKind {
    /// Created by its capsule's create.
    Created,
    /// Started (by a create, or by a `Start`/`Restart` action).
    Started,
    /// Its main process exited by itself.
    Exited,
    /// Killed by the kernel for memory.
    OomKilled,
    /// Restarted by its restart policy.
    Restarted,
    /// Stopped by a `Stop` action.
    Stopped,
    /// Signalled by a `Kill` action.
    Killed,
    /// Frozen by a `Pause` action.
    Paused,
    /// Thawed by an `Unpause` action.
    Unpaused,
    /// A command was run in it (`Exec`).
    Exec,
    /// Its liveness probe failed: it is killed, and its restart policy applies.
    Unhealthy,
}

/// One event of a container's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerEvent {
    /// The capsule.
    pub capsule: Uuid,
    /// The container.
    pub container: Uuid,
    /// What happened.
    pub kind: ContainerEventKind,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it was over.
    pub finished_at: DateTime<Utc>,
    /// The request it answers (an action's id in the API's history); `None` for what the
    /// runtime did by itself.
    #[serde(default)]
    pub request_id: Option<String>,
    /// An exit code, where there is one.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it failed, for users (`None`: it succeeded).
    #[serde(default)]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::ComputeRequest;
    use serde_json::json;

    #[test]
    fn container_requests_are_tagged_and_calls_are_known() {
        let stop = ComputeRequest::ContainerAction {
            capsule: Uuid::nil(),
            container: None,
            action: ContainerAction::Stop {
                timeout_seconds: Some(5),
            },
        };
        let v = serde_json::to_value(&stop).unwrap();
        assert_eq!(v["method"], "container_action");
        assert_eq!(v["action"], json!({"action": "stop", "timeout_seconds": 5}));
        assert!(!stop.is_call());
        let top = ComputeRequest::ContainerCall {
            capsule: Uuid::nil(),
            container: Uuid::nil(),
            call: ContainerCall::Top { ps_args: None },
        };
        assert_eq!(serde_json::to_value(&top).unwrap()["call"]["call"], "top");
        assert!(top.is_call());
        let reply = ContainerReply::Exec {
            output: "hi\n".into(),
            exit_code: 0,
        };
        let v = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            v,
            json!({"result": "exec", "output": "hi\n", "exit_code": 0})
        );
        assert_eq!(
            ContainerAction::Restart {
                timeout_seconds: None
            }
            .zun_name(),
            "reboot"
        );
    }
}
