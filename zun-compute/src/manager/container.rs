//! The manager's container operations: lifecycle actions (casts: the state and one
//! [`ContainerEvent`] per container are reported, with the request's id) and calls (exec, exec
//! resize, top, stats, archives: answered with a [`ContainerReply`]). The host checks again what
//! the API checked (command sizes, `ps` words, the container's state) and answers `Invalid` or
//! `Conflict` in Zun's words rather than trust it.

use std::time::Duration;

use capsule_types::rpc::{
    CapsuleSpec, ContainerAction, ContainerCall, ContainerEvent, ContainerEventKind, ContainerRef,
    ContainerReply,
};
use capsule_types::CapsuleStatus;
use chrono::Utc;
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use super::{Manager, ManagerError};
use crate::chain::Chain;
use crate::runtime::{Act, ActOutcome, ExecOutcome};

/// Most arguments of an exec'd command.
pub const MAX_EXEC_ARGS: usize = 256;
/// Most bytes of an exec'd command line, all arguments together.
pub const MAX_EXEC_BYTES: usize = 128 * 1024;

/// Bounds of a non-interactive exec.
#[derive(Clone, Copy, Debug)]
pub struct ExecLimits {
    /// How long it may run before it is killed.
    pub timeout: Duration,
    /// Output answered; the rest is dropped with a note.
    pub output_max: usize,
}

impl Default for ExecLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            output_max: 1 << 20,
        }
    }
}

/// The exit code answered for an exec killed at its time limit (as `timeout(1)`).
pub const EXEC_TIMED_OUT: i32 = 124;

fn kind_of(action: &ContainerAction) -> ContainerEventKind {
    match action {
        ContainerAction::Stop { .. } => ContainerEventKind::Stopped,
        ContainerAction::Start | ContainerAction::Restart { .. } => ContainerEventKind::Started,
        ContainerAction::Kill { .. } => ContainerEventKind::Killed,
        ContainerAction::Pause => ContainerEventKind::Paused,
        ContainerAction::Unpause => ContainerEventKind::Unpaused,
    }
}

fn act_of(action: &ContainerAction) -> Act {
    let grace = |t: &Option<u64>| t.map(Duration::from_secs);
    match action {
        ContainerAction::Stop { timeout_seconds } => Act::Stop {
            grace: grace(timeout_seconds),
        },
        ContainerAction::Start => Act::Start,
        ContainerAction::Restart { timeout_seconds } => Act::Restart {
            grace: grace(timeout_seconds),
        },
        ContainerAction::Kill { signal } => Act::Kill { signal: *signal },
        ContainerAction::Pause => Act::Pause,
        ContainerAction::Unpause => Act::Unpause,
    }
}

/// Checks an exec's command as the API does.
pub(crate) fn check_command(command: &[String]) -> Result<(), String> {
    if command.is_empty() || command[0].is_empty() {
        return Err("The command to execute is empty.".into());
    }
    if command.len() > MAX_EXEC_ARGS {
        return Err(format!(
            "The command has more than {MAX_EXEC_ARGS} arguments."
        ));
    }
    if command.iter().map(|a| a.len() + 1).sum::<usize>() > MAX_EXEC_BYTES {
        return Err(format!(
            "The command is longer than {MAX_EXEC_BYTES} bytes."
        ));
    }
    if command.iter().any(|a| a.contains('\0')) {
        return Err("The command holds a NUL byte.".into());
    }
    Ok(())
}

impl Manager {
    #[allow(clippy::too_many_arguments)]
    async fn container_event(
        &self,
        capsule: Uuid,
        container: Uuid,
        kind: ContainerEventKind,
        started_at: chrono::DateTime<Utc>,
        request_id: Option<String>,
        exit_code: Option<i32>,
        error: Option<String>,
    ) -> Result<(), ManagerError> {
        self.reporter
            .container_event(ContainerEvent {
                capsule,
                container,
                kind,
                started_at,
                finished_at: Utc::now(),
                request_id,
                exit_code,
                error,
            })
            .await?;
        Ok(())
    }

