//! The capsule's containers inside the shim: the sandbox, init and app containers created and
//! started through libcontainer, their output carried to the logs, their exits reaped and
//! classified (OOM from the memory cgroup), the restarts with back-off and the shutdown.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use capsule_types::rpc::ContainerEventKind;
use chrono::Utc;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::{pipe2, Pid};
use oci_spec::runtime::Spec;

use super::cgroup;
use super::log::{timestamp, LineSplitter, Stream};
use super::plan::SANDBOX_CGROUP;
use super::protocol::ShutdownReply;
use super::spec;
use super::state::{io_err, send, Pipe, Shim, Stage, Stopping, Unit, BACKOFF_START, LOCK_FILE};
use super::status::{ContainerState, Phase};
use super::{error_chain, netlink, PID_FILE, SOCKET_FILE};

const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// A container that ran this long starts its back-off over.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// How long the pause process gets between SIGTERM and SIGKILL.
const SANDBOX_GRACE: Duration = Duration::from_secs(2);
/// How long SIGKILLed processes get to be reaped before the shim stops waiting.
const REAP_PATIENCE: Duration = Duration::from_secs(3);
const READ_CHUNK: usize = 64 * 1024;

/// Resets what the shim changed in its own process and a container would inherit through
/// exec: the blocked signals (the shim blocks SIGCHLD/SIGTERM/SIGINT for its signalfd) and
/// SIGPIPE (ignored by the Rust runtime). Then runs libcontainer's default executor.
/// For a process exec'd into a container it also loads the container's seccomp filter, which
/// libcontainer 0.7 leaves out of a tenant's spec (no new privileges is set by then, so no
/// privilege is needed).
#[derive(Clone)]
pub(super) struct ShimExecutor {
    pub(super) seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

impl Executor for ShimExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        SigSet::empty()
            .thread_set_mask()
            .map_err(|e| ExecutorError::Other(format!("cannot reset the signal mask: {e}")))?;
        default_sigpipe()
            .map_err(|e| ExecutorError::Other(format!("cannot reset SIGPIPE: {e}")))?;
        if let Some(seccomp) = &self.seccomp {
            libcontainer::seccomp::initialize_seccomp(seccomp)
                .map_err(|e| ExecutorError::Other(format!("cannot load seccomp: {e}")))?;
        }
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

impl Shim {
    // ---- events -------------------------------------------------------------------------

    pub(super) fn on_exit(&mut self, pid: i32, code: i32, signaled: bool) {
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
            if !self.on_exec_exit(pid, code) {
                // libcontainer's helpers, or an init that failed before it became a container.
                tracing::debug!(pid, code, "reaped a process that is no container");
            }
            return;
        };
        let stopping = self.stopping.is_some();
        let failed_capsule = self.phase == Phase::Failed;
        let policy = self.plan.restart_policy;
        let max = self.plan.max_retries;
        let oom = cgroup::oom_killed(&self.hierarchies, &self.units[i].cgroup);
        // What was exec'd into it dies with it (the capsule's pid namespace outlives it).
        self.end_execs_of(i);
        let u = &mut self.units[i];
        let user_stop = u.stop.take().is_some();
        let reason = if user_stop {
            "Stopped"
        } else if oom {
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
        if oom {
            u.status.oom_kills = u.status.oom_kills.saturating_add(1);
        }
        if !user_stop && !stopping {
            let kind = if oom {
                ContainerEventKind::OomKilled
            } else {
                ContainerEventKind::Exited
            };
            self.record(i, kind, Some(code));
        }
        let u = &mut self.units[i];
        if user_stop {
            // Stopped by a user: the policy leaves it alone until it is started.
            u.status.state = ContainerState::Stopped;
            return;
        }
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

    pub(super) fn on_pipe(&mut self, i: usize) {
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
            if let Err(e) = p.log.borrow_mut().write_records(&out) {
                tracing::warn!("writing a container log: {e}");
            }
        }
    }

    // ---- the capsule's life -------------------------------------------------------------

    pub(super) fn fail(&mut self, reason: String) {
        tracing::warn!("capsule failed: {reason}");
        if self.stopping.is_none() {
            self.phase = Phase::Failed;
        }
        if self.reason.is_none() {
            self.reason = Some(reason);
        }
    }

