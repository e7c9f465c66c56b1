//! The shim process's state, shared by its modules, and the one way it is published: a
//! [`Status`] to the clients on `shim.sock`.
//!
//! The modules depend on each other one way only: `daemon` (the process and its poll loop) uses
//! `server` (the clients' requests), which uses `lifecycle` (the containers), and all of them
//! use this module; none of them is used by the ones it uses.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use capsule_types::rpc::ContainerEventKind;
use chrono::Utc;

use libcontainer::container::Container;
use nix::fcntl::Flock;
use nix::sys::signalfd::SignalFd;
use serde::Serialize;

use super::cgroup::Hierarchy;
use super::log::LineSplitter;
use super::logfile::LogFile;
use super::plan::{ContainerPlan, Plan};
use super::protocol::{ActResult, ShimEvent};
use super::spec::Host;
use super::status::{ContainerStatus, Phase, Status};

/// Locked by the running shim.
pub(super) const LOCK_FILE: &str = "shim.lock";
/// The grace a shutdown gives when the request names none (and on SIGTERM).
pub(super) const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// The first restart back-off.
pub(super) const BACKOFF_START: Duration = Duration::from_millis(100);
/// Output queued for one client beyond which it is let go.
const MAX_PENDING_OUTPUT: usize = 4 * 1024 * 1024;
/// Events kept for an agent that was away.
const EVENTS_KEPT: usize = 512;

/// The shim process: its capsule, its containers, its clients.
pub(super) struct Shim {
    pub(super) dir: PathBuf,
    pub(super) plan: Plan,
    pub(super) host: Host,
    pub(super) hierarchies: Vec<Hierarchy>,
    pub(super) phase: Phase,
    pub(super) reason: Option<String>,
    pub(super) sandbox: Option<Container>,
    pub(super) sandbox_pid: Option<i32>,
    pub(super) units: Vec<Unit>,
    pub(super) n_init: usize,
    pub(super) next_init: usize,
    pub(super) listener: UnixListener,
    pub(super) signals: SignalFd,
    pub(super) clients: Vec<Client>,
    pub(super) pipes: Vec<Pipe>,
    pub(super) stopping: Option<Stopping>,
    pub(super) last_sent: Option<Status>,
    pub(super) exit: bool,
    /// The runtime's own events (exits, restarts...), the last [`EVENTS_KEPT`].
    pub(super) events: VecDeque<ShimEvent>,
    pub(super) event_seq: u64,
    /// Processes exec'd into containers, until reaped.
    pub(super) execs: Vec<ExecProc>,
    pub(super) next_exec: u64,
    /// Exec cgroups to remove once their processes are gone.
    pub(super) dead_exec_cgroups: Vec<String>,
    /// Held until the process exits: no second shim for the capsule.
    pub(super) _lock: Flock<File>,
}

/// Words for a failed I/O call: `<what>: <error>`.
pub(super) fn io_err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// One container of the capsule and what the shim knows of it.
pub(super) struct Unit {
    pub(super) plan: ContainerPlan,
    /// libcontainer's id.
    pub(super) id: String,
    pub(super) cgroup: String,
    pub(super) status: ContainerStatus,
    pub(super) container: Option<Container>,
    pub(super) bundle: Option<PathBuf>,
    pub(super) started: Option<Instant>,
    pub(super) backoff: Duration,
    pub(super) restart_at: Option<Instant>,
    pub(super) log: SharedLog,
    /// A user's stop under way.
    pub(super) stop: Option<UnitStop>,
    /// Start again once stopped (a restart).
    pub(super) start_after_stop: bool,
}

/// A user's stop of one container: SIGKILL at `deadline`.
pub(super) struct UnitStop {
    pub(super) deadline: Instant,
    pub(super) killed: bool,
}

/// A process exec'd into a container.
pub(super) struct ExecProc {
    pub(super) id: u64,
    pub(super) pid: i32,
    /// Its own cgroup, below its container's.
    pub(super) cgroup: String,
    /// Its client went away: it was killed.
    pub(super) orphaned: bool,
}

/// An action waiting for its containers to settle before it is answered.
pub(super) struct PendingAct {
    pub(super) units: Vec<usize>,
    pub(super) results: Vec<ActResult>,
}

/// A container's log, written by both its output pipes.
pub(super) type SharedLog = Rc<RefCell<LogFile>>;

/// A container's output pipe, carried line by line to its log.
pub(super) struct Pipe {
    pub(super) fd: OwnedFd,
    pub(super) splitter: LineSplitter,
    pub(super) log: SharedLog,
    pub(super) closed: bool,
}

/// How far a shutdown got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    Containers,
    Sandbox,
    Done,
}

/// A shutdown under way.
pub(super) struct Stopping {
    pub(super) stage: Stage,
    pub(super) deadline: Instant,
    pub(super) killed: bool,
}

/// A connection on `shim.sock`.
pub(super) struct Client {
    pub(super) stream: UnixStream,
    pub(super) input: Vec<u8>,
    pub(super) output: Vec<u8>,
    pub(super) watching: bool,
    pub(super) awaiting_shutdown: bool,
    pub(super) closed: bool,
    /// An action to answer once done.
    pub(super) pending_act: Option<PendingAct>,
    /// The exec this connection holds (see [`ExecProc`]).
    pub(super) exec: Option<u64>,
}

impl Shim {
    /// How the capsule stands now.
    pub(super) fn status(&self) -> Status {
        Status {
            phase: self.phase,
            reason: self.reason.clone(),
            sandbox_pid: self.sandbox_pid,
            containers: self.units.iter().map(|u| u.status.clone()).collect(),
        }
    }

    pub(super) fn flush_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        while !c.output.is_empty() {
            match c.stream.write(&c.output) {
                Ok(0) => {
                    c.closed = true;
                    return;
                }
                Ok(n) => {
                    c.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.closed = true;
                    return;
                }
            }
        }
    }

    /// Records something the runtime did by itself.
    pub(super) fn record(&mut self, i: usize, kind: ContainerEventKind, exit_code: Option<i32>) {
        self.event_seq += 1;
        let e = ShimEvent {
            seq: self.event_seq,
            container: self.units[i].plan.uuid,
            kind,
            at: Utc::now(),
            exit_code,
        };
        if self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Sends the status to every watcher if it changed since the last time.
    pub(super) fn broadcast(&mut self) {
        let s = self.status();
        if self.last_sent.as_ref() == Some(&s) {
            return;
        }
        for i in 0..self.clients.len() {
            if self.clients[i].watching && !self.clients[i].closed {
                send(&mut self.clients[i], &s);
                self.flush_client(i);
            }
        }
        self.last_sent = Some(s);
    }
}

/// Queues `value` as one JSON line to client `c` (a client that does not read is let go).
pub(super) fn send<T: Serialize>(c: &mut Client, value: &T) {
    if c.output.len() > MAX_PENDING_OUTPUT {
        // A watcher that does not read: let it go.
        c.closed = true;
        return;
    }
    if let Ok(mut line) = serde_json::to_vec(value) {
        line.push(b'\n');
        c.output.extend_from_slice(&line);
    }
}