    /// Does `action` (a `ContainerAction` cast), then reports the capsule's state and one event
    /// per container.
    pub(super) async fn container_action(
        &self,
        capsule: Uuid,
        container: Option<Uuid>,
        action: ContainerAction,
        request_id: Option<String>,
    ) -> Result<(), ManagerError> {
        let started_at = Utc::now();
        let kind = kind_of(&action);
        let lock = self.lock(capsule);
        let _g = lock.lock().await;
        let refuse = |why: String| {
            let request_id = request_id.clone();
            async move {
                match container {
                    Some(c) => {
                        self.container_event(
                            capsule,
                            c,
                            kind,
                            started_at,
                            request_id,
                            None,
                            Some(why),
                        )
                        .await
                    }
                    None => {
                        tracing::warn!(%capsule, "{why}");
                        Ok(())
                    }
                }
            }
        };
        let Some(rec) = self.store.get(capsule)? else {
            return refuse(format!("Capsule {capsule} is not on this host.")).await;
        };
        if rec.deleting {
            return refuse(format!("Capsule {capsule} is being deleted.")).await;
        }
        let targets: Vec<ContainerRef> = match container {
            None => rec
                .spec
                .containers
                .iter()
                .filter(|c| !c.is_init)
                .cloned()
                .collect(),
            Some(id) => match rec.spec.containers.iter().find(|c| c.uuid == id) {
                Some(c) if !c.is_init => vec![c.clone()],
                Some(c) => {
                    return refuse(format!(
                        "Container {} is an init container: it cannot be {}ed.",
                        c.name,
                        action.zun_name()
                    ))
                    .await
                }
                None => return refuse(format!("Capsule {capsule} has no container {id}.")).await,
            },
        };
        tracing::info!(%capsule, action = action.zun_name(), containers = targets.len(), "container action");
        let outcomes = match self.runtime.act(&rec.spec, &targets, act_of(&action)).await {
            Ok(o) => o,
            Err(e) => {
                let why = format!("The host could not {}: {}", action.zun_name(), Chain(&e));
                targets
                    .iter()
                    .map(|c| ActOutcome {
                        container: c.uuid,
                        error: Some(why.clone()),
                    })
                    .collect()
            }
        };
        // The state first (even unchanged: a redelivered action tells the conductor the state
        // it ended in, as the first delivery did), then what the action did, then what the
        // runtime did meanwhile.
        if let Some(mut rec) = self.store.get(capsule)? {
            if !rec.unreported {
                rec.unreported = true;
                self.store.put(&rec)?;
            }
        }
        self.refresh_locked(capsule).await?;
        for o in outcomes {
            let names = |e: String| {
                targets
                    .iter()
                    .find(|c| c.uuid == o.container)
                    .map(|c| e.replace(&crate::runtime::pod::shim_name(c.uuid), &c.name))
                    .unwrap_or(e)
            };
            self.container_event(
                capsule,
                o.container,
                kind,
                started_at,
                request_id.clone(),
                None,
                o.error.map(names),
            )
            .await?;
        }
        Ok(())
    }

    /// Answers `call` about container `container` of capsule `capsule`.
    pub(super) async fn container_call(
        &self,
        capsule: Uuid,
        container: Uuid,
        call: ContainerCall,
        request_id: Option<String>,
    ) -> Result<ContainerReply, ManagerError> {
        let rec = match self.store.get(capsule)? {
            Some(r) if !r.deleting => r,
            _ => {
                return Ok(ContainerReply::NotFound {
                    message: format!("Capsule {capsule} is not on this host."),
                })
            }
        };
        let Some(c) = rec
            .spec
            .containers
            .iter()
            .find(|c| c.uuid == container)
            .cloned()
        else {
            return Ok(ContainerReply::NotFound {
                message: format!("Capsule {capsule} has no container {container}."),
            });
        };
        if let Err(message) = check(&call) {
            return Ok(ContainerReply::Invalid { message });
        }
        if let ContainerCall::ExecResize {
            exec_id,
            width,
            height,
        } = call
        {
            let done = self
                .streams
                .get()
                .is_some_and(|s| s.resize(exec_id, width, height));
            return Ok(if done {
                ContainerReply::Done
            } else {
                ContainerReply::NotFound {
                    message: format!("No exec session {exec_id}."),
                }
            });
        }
        let (zun_action, allowed): (&str, &[CapsuleStatus]) = match &call {
            ContainerCall::Exec { .. } => ("execute", &[CapsuleStatus::Running]),
            ContainerCall::Top { .. } => ("top", &[CapsuleStatus::Running]),
            ContainerCall::Stats => ("stats", &[CapsuleStatus::Running]),
            ContainerCall::GetArchive { .. } | ContainerCall::PutArchive { .. } => (
                call.name(),
                &[
                    CapsuleStatus::Created,
                    CapsuleStatus::Paused,
                    CapsuleStatus::Running,
                    CapsuleStatus::Stopped,
                ],
            ),
            ContainerCall::ExecResize { .. } => ("execute_resize", &[CapsuleStatus::Running]),
        };
        let status = match self.runtime.inspect(&rec.spec).await {
            Ok(Some(s)) => s
                .containers
                .iter()
                .find(|s| s.uuid == container)
                .map(|s| s.status)
                .unwrap_or(CapsuleStatus::Unknown),
            Ok(None) => CapsuleStatus::Unknown,
            Err(e) => {
                return Ok(ContainerReply::Unavailable {
                    message: format!("Cannot see the container's state: {}", Chain(&e)),
                })
            }
        };
        if !allowed.contains(&status) {
            return Ok(ContainerReply::Conflict {
                message: format!("Cannot {zun_action} container {container} in {status} state"),
            });
        }
        match call {
            ContainerCall::Exec {
                command,
                interactive: true,
                tty,
            } => {
                let Some(streams) = self.streams.get() else {
                    return Ok(ContainerReply::Unavailable {
                        message: "This compute host has no stream listener.".into(),
                    });
                };
                let (exec_id, stream) = streams.open(&rec.spec, &c, command, tty);
                let now = Utc::now();
                self.container_event(
                    capsule,
                    container,
                    ContainerEventKind::Exec,
                    now,
                    request_id,
                    None,
                    None,
                )
                .await?;
                Ok(ContainerReply::ExecSession { exec_id, stream })
            }
            ContainerCall::Exec { command, .. } => {
                let started_at = Utc::now();
                let reply = self.exec_wait(&rec.spec, &c, command).await;
                let (code, error) = match &reply {
                    ContainerReply::Exec { exit_code, .. } => (Some(*exit_code), None),
                    ContainerReply::Conflict { message }
                    | ContainerReply::Invalid { message }
                    | ContainerReply::Unavailable { message } => (None, Some(message.clone())),
                    _ => (None, None),
                };
                self.container_event(
                    capsule,
                    container,
                    ContainerEventKind::Exec,
                    started_at,
                    request_id,
                    code,
                    error,
                )
                .await?;
                Ok(reply)
            }
            call => Ok(self.runtime.call(&rec.spec, &c, &call).await),
        }
    }

