//! What is asked of a running container and answered at once by its host: exec (its output,
//! or a session to attach to), the exec terminal's size, `top`, `stats` and archives. Each
//! is checked (policy, the container's state) before the host is asked. An exec and an
//! archive put are kept in the container's history (`exec_cmd`, `put_archive`), ended with
//! the host's answer (an interactive exec: when its host reports the session over).

use capsule_types::rpc::{ArchiveStat, ContainerReply, ContainerStats};
use db::container_actions::names;
use db::{ContainerRecord, NewAction};
use uuid::Uuid;

use super::{authorized, check_state, placed, refusal, unexpected, unreachable, Placed};
use crate::compute::ComputeError;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// An exec as asked (Zun's `execute` query).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// Zun's `run`: wait for the command and answer its output.
    pub run: bool,
    /// Zun's `interactive`: a stream the client attaches to.
    pub interactive: bool,
    /// Our `tty` (an extension; Zun's interactive sessions always have one): whether an
    /// interactive session has a terminal, or plain pipes whose stdin the client can end.
    pub tty: bool,
}

impl ExecRequest {
    /// Whether the command is streamed (an `interactive` one always is; a not-`run` one too).
    pub fn streamed(&self) -> bool {
        self.interactive || !self.run
    }
}

/// What an exec gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The command ran.
    Output {
        /// Its output.
        output: String,
        /// Its exit code.
        exit_code: i32,
    },
    /// The command waits for its stream.
    Session {
        /// The container (for the stream's URL).
        container: String,
        /// The session.
        exec_id: Uuid,
        /// The grant that opens its stream.
        grant: String,
    },
}

/// Records a call in the history; its answer ends it.
async fn record(
    state: &AppState,
    ctx: &RequestContext,
    rec: &ContainerRecord,
    action: &str,
) -> Result<(), ApiError> {
    let new = NewAction {
        action: action.to_owned(),
        request_id: ctx.request_id.0.clone(),
        user_id: Some(ctx.identity.user_id.clone()),
        project_id: rec.capsule.capsule.project_id.clone(),
    };
    let containers = [rec.container.uuid.clone()];
    state
        .db
        .start_container_action(&containers, &new, None, None)
        .await?;
    Ok(())
}

/// Ends a recorded call (best effort: the answer matters more than its history).
async fn finish(state: &AppState, ctx: &RequestContext, at: &Placed, error: Option<&str>) {
    let container = at.container.to_string();
    let done = state
        .db
        .finish_container_action(&container, &ctx.request_id.0, error)
        .await;
    if let Err(e) = done {
        tracing::warn!(%container, error = %crate::error::ErrorChain(&e), "cannot end the action");
    }
}

/// The host's answer; its refusal, or its silence, as the API's error.
fn answer(
    reply: Result<ContainerReply, ComputeError>,
    what: &str,
    at: &Placed,
) -> Result<ContainerReply, ApiError> {
    let reply = reply.map_err(|e| unreachable(e, what, &at.container.to_string()))?;
    match refusal(&reply) {
        Some(e) => Err(e),
        None => Ok(reply),
    }
}

/// `POST /v1/containers/{ident}/execute`.
pub async fn exec(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    req: ExecRequest,
) -> Result<ExecOutcome, ApiError> {
    let rec = authorized(state, ctx, ident, "container:execute").await?;
    check_state(&rec, "execute")?;
    let at = placed(state, &rec)?;
    record(state, ctx, &rec, names::EXEC).await?;
    let streamed = req.streamed();
    tracing::info!(container = %at.container, args = req.command.len(), streamed, "exec");
    let reply = state
        .compute
        .exec(
            &at.host,
            at.capsule,
            at.container,
            req.command,
            streamed,
            streamed && req.interactive && req.tty,
            &ctx.request_id.0,
        )
        .await;
    let reply = match answer(reply, "exec", &at) {
        Ok(r) => r,
        Err(e) => {
            finish(state, ctx, &at, Some(&e.to_string())).await;
            return Err(e);
        }
    };
    match reply {
        ContainerReply::Exec { output, exit_code } => {
            finish(state, ctx, &at, None).await;
            Ok(ExecOutcome::Output { output, exit_code })
        }
        ContainerReply::ExecSession { exec_id, stream } if streamed => Ok(ExecOutcome::Session {
            container: rec.container.uuid,
            exec_id,
            grant: stream.grant,
        }),
        other => Err(unexpected(&other, "exec")),
    }
}

