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
//!
//! This module is the process: the fork and the readiness report, the setup and the poll loop
//! with its signals. The containers' life is in the sibling module `lifecycle`, the clients and
//! their protocol in `server`, the state they share in `state`.

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2, pipe2, Pid};

use super::cgroup;
use super::logfile::LogFile;
use super::plan::Plan;
use super::spec::{self, Host};
use super::state::{io_err, Shim, Unit, BACKOFF_START, DEFAULT_GRACE, LOCK_FILE};
use super::status::{ContainerState, ContainerStatus, Phase};
use super::{error_chain, PID_FILE, SHIM_LOG_FILE, SOCKET_FILE};

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
        // Before any process of the capsule exists: its pids limit covers all of them.
        if let Some(max) = plan.limits.pids_max {
            cgroup::limit_pids(&hierarchies, &plan.cgroup_parent, max)
                .map_err(io_err("cannot limit the capsule's processes"))?;
        }
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
            let log = LogFile::open(&log_path, plan.limits.logs)
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
                    oom_kills: 0,
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
                log: Rc::new(RefCell::new(log)),
                stop: None,
                start_after_stop: false,
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
            events: Default::default(),
            event_seq: 0,
            execs: Vec::new(),
            next_exec: 0,
            dead_exec_cgroups: Vec::new(),
            _lock: lock,
        })
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
            self.drop_closed_clients();
            self.pipes.retain(|p| !p.closed);
        }
        tracing::info!("shim exits");
        0
    }

    fn next_deadline(&self) -> Option<Instant> {
        let restarts = self.units.iter().filter_map(|u| u.restart_at);
        let user_stops = self
            .units
            .iter()
            .filter_map(|u| u.stop.as_ref().map(|s| s.deadline));
        let stop = self.stopping.as_ref().map(|s| s.deadline);
        // Exec cgroups whose processes are dying: look again soon.
        let cgroups = (!self.dead_exec_cgroups.is_empty())
            .then(|| Instant::now() + Duration::from_millis(20));
        restarts.chain(user_stops).chain(stop).chain(cgroups).min()
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
    fn nofile_is_read() {
        assert!(nofile_hard() >= 1024);
    }
}
