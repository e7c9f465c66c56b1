//! The shim process (`capsule-shim start --dir <capsule_dir>`).
//!
//! [`start`] forks: the parent waits until the child reports that it listens on `shim.sock`
//! (or why it could not) and exits 0 (or 1, with the reason on stderr), so the agent simply
//! runs it and waits. The child is the shim: its own session, a child subreaper, stdio on
//! `/dev/null` and `shim.log`, one thread. libcontainer clones from the calling process, which
//! must therefore stay single-threaded: everything happens in one poll(2) loop over a signalfd
//! (SIGCHLD, SIGTERM, SIGINT), the listening socket, the clients and the containers' output
//! pipes, with timers for restarts and shutdown grace.
//!
//! Order of a capsule: the sandbox (pause), then each init container to completion, then every
//! app container; exits are reaped here (libcontainer makes every container's init a child of
//! the caller), logged, classified (OOM from the memory cgroup) and restarted per the plan's
//! policy with a back-off of 100 ms doubling to 10 s, reset after 10 s of running.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::Utc;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, Flock, FlockArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2, pipe2, Pid};
use oci_spec::runtime::Spec;
use serde::Serialize;

use super::cgroup::{self, Hierarchy};
use super::log::{timestamp, LineSplitter, Stream};
use super::plan::{ContainerPlan, Plan, SANDBOX_CGROUP};
use super::protocol::{ErrorReply, Request, ShutdownReply};
use super::spec::{self, Host};
use super::status::{ContainerState, ContainerStatus, Phase, Status};
use super::{error_chain, netlink, PID_FILE, SHIM_LOG_FILE, SOCKET_FILE};

const DEFAULT_GRACE: Duration = Duration::from_secs(10);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// A container that ran this long starts its back-off over.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// How long the pause process gets between SIGTERM and SIGKILL.
const SANDBOX_GRACE: Duration = Duration::from_secs(2);
/// How long SIGKILLed processes get to be reaped before the shim stops waiting.
const REAP_PATIENCE: Duration = Duration::from_secs(3);
const MAX_REQUEST: usize = 64 * 1024;
const MAX_PENDING_OUTPUT: usize = 4 * 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// Locked by the running shim.
const LOCK_FILE: &str = "shim.lock";

/// Runs `capsule-shim start --dir <dir>`: returns the process's exit code (in the parent; the
/// child, the shim, exits on its own).
pub fn start(dir: &Path) -> i32 {
    let dir = match dir.canonicalize() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("capsule-shim: cannot use {}: {e}", dir.display());
            return 1;
        }
    };
    let plan = match Plan::load(&dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("capsule-shim: {}", error_chain(&e));
            return 1;
        }
    };
    match thread_count() {
        Some(1) => {}
        n => {
            eprintln!("capsule-shim: must start single-threaded (threads: {n:?})");
            return 1;
        }
    }
    let (ready_r, ready_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("capsule-shim: pipe: {e}");
            return 1;
        }
    };
    match fork_single_threaded() {
        Err(e) => {
            eprintln!("capsule-shim: fork: {e}");
            1
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(ready_w);
            wait_ready(ready_r, child)
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(ready_r);
            let code = match Shim::setup(dir, plan) {
                Ok(shim) => {
                    let _ = nix::unistd::write(&ready_w, b"ready\n");
                    drop(ready_w);
                    shim.run()
                }
                Err(msg) => {
                    let _ = nix::unistd::write(&ready_w, format!("error: {msg}\n").as_bytes());
                    1
                }
            };
            std::process::exit(code)
        }
    }
}

#[allow(unsafe_code)]
fn fork_single_threaded() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: the caller checked that this process has a single thread (the shim binary starts
    // none), so no lock or allocator state can be held by another thread across the fork and
    // the child may run any code.
    unsafe { nix::unistd::fork() }
}

fn thread_count() -> Option<usize> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_ready(ready: OwnedFd, child: Pid) -> i32 {
    let mut answer = String::new();
    let _ = File::from(ready).read_to_string(&mut answer);
    if answer.starts_with("ready") {
        return 0;
    }
    let status = waitpid(child, None);
    match answer.strip_prefix("error: ") {
        Some(msg) => eprintln!("capsule-shim: {}", msg.trim_end()),
        None => eprintln!("capsule-shim: the shim exited before it was ready ({status:?})"),
    }
    1
}

