//! The per-capsule shim: sandbox, init and app containers through libcontainer; logs, restarts, reaping (see docs/runtime.md).
//!
//! Two halves share this module:
//!
//! - the shim process itself (`capsule-shim start --dir <capsule_dir>`, see [`daemon`]): a
//!   single-threaded poll(2) loop that creates the containers with youki's libcontainer, is
//!   their parent and reaper, writes their output to CRI-format logs, applies the restart
//!   policy and answers newline-delimited JSON on `<dir>/shim.sock`;
//! - the agent's side ([`spawn`], [`status`], [`watch`], [`shutdown`], [`is_alive`]), async on
//!   tokio, which never clones a container itself. The pod runtime reaches it through
//!   [`ShimDriver`]: [`Shims`] is the real driver, [`fake::FakeShims`] a recording fake.
//!
//! The agent writes a [`Plan`] to `<dir>/plan.json` and starts the shim; the shim answers
//! [`Status`]es. Besides the files docs/runtime.md lists, the shim keeps `shim.log` (its own
//! log), `bundles/<container>/config.json` (the OCI specs it built) and `etc/` (the
//! `hostname`, `hosts` and `resolv.conf` it bind-mounts read-only into every container).

mod actions;
pub(crate) mod cgroup;
mod client;
pub mod daemon;
mod driver;
mod exec;
mod exec_client;
pub mod fake;
mod lifecycle;
mod log;
pub(crate) mod logfile;
mod netlink;
mod plan;
mod protocol;
mod rootfs;
mod server;
mod spec;
mod state;
mod status;

pub use client::{act, events, is_alive, shutdown, spawn, status, watch};
pub use driver::{ShimDriver, Shims};
pub use exec_client::{exec, resize_terminal, ExecIo, ExecRequest, ExecStart, ExecWait, FdStream};
pub use logfile::rotated_path;
pub use plan::{
    CapsuleLimits, ContainerPlan, LogRotation, MountPlan, Plan, PlanError, RestartPolicy,
};
pub use protocol::{
    ActReply, ActResult, Action, ErrorReply, EventsReply, ExecExit, ExecReply, Request, ShimEvent,
    ShutdownReply,
};
pub use rootfs::{ensure_sandbox_rootfs, PAUSE};
pub use status::{ContainerState, ContainerStatus, Phase, Status};

use std::path::{Path, PathBuf};

/// The name of the plan file in a capsule directory.
pub const PLAN_FILE: &str = "plan.json";
/// The name of the shim's socket in a capsule directory.
pub const SOCKET_FILE: &str = "shim.sock";
/// The name of the shim's pid file in a capsule directory.
pub const PID_FILE: &str = "shim.pid";
/// The name of the shim's own log in a capsule directory.
pub const SHIM_LOG_FILE: &str = "shim.log";

/// `dir/name` by a path short enough for a unix socket address (108 bytes) however long `dir`
/// is: `/proc/self/fd/<n>/name`, through a descriptor of `dir` held while this lives.
pub(crate) struct ShortPath {
    _dir: std::fs::File,
    path: PathBuf,
}

impl ShortPath {
    /// Opens `dir` (`O_PATH`) for a short path to `dir/name`.
    pub(crate) fn new(dir: &Path, name: &str) -> std::io::Result<Self> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)?;
        let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", f.as_raw_fd()));
        Ok(Self { _dir: f, path })
    }

    /// The short path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The path of container `name`'s log in capsule directory `dir` (the file being written;
/// rotated ones are [`rotated_path`]s of it).
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("logs").join(format!("{name}.log"))
}

/// A failure of the agent-side shim API.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// `capsule-shim start` could not be run.
    #[error("cannot run {binary}")]
    Exec {
        /// The shim binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The shim reported that it could not start; the text is its own.
    #[error("the shim did not start: {0}")]
    Start(String),
    /// No shim answers on the capsule's socket.
    #[error("no shim answers at {path}")]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The conversation with the shim failed half-way.
    #[error("talking to the shim at {path}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The shim answered something that is not the protocol.
    #[error("the shim answered {answer:?}")]
    Protocol {
        /// What it answered.
        answer: String,
    },
    /// The shim did not answer in time.
    #[error("the shim did not answer {what} within {after:?}")]
    Timeout {
        /// The request.
        what: &'static str,
        /// How long we waited.
        after: std::time::Duration,
    },
    /// The capsule failed while starting; the words are the shim's.
    #[error("{reason}")]
    Failed {
        /// Why, as the shim reported it.
        reason: String,
    },
    /// The shim exited before the capsule's containers all ran.
    #[error("the capsule's shim exited while starting it")]
    ExitedWhileStarting,
    /// The capsule's containers were not all running in time.
    #[error("the capsule's containers did not all start within {seconds} s")]
    StartTimeout {
        /// The time allowed.
        seconds: u64,
    },
    /// No shim binary is where the configuration (or the default) says.
    #[error("no shim binary at {}", path.display())]
    NoBinary {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The agent's own binary, next to which the shim is by default, cannot be found.
    #[error("cannot find my own binary")]
    OwnBinary(#[source] std::io::Error),
    /// The sandbox's root filesystem cannot be laid out.
    #[error("cannot lay out {}", path.display())]
    SandboxRootfs {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Leftovers of a dead shim could not all be removed; every failure is listed.
    #[error("cleaning up after the shim: {}", .0.join("; "))]
    Cleanup(Vec<String>),
}

/// An error and its sources, joined by `": "` (libcontainer's errors put the useful part at the
/// end of the chain).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    crate::chain::chain(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_joins_sources_once() {
        let inner = std::io::Error::other("disk on fire");
        let outer = ShimError::Io {
            path: "/x/shim.sock".into(),
            source: inner,
        };
        assert_eq!(
            error_chain(&outer),
            "talking to the shim at /x/shim.sock: disk on fire"
        );
    }
}
