//! Operating a capsule's running containers through its shim: lifecycle actions, the events
//! the shim numbered, exec; and the answers read from the host (top, stats, archives, in their
//! own modules).

use std::sync::Arc;
use std::time::Duration;

use capsule_types::rpc::{CapsuleSpec, ContainerCall, ContainerRef, ContainerReply};

use super::plan::shim_name;
use super::PodRuntime;
use crate::runtime::{
    Act, ActOutcome, ExecOutcome, ExecProcess, RuntimeError, RuntimeEvent, Terminal,
};
use crate::shim::{self, Action, ExecRequest, ExecStart, Plan};

/// A terminal's master side, resized with `TIOCSWINSZ`.
#[derive(Debug)]
struct Pty(Arc<std::os::fd::OwnedFd>);

impl Terminal for Pty {
    fn resize(&self, width: u16, height: u16) -> std::io::Result<()> {
        shim::resize_terminal(&self.0, width, height)
    }
}

/// One container as the host sees it: its plan and, while it runs, its pid.
pub(super) struct Target {
    pub(super) plan: Plan,
    pub(super) name: String,
    pub(super) pid: Option<i32>,
    pub(super) sandbox_pid: Option<i32>,
}

impl PodRuntime {
    /// The grace period of a stop: asked, else the capsule's, else the host's.
    fn grace(&self, spec: &CapsuleSpec, asked: Option<Duration>) -> u64 {
        let d = asked
            .or(spec
                .template
                .termination_grace_period_seconds
                .map(Duration::from_secs))
            .unwrap_or(Duration::from_secs(self.cfg.stop_grace_seconds));
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) async fn act_on(
        &self,
        spec: &CapsuleSpec,
        containers: &[ContainerRef],
        act: Act,
    ) -> Result<Vec<ActOutcome>, RuntimeError> {
        let action = match act {
            Act::Stop { grace } => Action::Stop {
                grace_ms: self.grace(spec, grace),
            },
            Act::Restart { grace } => Action::Restart {
                grace_ms: self.grace(spec, grace),
            },
            Act::Start => Action::Start,
            Act::Kill { signal } => Action::Kill { signal },
            Act::Fail => Action::Fail,
            Act::Pause => Action::Pause,
            Act::Unpause => Action::Unpause,
        };
        let dir = self.dirs.dir(spec.uuid);
        let apps = spec.containers.iter().filter(|c| !c.is_init).count();
        // Every app container at once (their grace periods run together), or one.
        let name = match containers {
            [one] if apps > 1 || one.is_init => Some(shim_name(one.uuid)),
            _ => None,
        };
        let reply = self.shims.act(&dir, name.as_deref(), action).await?;
        Ok(containers
            .iter()
            .map(|c| {
                let n = shim_name(c.uuid);
                let error = match reply.results.iter().find(|r| r.name == n) {
                    Some(r) => r.error.clone(),
                    None => Some(format!("the capsule's shim did not act on {}", c.name)),
                };
                ActOutcome {
                    container: c.uuid,
                    error,
                }
            })
            .collect())
    }

    pub(super) async fn events_of(
        &self,
        spec: &CapsuleSpec,
        after: u64,
    ) -> Result<Vec<RuntimeEvent>, RuntimeError> {
        let dir = self.dirs.dir(spec.uuid);
        Ok(self
            .shims
            .events(&dir, after)
            .await?
            .into_iter()
            .map(|e| RuntimeEvent {
                seq: e.seq,
                container: e.container,
                kind: e.kind,
                at: e.at,
                exit_code: e.exit_code,
            })
            .collect())
    }

    pub(super) async fn exec_in(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        command: Vec<String>,
        tty: bool,
        stdin: bool,
    ) -> Result<ExecOutcome, RuntimeError> {
        let dir = self.dirs.dir(spec.uuid);
        let req = ExecRequest {
            container: shim_name(container.uuid),
            args: command,
            tty,
            stdin,
        };
        Ok(match self.shims.exec(&dir, &req).await? {
            ExecStart::Refused { message, conflict } => {
                let message = message.replace(&req.container, &container.name);
                if conflict {
                    ExecOutcome::Conflict(message)
                } else {
                    ExecOutcome::Failed(message)
                }
            }
            ExecStart::Started(io) => ExecOutcome::Started(ExecProcess {
                output: Box::pin(io.output),
                input: io.input.map(|i| Box::pin(i) as _),
                terminal: io.terminal.map(|t| Arc::new(Pty(t)) as Arc<dyn Terminal>),
                exit: Box::pin(io.exit.wait()),
            }),
        })
    }

    /// Container `container` of `spec` as the host has it.
    pub(super) async fn target(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
    ) -> Result<Target, ContainerReply> {
        let dir = self.dirs.dir(spec.uuid);
        let unavailable = |what: String| ContainerReply::Unavailable { message: what };
        let plan = Plan::load(&dir)
            .map_err(|e| unavailable(format!("Cannot read the capsule's plan: {e}")))?;
        let name = shim_name(container.uuid);
        let status = self
            .shims
            .status(&dir)
            .await
            .map_err(|e| unavailable(format!("The capsule's shim does not answer: {e}")))?;
        let c = status
            .container(&name)
            .ok_or_else(|| ContainerReply::NotFound {
                message: format!("The capsule has no container {}.", container.name),
            })?;
        Ok(Target {
            pid: c.pid,
            sandbox_pid: status.sandbox_pid,
            plan,
            name,
        })
    }

    pub(super) async fn answer(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        call: &ContainerCall,
    ) -> ContainerReply {
        let target = match self.target(spec, container).await {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        let cfg = self.cfg.clone();
        let call = call.clone();
        let name = container.name.clone();
        let work = tokio::task::spawn_blocking(move || match call {
            ContainerCall::Top { ps_args } => super::top::top(&target, ps_args.as_deref()),
            ContainerCall::Stats => super::top::stats(&target),
            ContainerCall::GetArchive { path } => {
                super::archive::get(&target, &path, cfg.archive_max_bytes)
            }
            ContainerCall::PutArchive { path, data } => {
                super::archive::put(&target, &path, &data, cfg.archive_max_bytes)
            }
            ContainerCall::Exec { .. } | ContainerCall::ExecResize { .. } => {
                ContainerReply::Invalid {
                    message: format!("{} is not answered here", call.name()),
                }
            }
        });
        match work.await {
            Ok(reply) => reply,
            Err(e) => ContainerReply::Unavailable {
                message: format!("Cannot inspect {name}: {e}"),
            },
        }
    }
}