/// Resets what the shim changed in its own process and a container would inherit through
/// exec: the blocked signals (the shim blocks SIGCHLD/SIGTERM/SIGINT for its signalfd) and
/// SIGPIPE (ignored by the Rust runtime). Then runs libcontainer's default executor.
#[derive(Clone)]
struct ShimExecutor;

impl Executor for ShimExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        SigSet::empty()
            .thread_set_mask()
            .map_err(|e| ExecutorError::Other(format!("cannot reset the signal mask: {e}")))?;
        default_sigpipe()
            .map_err(|e| ExecutorError::Other(format!("cannot reset SIGPIPE: {e}")))?;
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

#[allow(unsafe_code)]
fn default_sigpipe() -> nix::Result<()> {
    // SAFETY: SIG_DFL installs no handler, so no handler can run in an unsafe context; this
    // runs in the container's init process just before exec.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) }
        .map(drop)
}

/// One container of the capsule and what the shim knows of it.
struct Unit {
    plan: ContainerPlan,
    /// libcontainer's id.
    id: String,
    cgroup: String,
    status: ContainerStatus,
    container: Option<Container>,
    bundle: Option<PathBuf>,
    started: Option<Instant>,
    backoff: Duration,
    restart_at: Option<Instant>,
    log: Rc<File>,
}

struct Pipe {
    fd: OwnedFd,
    splitter: LineSplitter,
    log: Rc<File>,
    closed: bool,
}

struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    watching: bool,
    awaiting_shutdown: bool,
    closed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Containers,
    Sandbox,
    Done,
}

struct Stopping {
    stage: Stage,
    deadline: Instant,
    killed: bool,
}

struct Shim {
    dir: PathBuf,
    plan: Plan,
    host: Host,
    hierarchies: Vec<Hierarchy>,
    phase: Phase,
    reason: Option<String>,
    sandbox: Option<Container>,
    sandbox_pid: Option<i32>,
    units: Vec<Unit>,
    n_init: usize,
    next_init: usize,
    listener: UnixListener,
    signals: SignalFd,
    clients: Vec<Client>,
    pipes: Vec<Pipe>,
    stopping: Option<Stopping>,
    last_sent: Option<Status>,
    exit: bool,
    /// Held until the process exits: no second shim for the capsule.
    _lock: Flock<File>,
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// `RLIMIT_NOFILE`'s hard limit, from `/proc/self/limits`.
fn nofile_hard() -> u64 {
    fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned))
        })
        .and_then(|v| {
            if v == "unlimited" {
                Some(u64::MAX)
            } else {
                v.parse().ok()
            }
        })
        .unwrap_or(1024)
}

fn write_file(path: &Path, content: &[u8]) -> Result<(), String> {
    fs::write(path, content).map_err(io_err(format!("cannot write {}", path.display())))
}

