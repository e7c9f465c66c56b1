//! Container logs (Zun's `GET /v1/containers/{ident}/logs`) for capsule containers: the
//! container looked up by uuid or name within what the caller may see, and the lines read on
//! the container's host with a call ([`ComputeClient::container_logs`]).
//!
//! [`ComputeClient::container_logs`]: crate::compute::ComputeClient::container_logs

use capsule_types::rpc::{LogQuery, LogsReply};
use db::{ContainerRecord, Scope};
use policy::Target;

use crate::compute::ComputeError;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// Statuses in which Zun serves logs (`VALID_STATES['logs']`).
const LOG_STATES: [&str; 6] = [
    "Created", "Error", "Paused", "Running", "Stopped", "Unknown",
];

/// Finds the container as Zun does: 404 when missing, 409 when a name is ambiguous.
async fn lookup(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
) -> Result<ContainerRecord, ApiError> {
    let scope = if state.policy.check(
        "container:get_one_all_projects",
        &Target::owned_by(&ctx.creds),
        &ctx.creds,
    ) {
        Scope::All
    } else {
        match &ctx.identity.project_id {
            Some(p) => Scope::Project(p.clone()),
            None => Scope::User(ctx.identity.user_id.clone()),
        }
    };
    let mut found = state.db.containers_by_ident(&scope, ident).await?;
    match found.len() {
        0 => Err(ApiError::NotFound {
            code: "container-not-found",
            message: format!("Container {ident} could not be found."),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::Conflict(
            "Multiple containers exist with same name. Please use the container uuid instead."
                .into(),
        )),
    }
}

/// The logs of container `ident` as text; `query` is the parsed query, or why it did not
/// parse (reported once the container is found and the caller allowed, as Zun does).
pub async fn logs(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    query: Result<LogQuery, ApiError>,
) -> Result<String, ApiError> {
    let rec = lookup(state, ctx, ident).await?;
    let target = Target::new()
        .with("project_id", rec.capsule.capsule.project_id.clone())
        .with("user_id", rec.capsule.capsule.user_id.clone());
    state
        .policy
        .enforce("container:logs", &target, &ctx.creds)?;
    let q = query?;
    let status = rec.container.status.as_str();
    if !LOG_STATES.contains(&status) {
        return Err(ApiError::Conflict(format!(
            "Cannot logs container {} in {status} state.",
            rec.container.uuid
        )));
    }
    let Some(host) = rec.capsule.capsule.host.clone() else {
        return Err(ApiError::Conflict(format!(
            "Container {} is not on any host yet.",
            rec.container.uuid
        )));
    };
    if !state.compute.is_connected() {
        return Err(ApiError::ServiceUnavailable(
            "No message bus is configured, so no compute host can be asked for logs.".into(),
        ));
    }
    let capsule = rec
        .capsule
        .capsule
        .uuid
        .parse()
        .map_err(ApiError::internal)?;
    let reply = state
        .compute
        .container_logs(&host, capsule, &rec.container.name, q, &ctx.request_id.0)
        .await
        .map_err(|e| match e {
            ComputeError::Unreachable { host, source } => ApiError::ServiceUnavailable(format!(
                "Compute host {host} did not answer for the logs of container {}: {source}",
                rec.container.uuid
            )),
            other => ApiError::internal(other),
        })?;
    match reply {
        LogsReply::Logs { text } => Ok(text),
        LogsReply::NotFound { message } => Err(ApiError::NotFound {
            code: "container-not-found",
            message,
        }),
        LogsReply::Unavailable { message } => Err(ApiError::Conflict(message)),
    }
}
