//! Processes exec'd into a running container, inside the shim (single-threaded, the
//! containers' parent: libcontainer may clone here). A process joins its container as
//! libcontainer's tenant: the container's namespaces (its own mount namespace, the sandbox's
//! pid, net, ipc and uts), the container's process spec (user, environment, working directory,
//! capabilities, rlimits, no new privileges) and seccomp filter, and its own cgroup
//! `<container cgroup>/exec-<n>` below the container's, so that everything it starts is found
//! and killed with it. Its descriptors go to the asker over the shim socket (`SCM_RIGHTS`):
//! the terminal's master side, or the output pipe (stdout and stderr together) and a stdin
//! pipe. The asker's connection is the session: the exit code is its last line, and closing it
//! first kills the process and whatever it started.

use std::fs::{self, File};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr,
};
use nix::unistd::pipe2;
use oci_spec::runtime::Spec;

use super::cgroup;
use super::error_chain;
use super::lifecycle::ShimExecutor;
use super::protocol::{ExecExit, ExecReply};
use super::state::{io_err, send, ExecProc, Shim};
use super::status::ContainerState;

/// Where exec'd processes' process specs and terminal sockets are made.
const EXEC_DIR: &str = "exec";

/// A refusal: (because of the container's state, why).
type Refusal = (bool, String);

impl Shim {
    /// Runs `args` in container `container` for client `client` and answers it (see the
    /// module's words).
    pub(super) fn exec_start(
        &mut self,
        client: usize,
        container: &str,
        args: Vec<String>,
        tty: bool,
        stdin: bool,
    ) {
        let reply = match self.spawn_exec(container, args, tty, stdin) {
            Ok((id, pid, fds)) => {
                let line = line(&ExecReply::Started { pid });
                let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
                let c = &mut self.clients[client];
                let sent = sendmsg::<UnixAddr>(
                    c.stream.as_raw_fd(),
                    &[IoSlice::new(&line)],
                    &[ControlMessage::ScmRights(&raw)],
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                );
                c.exec = Some(id);
                match sent {
                    Ok(n) if n == line.len() => return,
                    Ok(_) | Err(_) => {
                        // The asker cannot have the process: it must not outlive this.
                        tracing::warn!(pid, "cannot hand over an exec's descriptors: {sent:?}");
                        c.closed = true;
                        return;
                    }
                }
            }
            Err((conflict, message)) => ExecReply::Refused { message, conflict },
        };
        send(&mut self.clients[client], &reply);
        self.flush_client(client);
    }

    fn spawn_exec(
        &mut self,
        container: &str,
        args: Vec<String>,
        tty: bool,
        stdin: bool,
    ) -> Result<(u64, i32, Vec<OwnedFd>), Refusal> {
        let Some(i) = self.units.iter().position(|u| u.plan.name == container) else {
            return Err((false, format!("no container {container} in this capsule")));
        };
        if self.stopping.is_some() {
            return Err((true, "the capsule is being deleted".into()));
        }
        match self.units[i].status.state {
            ContainerState::Running => {}
            ContainerState::Paused => return Err((true, format!("{container} is paused"))),
            _ => return Err((true, format!("{container} is not running"))),
        }
        if args.is_empty() || args[0].is_empty() {
            return Err((false, "no command to run".into()));
        }
        let u = &self.units[i];
        let bundle = u
            .bundle
            .clone()
            .ok_or_else(|| (false, format!("{container} has no bundle")))?;
        let spec = Spec::load(bundle.join("config.json"))
            .map_err(|e| (false, format!("cannot read the spec of {container}: {e}")))?;
        let mut process = spec
            .process()
            .clone()
            .ok_or_else(|| (false, format!("the spec of {container} has no process")))?;
        process.set_args(Some(args)).set_terminal(Some(tty));
        process.set_console_size(None);
        let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());