impl Shim {
    /// Everything before the shim answers: on failure, the reason (and nothing left behind
    /// that a retry would trip over).
    fn setup(dir: PathBuf, plan: Plan) -> Result<Shim, String> {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("subreaper: {e}"))?;
        for sub in ["logs", "runtime", "bundles", "etc"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(io_err(format!("cannot create {}", dir.join(sub).display())))?;
        }
        let pid_path = dir.join(PID_FILE);
        // One shim per capsule: the lock lives as long as this process.
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::create(&lock_path)
            .map_err(io_err(format!("cannot open {}", lock_path.display())))?;
        let lock = match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, Errno::EWOULDBLOCK)) => {
                let pid = fs::read_to_string(&pid_path).unwrap_or_default();
                return Err(format!(
                    "a shim already runs for {} (pid {})",
                    dir.display(),
                    pid.trim()
                ));
            }
            Err((_, e)) => return Err(format!("cannot lock {}: {e}", lock_path.display())),
        };

        // Our stdio: nothing in, our log out; the agent's pipes must not stay open.
        let log_path = dir.join(SHIM_LOG_FILE);
        let log =
            open_log(&log_path).map_err(io_err(format!("cannot open {}", log_path.display())))?;
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(io_err("cannot open /dev/null"))?;
        for (from, to) in [
            (null.as_raw_fd(), 0),
            (null.as_raw_fd(), 1),
            (log.as_raw_fd(), 2),
        ] {
            dup2(from, to).map_err(|e| format!("dup2: {e}"))?;
        }
        init_tracing(log);

        let mut mask = SigSet::empty();
        for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
            mask.add(s);
        }
        mask.thread_block()
            .map_err(|e| format!("sigprocmask: {e}"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("signalfd: {e}"))?;

        super::rootfs::ensure_sandbox_rootfs(&plan.sandbox_rootfs).map_err(io_err(format!(
            "cannot lay out the sandbox rootfs {}",
            plan.sandbox_rootfs.display()
        )))?;
        let etc = dir.join("etc");
        write_file(
            &etc.join("hostname"),
            format!("{}\n", plan.hostname).as_bytes(),
        )?;
        write_file(
            &etc.join("hosts"),
            spec::hosts_file(&plan.hostname).as_bytes(),
        )?;
        let resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
        write_file(&etc.join("resolv.conf"), &resolv)?;

        let hierarchies = cgroup::hierarchies().map_err(io_err("cannot list cgroup mounts"))?;
        let host = Host {
            nofile_hard: nofile_hard(),
            cgroup_mounts: cgroup::controller_mounts(&hierarchies),
            memsw: cgroup::has_memsw(&hierarchies),
        };

        let mut units = Vec::new();
        for (c, init) in plan
            .init_containers
            .iter()
            .map(|c| (c, true))
            .chain(plan.containers.iter().map(|c| (c, false)))
        {
            let log_path = super::log_path(&dir, &c.name);
            let log = open_log(&log_path)
                .map_err(io_err(format!("cannot open {}", log_path.display())))?;
            units.push(Unit {
                id: format!("{}-{}", plan.uuid, c.name),
                cgroup: plan.cgroup_of(&c.name),
                status: ContainerStatus {
                    name: c.name.clone(),
                    uuid: c.uuid,
                    init,
                    state: ContainerState::Created,
                    pid: None,
                    exit_code: None,
                    restart_count: 0,
                    reason: None,
                    started_at: None,
                    finished_at: None,
                },
                plan: c.clone(),
                container: None,
                bundle: None,
                started: None,
                backoff: BACKOFF_START,
                restart_at: None,
                log: Rc::new(log),
            });
        }

        let sock_path = dir.join(SOCKET_FILE);
        let _ = fs::remove_file(&sock_path);
        // Through a short path: the capsule directory may be deeper than a socket address
        // can name.
        let listener = super::ShortPath::new(&dir, SOCKET_FILE)
            .and_then(|short| UnixListener::bind(short.path()))
            .map_err(io_err(format!("cannot listen on {}", sock_path.display())))?;
        let cleanup = |e: String| {
            let _ = fs::remove_file(&sock_path);
            e
        };
        fs::set_permissions(&sock_path, fs::Permissions::from_mode(0o600))
            .map_err(io_err("chmod shim.sock"))
            .map_err(cleanup)?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("nonblocking listener"))
            .map_err(cleanup)?;
        let tmp = dir.join(format!(".{PID_FILE}.tmp"));
        write_file(&tmp, format!("{}\n", std::process::id()).as_bytes())
            .and_then(|()| fs::rename(&tmp, &pid_path).map_err(io_err("cannot write shim.pid")))
            .map_err(cleanup)?;

        tracing::info!(capsule = %plan.uuid, dir = %dir.display(), "shim ready");
        Ok(Shim {
            n_init: plan.init_containers.len(),
            dir,
            plan,
            host,
            hierarchies,
            phase: Phase::Starting,
            reason: None,
            sandbox: None,
            sandbox_pid: None,
            units,
            next_init: 0,
            listener,
            signals,
            clients: Vec::new(),
            pipes: Vec::new(),
            stopping: None,
            last_sent: None,
            exit: false,
            _lock: lock,
        })
    }

    fn status(&self) -> Status {
        Status {
            phase: self.phase,
            reason: self.reason.clone(),
            sandbox_pid: self.sandbox_pid,
            containers: self.units.iter().map(|u| u.status.clone()).collect(),
        }
    }

    fn run(mut self) -> i32 {
        while !self.exit {
            self.advance();
            self.broadcast();
            if self.exit {
                break;
            }
            let timeout = match self.next_deadline() {
                None => PollTimeout::NONE,
                Some(at) => {
                    let wait =
                        at.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
                    PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX)
                }
            };
            let revents = {
                let mut fds = Vec::with_capacity(2 + self.clients.len() + self.pipes.len());
                fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
                fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
                for c in &self.clients {
                    let mut ev = PollFlags::POLLIN;
                    if !c.output.is_empty() {
                        ev |= PollFlags::POLLOUT;
                    }
                    fds.push(PollFd::new(c.stream.as_fd(), ev));
                }
                for p in &self.pipes {
                    fds.push(PollFd::new(p.fd.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => {
                        tracing::error!("poll: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                    .collect::<Vec<_>>()
            };
            let (clients_at, pipes_at) = (2, 2 + self.clients.len());
            if !revents[0].is_empty() {
                self.on_signals();
            }
            for (i, ev) in revents[pipes_at..].iter().enumerate() {
                if !ev.is_empty() {
                    self.on_pipe(i);
                }
            }
            for (i, ev) in revents[clients_at..pipes_at].iter().enumerate() {
                if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.on_client_input(i);
                }
                if ev.contains(PollFlags::POLLOUT) {
                    self.flush_client(i);
                }
            }
            if !revents[1].is_empty() {
                self.accept();
            }
            self.clients.retain(|c| !c.closed);
            self.pipes.retain(|p| !p.closed);
        }
        tracing::info!("shim exits");
        0
    }

    fn next_deadline(&self) -> Option<Instant> {
        let restarts = self.units.iter().filter_map(|u| u.restart_at);
        let stop = self.stopping.as_ref().map(|s| s.deadline);
        restarts.chain(stop).min()
    }

    // ---- events -------------------------------------------------------------------------

    fn on_signals(&mut self) {
        let mut reap = false;
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => reap = true,
                    Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                        tracing::info!("signal {}: shutting down", info.ssi_signo);
                        self.begin_shutdown(DEFAULT_GRACE);
                    }
                    _ => {}
                },
                Ok(None) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("signalfd: {e}");
                    break;
                }
            }
        }
        if reap {
            self.reap();
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_exit(pid.as_raw(), code, false),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.on_exit(pid.as_raw(), 128 + sig as i32, true)
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("waitpid: {e}");
                    break;
                }
            }
        }
    }

    fn on_exit(&mut self, pid: i32, code: i32, signaled: bool) {
        if self.sandbox_pid == Some(pid) {
            tracing::info!(pid, code, "sandbox exited");
            self.sandbox_pid = None;
            delete(self.sandbox.take(), "sandbox");
            if self.stopping.is_none() {
                self.fail(format!("the sandbox exited unexpectedly (code {code})"));
                for u in &mut self.units {
                    u.restart_at = None;
                    if u.status.state == ContainerState::Restarting {
                        u.status.state = ContainerState::Exited;
                    }
                }
            }
            return;
        }
        let Some(i) = self.units.iter().position(|u| u.status.pid == Some(pid)) else {
            // libcontainer's helpers, or an init that failed before it became a container.
            tracing::debug!(pid, code, "reaped a process that is no container");
            return;
        };
        let stopping = self.stopping.is_some();
        let failed_capsule = self.phase == Phase::Failed;
        let policy = self.plan.restart_policy;
        let max = self.plan.max_retries;
        let oom = cgroup::oom_killed(&self.hierarchies, &self.units[i].cgroup);
        let u = &mut self.units[i];
        let reason = if oom {
            "OOMKilled"
        } else if signaled {
            "Signaled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        tracing::info!(container = %u.plan.name, pid, code, reason, "container exited");
        delete(u.container.take(), &u.plan.name);
        u.status.pid = None;
        u.status.exit_code = Some(code);
        u.status.reason = Some(reason.to_owned());
        u.status.finished_at = Some(Utc::now());
        if u.status.init {
            u.status.state = ContainerState::Exited;
            if code != 0 && !stopping {
                let name = u.plan.name.clone();
                self.fail(format!("init container {name} exited with code {code}"));
            }
            return;
        }
        let ran = u.started.map(|s| s.elapsed()).unwrap_or_default();
        let retries_left = max == 0 || u.status.restart_count < max;
        if !stopping && !failed_capsule && policy.restarts(code) && retries_left {
            schedule_restart(u, ran);
        } else {
            u.status.state = ContainerState::Exited;
        }
    }

    fn on_pipe(&mut self, i: usize) {
        let p = &mut self.pipes[i];
        let mut buf = vec![0u8; READ_CHUNK];
        let mut out = Vec::new();
        // A bounded number of reads, so one chatty container cannot starve the loop.
        for _ in 0..16 {
            match nix::unistd::read(p.fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    p.splitter.finish(&timestamp(), &mut out);
                    p.closed = true;
                    break;
                }
                Ok(n) => p.splitter.feed(&buf[..n], &timestamp(), &mut out),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    tracing::warn!("reading container output: {e}");
                    p.closed = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            if let Err(e) = (&*p.log).write_all(&out) {
                tracing::warn!("writing a container log: {e}");
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client {
                            stream,
                            input: Vec::new(),
                            output: Vec::new(),
                            watching: false,
                            awaiting_shutdown: false,
                            closed: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    break;
                }
            }
        }
    }

    fn on_client_input(&mut self, i: usize) {
        let mut buf = [0u8; 4096];
        loop {
            let c = &mut self.clients[i];
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.closed = true;
                    return;
                }
                Ok(n) => {
                    c.input.extend_from_slice(&buf[..n]);
                    if c.input.len() > MAX_REQUEST {
                        c.closed = true;
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.closed = true;
                    return;
                }
            }
        }
        while let Some(nl) = self.clients[i].input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.clients[i].input.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Request>(line.trim()) {
                Ok(Request::Status) => {
                    let s = self.status();
                    send(&mut self.clients[i], &s);
                }
                Ok(Request::Watch) => {
                    let s = self.status();
                    self.clients[i].watching = true;
                    send(&mut self.clients[i], &s);
                }
                Ok(Request::Shutdown { grace_ms }) => {
                    self.clients[i].awaiting_shutdown = true;
                    let grace = grace_ms.map(Duration::from_millis).unwrap_or(DEFAULT_GRACE);
                    self.begin_shutdown(grace);
                }
                Err(e) => send(
                    &mut self.clients[i],
                    &ErrorReply {
                        error: format!("bad request: {e}"),
                    },
                ),
            }
        }
        self.flush_client(i);
    }

    fn flush_client(&mut self, i: usize) {
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

    /// Sends the status to every watcher if it changed since the last time.
    fn broadcast(&mut self) {
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

    // ---- the capsule's life -------------------------------------------------------------

    fn fail(&mut self, reason: String) {
        tracing::warn!("capsule failed: {reason}");
        if self.stopping.is_none() {
            self.phase = Phase::Failed;
        }
        if self.reason.is_none() {
            self.reason = Some(reason);
        }
    }

    /// Does whatever is due: the next step of the start, restarts, the shutdown.
    fn advance(&mut self) {
        if self.stopping.is_some() {
            self.step_shutdown();
            return;
        }
        if self.phase == Phase::Starting {
            self.advance_start();
        }
        if self.phase == Phase::Running {
            let now = Instant::now();
            for i in 0..self.units.len() {
                if self.units[i].restart_at.is_some_and(|at| at <= now) {
                    self.units[i].restart_at = None;
                    self.units[i].status.restart_count += 1;
                    self.start_app(i);
                }
            }
            self.settle_phase();
        }
    }

    fn advance_start(&mut self) {
        if self.sandbox_pid.is_none() {
            if let Err(e) = self.create_sandbox() {
                self.fail(format!("cannot start the sandbox: {e}"));
                return;
            }
        }
        while self.next_init < self.n_init {
            let u = &self.units[self.next_init];
            match (u.status.state, u.status.exit_code) {
                (ContainerState::Created, _) => {
                    let name = u.plan.name.clone();
                    if let Err(e) = self.create_unit(self.next_init) {
                        let u = &mut self.units[self.next_init];
                        u.status.state = ContainerState::Failed;
                        u.status.reason = Some(e.clone());
                        self.fail(format!("init container {name} could not start: {e}"));
                    }
                    return;
                }
                (ContainerState::Exited, Some(0)) => self.next_init += 1,
                // Running: wait for its exit. Exited with a failure: the capsule failed.
                _ => return,
            }
        }
        for i in self.n_init..self.units.len() {
            if self.units[i].status.state == ContainerState::Created {
                self.start_app(i);
            }
        }
        self.phase = Phase::Running;
    }

    /// Creates and starts app container `i`; a failure is an exit the policy may restart.
    fn start_app(&mut self, i: usize) {
        if let Err(e) = self.create_unit(i) {
            let policy = self.plan.restart_policy;
            let max = self.plan.max_retries;
            let u = &mut self.units[i];
            tracing::warn!(container = %u.plan.name, "cannot start: {e}");
            u.status.reason = Some(e);
            u.status.finished_at = Some(Utc::now());
            let retries_left = max == 0 || u.status.restart_count < max;
            if policy != super::RestartPolicy::Never && retries_left {
                schedule_restart(u, Duration::ZERO);
            } else {
                u.status.state = ContainerState::Failed;
            }
        }
    }

    /// Once every app container was started: running while one runs or will restart, then
    /// succeeded or failed.
    fn settle_phase(&mut self) {
        let apps = &self.units[self.n_init..];
        if apps.iter().any(|u| {
            matches!(
                u.status.state,
                ContainerState::Running | ContainerState::Restarting | ContainerState::Created
            )
        }) {
            return;
        }
        if let Some(u) = apps
            .iter()
            .find(|u| u.status.state == ContainerState::Failed || u.status.exit_code != Some(0))
        {
            let reason = match u.status.state {
                ContainerState::Failed => format!(
                    "container {} could not start: {}",
                    u.plan.name,
                    u.status.reason.as_deref().unwrap_or("unknown")
                ),
                _ => format!(
                    "container {} exited with code {}{}",
                    u.plan.name,
                    u.status.exit_code.unwrap_or(-1),
                    match u.status.reason.as_deref() {
                        Some("OOMKilled") => " (OOMKilled)",
                        _ => "",
                    }
                ),
            };
            self.fail(reason);
        } else {
            self.phase = Phase::Succeeded;
            self.reason = Some("every container exited with code 0".into());
        }
    }

    fn runtime_root(&self) -> PathBuf {
        self.dir.join("runtime")
    }

    /// A state directory left by an earlier shim of this capsule would make libcontainer refuse
    /// the id.
    fn clear_stale(&self, id: &str) {
        let path = self.runtime_root().join(id);
        if path.exists() {
            tracing::warn!(id, "removing a stale container state");
            match Container::load(path.clone()) {
                Ok(mut c) => {
                    if let Err(e) = c.delete(true) {
                        tracing::warn!(id, "deleting the stale container: {}", error_chain(&e));
                    }
                }
                Err(e) => tracing::warn!(id, "loading the stale container: {}", error_chain(&e)),
            }
            let _ = fs::remove_dir_all(&path);
        }
    }

    fn write_bundle(&self, name: &str, spec: &Spec) -> Result<PathBuf, String> {
        let bundle = self.dir.join("bundles").join(name);
        fs::create_dir_all(&bundle)
            .map_err(io_err(format!("cannot create {}", bundle.display())))?;
        spec.save(bundle.join("config.json"))
            .map_err(|e| format!("cannot write the OCI spec of {name}: {}", error_chain(&e)))?;
        Ok(bundle)
    }

    fn build(
        &self,
        id: &str,
        bundle: &Path,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<Container, LibcontainerError> {
        self.clear_stale(id);
        let mut container = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_root_path(self.runtime_root())?
            .with_executor(ShimExecutor)
            .with_stdout(stdout)
            .with_stderr(stderr)
            .validate_id()?
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()?;
        if let Err(e) = container.start() {
            let _ = container.delete(true);
            return Err(e);
        }
        Ok(container)
    }

    fn create_sandbox(&mut self) -> Result<(), String> {
        let spec = spec::sandbox_spec(&self.plan, &self.host)
            .map_err(|e| format!("cannot build the sandbox spec: {}", error_chain(&e)))?;
        let bundle = self.write_bundle(SANDBOX_CGROUP, &spec)?;
        let null = || -> Result<OwnedFd, String> {
            File::options()
                .write(true)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(io_err("cannot open /dev/null"))
        };
        let id = format!("{}-sandbox", self.plan.uuid);
        let container = self
            .build(&id, &bundle, null()?, null()?)
            .map_err(|e| error_chain(&e))?;
        let pid = container
            .pid()
            .ok_or_else(|| "libcontainer gave the sandbox no pid".to_string())?
            .as_raw();
        self.sandbox = Some(container);
        self.sandbox_pid = Some(pid);
        tracing::info!(pid, "sandbox started");
        if self.plan.netns.is_none() {
            netlink::loopback_up(Path::new(&format!("/proc/{pid}/ns/net")))
                .map_err(io_err("cannot bring lo up in the new network namespace"))?;
        }
        Ok(())
    }

    fn create_unit(&mut self, i: usize) -> Result<(), String> {
        let sandbox_pid = self
            .sandbox_pid
            .ok_or_else(|| "the sandbox does not run".to_string())?;
        let bundle = match &self.units[i].bundle {
            Some(b) => b.clone(),
            None => {
                let u = &self.units[i];
                let spec = spec::container_spec(
                    &self.plan,
                    &u.plan,
                    sandbox_pid,
                    &self.dir.join("etc"),
                    &self.host,
                )
                .map_err(|e| format!("cannot build the OCI spec: {}", error_chain(&e)))?;
                let b = self.write_bundle(&u.plan.name, &spec)?;
                self.units[i].bundle = Some(b.clone());
                b
            }
        };
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        for fd in [&out_r, &err_r] {
            fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| format!("fcntl: {e}"))?;
        }
        let id = self.units[i].id.clone();
        let container = self
            .build(&id, &bundle, out_w, err_w)
            .map_err(|e| error_chain(&e))?;
        let pid = container
            .pid()
            .ok_or_else(|| "libcontainer gave the container no pid".to_string())?
            .as_raw();
        let u = &mut self.units[i];
        for (fd, stream) in [(out_r, Stream::Stdout), (err_r, Stream::Stderr)] {
            self.pipes.push(Pipe {
                fd,
                splitter: LineSplitter::new(stream),
                log: u.log.clone(),
                closed: false,
            });
        }
        u.container = Some(container);
        u.status.state = ContainerState::Running;
        u.status.pid = Some(pid);
        u.status.started_at = Some(Utc::now());
        u.started = Some(Instant::now());
        tracing::info!(container = %u.plan.name, pid, "container started");
        Ok(())
    }

    // ---- shutdown -----------------------------------------------------------------------

    fn begin_shutdown(&mut self, grace: Duration) {
        if self.stopping.is_some() {
            return;
        }
        tracing::info!(?grace, "shutdown");
        self.phase = Phase::Stopping;
        for u in &mut self.units {
            if u.restart_at.take().is_some() {
                u.status.state = ContainerState::Exited;
            }
            if let (ContainerState::Running, Some(pid)) = (u.status.state, u.status.pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        self.stopping = Some(Stopping {
            stage: Stage::Containers,
            deadline: Instant::now() + grace,
            killed: false,
        });
    }

    fn step_shutdown(&mut self) {
        let now = Instant::now();
        loop {
            let Some(st) = self.stopping.as_mut() else {
                return;
            };
            match st.stage {
                Stage::Containers => {
                    let running: Vec<usize> = (0..self.units.len())
                        .filter(|&i| self.units[i].status.state == ContainerState::Running)
                        .collect();
                    if running.is_empty() {
                        st.stage = Stage::Sandbox;
                        st.deadline = now + SANDBOX_GRACE;
                        st.killed = false;
                        if let Some(pid) = self.sandbox_pid {
                            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                        }
                        continue;
                    }
                    if now < st.deadline {
                        return;
                    }
                    if !st.killed {
                        st.killed = true;
                        st.deadline = now + REAP_PATIENCE;
                        for &i in &running {
                            let u = &self.units[i];
                            tracing::info!(container = %u.plan.name, "grace over: SIGKILL");
                            cgroup::signal_tree(&self.hierarchies, &u.cgroup, Signal::SIGKILL);
                            if let Some(pid) = u.status.pid {
                                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                            }
                        }
                        return;
                    }
                    for &i in &running {
                        let u = &mut self.units[i];
                        tracing::error!(container = %u.plan.name, "not reaped after SIGKILL");
                        u.status.state = ContainerState::Exited;
                        u.status.pid = None;
                    }
                }
                Stage::Sandbox => {
                    let Some(pid) = self.sandbox_pid else {
                        st.stage = Stage::Done;
                        continue;
                    };
                    if now < st.deadline {
                        return;
                    }
                    if !st.killed {
                        st.killed = true;
                        st.deadline = now + REAP_PATIENCE;
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                        return;
                    }
                    tracing::error!(pid, "sandbox not reaped after SIGKILL");
                    self.sandbox_pid = None;
                }
                Stage::Done => {
                    self.finish_shutdown();
                    return;
                }
            }
        }
    }

    fn finish_shutdown(&mut self) {
        let mut errors = Vec::new();
        for u in &mut self.units {
            if let Some(e) = delete(u.container.take(), &u.plan.name) {
                errors.push(e);
            }
        }
        if let Some(e) = delete(self.sandbox.take(), "sandbox") {
            errors.push(e);
        }
        // Whatever libcontainer could not delete (or never finished creating).
        if let Ok(entries) = fs::read_dir(self.runtime_root()) {
            for e in entries.flatten() {
                if let Err(err) = fs::remove_dir_all(e.path()) {
                    errors.push(format!("cannot remove {}: {err}", e.path().display()));
                }
            }
        }
        if let Err(errs) =
            cgroup::remove_tree(&self.hierarchies, &self.plan.cgroup_parent, REAP_PATIENCE)
        {
            errors.extend(errs);
        }
        // Drain what the containers wrote last.
        for i in 0..self.pipes.len() {
            self.on_pipe(i);
        }
        self.phase = Phase::Stopped;
        self.stopping = None;
        if !errors.is_empty() {
            tracing::error!("shutdown left: {}", errors.join("; "));
        }
        for f in [SOCKET_FILE, PID_FILE, LOCK_FILE] {
            let _ = fs::remove_file(self.dir.join(f));
        }
        self.broadcast();
        let reply = ShutdownReply {
            ok: errors.is_empty(),
            errors,
        };
        for c in &mut self.clients {
            if c.awaiting_shutdown && !c.closed {
                send(c, &reply);
            }
            // The last words are written whole, blocking for a moment at most.
            if c.stream.set_nonblocking(false).is_ok()
                && c.stream
                    .set_write_timeout(Some(Duration::from_secs(1)))
                    .is_ok()
            {
                let _ = c.stream.write_all(&c.output);
            }
        }
        tracing::info!("shutdown complete");
        self.exit = true;
    }
}

fn schedule_restart(u: &mut Unit, ran: Duration) {
    if ran >= BACKOFF_RESET {
        u.backoff = BACKOFF_START;
    }
    let delay = u.backoff;
    u.backoff = (u.backoff * 2).min(BACKOFF_CAP);
    u.restart_at = Some(Instant::now() + delay);
    u.status.state = ContainerState::Restarting;
    tracing::info!(container = %u.plan.name, ?delay, "restart scheduled");
}

/// Deletes a stopped (reaped) container: its cgroup and its state. Returns the failure.
fn delete(container: Option<Container>, name: &str) -> Option<String> {
    let mut c = container?;
    match c.delete(true) {
        Ok(()) => None,
        Err(e) => {
            let msg = format!("cannot delete container {name}: {}", error_chain(&e));
            tracing::warn!("{msg}");
            Some(msg)
        }
    }
}

fn send<T: Serialize>(c: &mut Client, value: &T) {
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

fn init_tracing(log: File) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZUN_SHIM_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,libcontainer=warn,libcgroups=error")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Arc::new(log))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_long_run() {
        let log = Rc::new(File::open("/dev/null").unwrap());
        let mut u = Unit {
            plan: ContainerPlan {
                name: "a".into(),
                uuid: uuid::Uuid::nil(),
                rootfs: "/r".into(),
                args: vec!["x".into()],
                env: vec![],
                cwd: String::new(),
                user: None,
                memory_bytes: None,
                cpu_millis: None,
                mounts: vec![],
            },
            id: "x-a".into(),
            cgroup: "/c/a".into(),
            status: ContainerStatus {
                name: "a".into(),
                uuid: uuid::Uuid::nil(),
                init: false,
                state: ContainerState::Running,
                pid: None,
                exit_code: None,
                restart_count: 0,
                reason: None,
                started_at: None,
                finished_at: None,
            },
            container: None,
            bundle: None,
            started: None,
            backoff: BACKOFF_START,
            restart_at: None,
            log,
        };
        let mut delays = Vec::new();
        for _ in 0..9 {
            let before = Instant::now();
            schedule_restart(&mut u, Duration::from_millis(5));
            delays.push((u.restart_at.unwrap() - before).as_millis() / 100 * 100);
        }
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000]);
        assert_eq!(u.status.state, ContainerState::Restarting);
        let before = Instant::now();
        schedule_restart(&mut u, Duration::from_secs(11));
        assert!(u.restart_at.unwrap() - before < Duration::from_millis(150));
    }

    #[test]
    fn nofile_is_read() {
        assert!(nofile_hard() >= 1024);
    }
}