/// `POST /v1/containers/{ident}/execute_resize`: session `exec_id`'s terminal is now
/// `width` x `height`.
pub async fn exec_resize(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    exec_id: Uuid,
    width: u16,
    height: u16,
) -> Result<(), ApiError> {
    let rec = authorized(state, ctx, ident, "container:execute_resize").await?;
    check_state(&rec, "execute_resize")?;
    let at = placed(state, &rec)?;
    let reply = state
        .compute
        .exec_resize(
            &at.host,
            at.capsule,
            at.container,
            exec_id,
            width,
            height,
            &ctx.request_id.0,
        )
        .await;
    match answer(reply, "exec resize", &at)? {
        ContainerReply::Done => Ok(()),
        other => Err(unexpected(&other, "exec_resize")),
    }
}

/// `GET /v1/containers/{ident}/top`: the column titles and a row per process.
pub async fn top(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    ps_args: Option<String>,
) -> Result<(Vec<String>, Vec<Vec<String>>), ApiError> {
    let rec = authorized(state, ctx, ident, "container:top").await?;
    check_state(&rec, "top")?;
    let at = placed(state, &rec)?;
    let reply = state
        .compute
        .top(
            &at.host,
            at.capsule,
            at.container,
            ps_args,
            &ctx.request_id.0,
        )
        .await;
    match answer(reply, "processes", &at)? {
        ContainerReply::Top { titles, processes } => Ok((titles, processes)),
        other => Err(unexpected(&other, "top")),
    }
}

/// `GET /v1/containers/{ident}/stats`: the container's name and figures.
pub async fn stats(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
) -> Result<(String, ContainerStats), ApiError> {
    let rec = authorized(state, ctx, ident, "container:stats").await?;
    check_state(&rec, "stats")?;
    let at = placed(state, &rec)?;
    let reply = state
        .compute
        .stats(&at.host, at.capsule, at.container, &ctx.request_id.0)
        .await;
    match answer(reply, "stats", &at)? {
        ContainerReply::Stats { stats } => Ok((rec.container.name, stats)),
        other => Err(unexpected(&other, "stats")),
    }
}

/// `GET /v1/containers/{ident}/get_archive`: a tar archive of `path` (base64) and what
/// `path` is; 413 when the archive is over `[api] archive_max_bytes`.
pub async fn get_archive(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    path: String,
) -> Result<(String, ArchiveStat), ApiError> {
    let rec = authorized(state, ctx, ident, "container:get_archive").await?;
    check_state(&rec, "get_archive")?;
    let at = placed(state, &rec)?;
    let reply = state
        .compute
        .get_archive(&at.host, at.capsule, at.container, path, &ctx.request_id.0)
        .await;
    match answer(reply, "archive", &at)? {
        ContainerReply::Archive { data, stat } => {
            let limit = state.config.api.archive_max_bytes;
            if data.len() / 4 * 3 > limit {
                return Err(ApiError::TooLarge(format!(
                    "The archive of {} is larger than the limit of {limit} bytes.",
                    stat.name
                )));
            }
            Ok((data, stat))
        }
        other => Err(unexpected(&other, "get_archive")),
    }
}

/// `POST /v1/containers/{ident}/put_archive`: extracts `data` (a tar archive, base64, already
/// checked) into directory `path`.
pub async fn put_archive(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    path: String,
    data: String,
) -> Result<(), ApiError> {
    let rec = authorized(state, ctx, ident, "container:put_archive").await?;
    check_state(&rec, "put_archive")?;
    let at = placed(state, &rec)?;
    record(state, ctx, &rec, names::PUT_ARCHIVE).await?;
    let reply = state
        .compute
        .put_archive(
            &at.host,
            at.capsule,
            at.container,
            path,
            data,
            &ctx.request_id.0,
        )
        .await;
    let result = match answer(reply, "archive", &at) {
        Ok(ContainerReply::Done) => Ok(()),
        Ok(other) => Err(unexpected(&other, "put_archive")),
        Err(e) => Err(e),
    };
    let error = result.as_ref().err().map(ToString::to_string);
    finish(state, ctx, &at, error.as_deref()).await;
    result
}