        self.next_exec += 1;
        let id = self.next_exec;
        let dir = self.dir.join(EXEC_DIR);
        fs::create_dir_all(&dir)
            .map_err(io_err(format!("cannot create {}", dir.display())))
            .map_err(|e| (false, e))?;
        let process_file = dir.join(format!("{id}.json"));
        let text = serde_json::to_vec(&process)
            .map_err(|e| (false, format!("cannot encode the process: {e}")))?;
        fs::write(&process_file, text)
            .map_err(io_err(format!("cannot write {}", process_file.display())))
            .map_err(|e| (false, e))?;
        let console_path = dir.join(format!("{id}.sock"));
        let result = self.build_exec(i, id, &process_file, &console_path, tty, stdin, seccomp);
        let _ = fs::remove_file(&process_file);
        let _ = fs::remove_file(&console_path);
        let (pid, fds) = result.map_err(|e| (false, e))?;
        let cgroup = exec_cgroup(&self.units[i].cgroup, id);
        tracing::info!(container, pid, id, tty, "exec started");
        self.execs.push(ExecProc {
            id,
            pid,
            cgroup,
            orphaned: false,
        });
        Ok((id, pid, fds))
    }

    #[allow(clippy::too_many_arguments)]
    fn build_exec(
        &self,
        i: usize,
        id: u64,
        process_file: &Path,
        console_path: &Path,
        tty: bool,
        stdin: bool,
        seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    ) -> Result<(i32, Vec<OwnedFd>), String> {
        let u = &self.units[i];
        let builder = ContainerBuilder::new(u.id.clone(), SyscallType::default())
            .with_root_path(self.runtime_root())
            .map_err(|e| error_chain(&e))?
            .with_executor(ShimExecutor { seccomp });
        let mut handed = Vec::new();
        let (builder, console) = if tty {
            let _ = fs::remove_file(console_path);
            let listener = super::ShortPath::new(
                console_path.parent().unwrap_or(Path::new("/")),
                &console_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
            .and_then(|short| UnixListener::bind(short.path()))
            .map_err(io_err("cannot listen for the terminal"))?;
            (
                builder.with_console_socket(Some(console_path)),
                Some(listener),
            )
        } else {
            let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
            let err_w = out_w.try_clone().map_err(io_err("dup"))?;
            let builder = builder.with_stdout(out_w).with_stderr(err_w);
            handed.push(out_r);
            let builder = if stdin {
                let (in_r, in_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
                handed.push(in_w);
                builder.with_stdin(in_r)
            } else {
                let null = File::open("/dev/null").map_err(io_err("cannot open /dev/null"))?;
                builder.with_stdin(OwnedFd::from(null))
            };
            (builder, None)
        };
        let pid = builder
            .validate_id()
            .map_err(|e| error_chain(&e))?
            .as_tenant()
            .with_process(Some(process_file))
            .with_detach(true)
            .with_sub_cgroup(Some(format!("exec-{id}")))
            .build()
            .map_err(|e| format!("cannot exec: {}", error_chain(&e)))?
            .as_raw();
        if let Some(listener) = console {
            match receive_terminal(&listener) {
                Ok(master) => handed.push(master),
                Err(e) => {
                    // No terminal to hand over: the process must not run unseen.
                    cgroup::signal_tree(
                        &self.hierarchies,
                        &exec_cgroup(&u.cgroup, id),
                        Signal::SIGKILL,
                    );
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                    return Err(e);
                }
            }
        }
        Ok((pid, handed))
    }

    /// An exec'd process exited: its asker is told, whatever it left is killed. Whether `pid`
    /// was one.
    pub(super) fn on_exec_exit(&mut self, pid: i32, code: i32) -> bool {
        let Some(k) = self.execs.iter().position(|e| e.pid == pid) else {
            return false;
        };
        let e = self.execs.remove(k);
        tracing::info!(pid, code, id = e.id, orphaned = e.orphaned, "exec exited");
        cgroup::signal_tree(&self.hierarchies, &e.cgroup, Signal::SIGKILL);
        self.dead_exec_cgroups.push(e.cgroup);
        if let Some(c) = self.clients.iter().position(|c| c.exec == Some(e.id)) {
            send(&mut self.clients[c], &ExecExit { exited: code });
            self.flush_client(c);
            self.clients[c].exec = None;
            self.clients[c].closed = true;
        }
        true
    }

    /// Kills what was exec'd into unit `i` and removes its cgroups (before the container's
    /// own cgroup is removed).
    pub(super) fn end_execs_of(&mut self, i: usize) {
        let prefix = format!("{}/", self.units[i].cgroup);
        for e in self.execs.iter().filter(|e| e.cgroup.starts_with(&prefix)) {
            cgroup::signal_tree(&self.hierarchies, &e.cgroup, Signal::SIGKILL);
            if let Err(errs) =
                cgroup::remove_tree(&self.hierarchies, &e.cgroup, Duration::from_secs(1))
            {
                tracing::warn!("exec cgroup left: {}", errs.join("; "));
            }
        }
    }

    /// The asker of exec `id` went away: the process and whatever it started are killed.
    fn exec_client_gone(&mut self, id: u64) {
        if let Some(e) = self.execs.iter_mut().find(|e| e.id == id) {
            tracing::info!(pid = e.pid, id, "exec stream gone: killing it");
            e.orphaned = true;
            cgroup::signal_tree(&self.hierarchies, &e.cgroup, Signal::SIGKILL);
        }
    }

    /// Removes the cgroups of exec'd processes that are all gone.
    pub(super) fn remove_dead_exec_cgroups(&mut self) {
        let hierarchies = self.hierarchies.clone();
        self.dead_exec_cgroups.retain(|cg| {
            if cgroup::signal_tree(&hierarchies, cg, Signal::SIGKILL) > 0 {
                return true;
            }
            cgroup::remove_tree(&hierarchies, cg, Duration::ZERO).is_err()
                && cgroup::exists(&hierarchies, cg)
        });
    }

    /// Forgets closed connections, killing the execs they held.
    pub(super) fn drop_closed_clients(&mut self) {
        let gone: Vec<u64> = self
            .clients
            .iter()
            .filter(|c| c.closed)
            .filter_map(|c| c.exec)
            .collect();
        for id in gone {
            self.exec_client_gone(id);
        }
        self.clients.retain(|c| !c.closed);
    }
}

fn line<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut l = serde_json::to_vec(value).unwrap_or_default();
    l.push(b'\n');
    l
}

fn exec_cgroup(container: &str, id: u64) -> String {
    format!("{container}/exec-{id}")
}

/// The terminal master libcontainer sent to the console socket.
fn receive_terminal(listener: &UnixListener) -> Result<OwnedFd, String> {
    listener
        .set_nonblocking(true)
        .map_err(io_err("console socket"))?;
    // libcontainer connected before it started the process, and the process sent the master
    // before it ran the command: both are waiting.
    let (stream, _) = listener
        .accept()
        .map_err(io_err("the process sent no terminal"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io_err("console socket"))?;
    let _ = setsockopt(&stream, sockopt::PassCred, &false);
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("cannot receive the terminal: {e}"))?;
    for c in msg
        .cmsgs()
        .map_err(|e| format!("cannot receive the terminal: {e}"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut owned: Vec<OwnedFd> = fds.into_iter().map(own).collect();
            if let Some(master) = owned.pop() {
                return Ok(master);
            }
        }
    }
    Err("the process sent no terminal".into())
}

/// Takes ownership of a descriptor just received with `SCM_RIGHTS`.
#[allow(unsafe_code)]
pub(crate) fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel just installed `fd` in this process for this message (SCM_RIGHTS);
    // nothing else knows or owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