    /// Does whatever is due: the next step of the start, restarts, the shutdown.
    pub(super) fn advance(&mut self) {
        if self.stopping.is_some() {
            self.step_shutdown();
            return;
        }
        if self.phase == Phase::Starting {
            self.advance_start();
        }
        self.advance_user_stops();
        if self.phase == Phase::Running {
            let now = Instant::now();
            for i in 0..self.units.len() {
                if self.units[i].restart_at.is_some_and(|at| at <= now) {
                    self.units[i].restart_at = None;
                    self.units[i].status.restart_count += 1;
                    self.start_app(i, Cause::Policy);
                }
            }
            self.settle_phase();
        }
        self.remove_dead_exec_cgroups();
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
                    if let Err(e) = self.create_unit(self.next_init, Cause::First) {
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
                self.start_app(i, Cause::First);
            }
        }
        self.phase = Phase::Running;
    }

    /// Creates and starts app container `i`; a failure is an exit the policy may restart.
    pub(super) fn start_app(&mut self, i: usize, cause: Cause) {
        if let Err(e) = self.create_unit(i, cause) {
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

    /// Once every app container was started: running while one runs, will restart, or waits
    /// for a user (stopped or paused by one), then succeeded or failed.
    fn settle_phase(&mut self) {
        let apps = &self.units[self.n_init..];
        if apps.iter().any(|u| {
            matches!(
                u.status.state,
                ContainerState::Running
                    | ContainerState::Restarting
                    | ContainerState::Created
                    | ContainerState::Stopped
                    | ContainerState::Paused
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

    pub(super) fn runtime_root(&self) -> PathBuf {
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
            .with_executor(ShimExecutor { seccomp: None })
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

    fn create_unit(&mut self, i: usize, cause: Cause) -> Result<(), String> {
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
        match cause {
            Cause::First => {
                self.record(i, ContainerEventKind::Created, None);
                self.record(i, ContainerEventKind::Started, None);
            }
            Cause::Policy => self.record(i, ContainerEventKind::Restarted, None),
            // The user's action reports it.
            Cause::User => {}
        }
        Ok(())
    }

    // ---- shutdown -----------------------------------------------------------------------

    pub(super) fn begin_shutdown(&mut self, grace: Duration) {
        if self.stopping.is_some() {
            return;
        }
        tracing::info!(?grace, "shutdown");
        self.phase = Phase::Stopping;
        for i in 0..self.units.len() {
            // A frozen container cannot act on its stop signal.
            if self.units[i].status.state == ContainerState::Paused {
                let _ = self.thaw(i);
            }
            let u = &mut self.units[i];
            u.stop = None;
            u.start_after_stop = false;
            if u.restart_at.take().is_some() {
                u.status.state = ContainerState::Exited;
            }
            if let (ContainerState::Running, Some(pid)) = (u.status.state, u.status.pid) {
                let _ = kill(Pid::from_raw(pid), stop_signal(&u.plan));
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

/// Why a container is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    /// Its first start, with the capsule.
    First,
    /// Its restart policy.
    Policy,
    /// A user's start or restart.
    User,
}

/// The signal that asks container `c` to stop: its image's `STOPSIGNAL`, else SIGTERM.
pub(super) fn stop_signal(c: &super::plan::ContainerPlan) -> Signal {
    c.stop_signal
        .and_then(|n| Signal::try_from(n).ok())
        .unwrap_or(Signal::SIGTERM)
}

pub(super) fn schedule_restart(u: &mut Unit, ran: Duration) {
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
pub(super) fn delete(container: Option<Container>, name: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::plan::ContainerPlan;
    use crate::shim::status::ContainerStatus;
    use std::rc::Rc;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_long_run() {
        let log = Rc::new(std::cell::RefCell::new(
            crate::shim::logfile::LogFile::open(Path::new("/dev/null"), None).unwrap(),
        ));
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
                net_raw: false,
                stop_signal: None,
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
                oom_kills: 0,
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
            stop: None,
            start_after_stop: false,
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
}