    /// Runs `command` in `c` and waits for it (bounded in time and output).
    async fn exec_wait(
        &self,
        spec: &CapsuleSpec,
        c: &ContainerRef,
        command: Vec<String>,
    ) -> ContainerReply {
        let limits = self.exec_limits;
        let process = match self.runtime.exec(spec, c, command, false, false).await {
            Ok(ExecOutcome::Started(p)) => p,
            Ok(ExecOutcome::Conflict(why)) => {
                return ContainerReply::Conflict {
                    message: format!("Cannot execute container {} in its state: {why}", c.uuid),
                }
            }
            Ok(ExecOutcome::Failed(message)) => return ContainerReply::Invalid { message },
            Err(e) => {
                return ContainerReply::Unavailable {
                    message: format!("Cannot execute in {}: {}", c.name, Chain(&e)),
                }
            }
        };
        let mut output = process.output;
        let exit = process.exit;
        let mut kept = Vec::new();
        let mut dropped = 0usize;
        let run = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match output.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = limits.output_max.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                        dropped += n.saturating_sub(room);
                    }
                }
            }
            exit.await
        };
        let code = tokio::time::timeout(limits.timeout, run).await;
        let mut text = String::from_utf8_lossy(&kept).into_owned();
        if dropped > 0 {
            text.push_str(&format!(
                "\n[output truncated: {dropped} more bytes dropped]\n"
            ));
        }
        match code {
            Ok(Some(exit_code)) => ContainerReply::Exec {
                output: text,
                exit_code,
            },
            Ok(None) => ContainerReply::Unavailable {
                message: "The command's exit code was lost (its shim went away).".into(),
            },
            // The process went with the dropped future.
            Err(_) => {
                text.push_str(&format!(
                    "\n[killed: the command ran longer than {} s]\n",
                    limits.timeout.as_secs()
                ));
                ContainerReply::Exec {
                    output: text,
                    exit_code: EXEC_TIMED_OUT,
                }
            }
        }
    }
}

/// Checks what the API should have checked.
fn check(call: &ContainerCall) -> Result<(), String> {
    match call {
        // A terminal without interactivity is ignored, as Zun does.
        ContainerCall::Exec { command, .. } => check_command(command),
        ContainerCall::ExecResize { width, height, .. } => {
            if *width == 0 || *height == 0 {
                return Err("A terminal needs a width and a height.".into());
            }
            Ok(())
        }
        ContainerCall::Top { ps_args } => {
            crate::runtime::pod::ps_words(ps_args.as_deref()).map(drop)
        }
        ContainerCall::GetArchive { path } | ContainerCall::PutArchive { path, .. } => {
            if path.starts_with('/') {
                Ok(())
            } else {
                Err(format!("{path:?} is not an absolute path."))
            }
        }
        ContainerCall::Stats => Ok(()),
    }
}
