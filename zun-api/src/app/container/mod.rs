//! Capsule containers on their own (Zun's `/v1/containers/{ident}/...` routes): looked up by
//! uuid or name within what the caller may see, their state checked as Zun's
//! `validate_container_state` does before anything is sent, and what their host answers
//! turned into the API's errors. The operations: [`lifecycle`] (stop, start, restart, kill,
//! pause, unpause, one container or a whole capsule), [`calls`] (exec, resize, top, stats,
//! archives), [`history`] (container actions) and [`stream`] (where an exec's stream is).

pub mod calls;
pub mod history;
pub mod lifecycle;
pub mod stream;

use capsule_types::rpc::ContainerReply;
use db::{ContainerRecord, Scope};
use policy::Target;
use uuid::Uuid;

use crate::compute::ComputeError;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// Finds the container as Zun does: 404 when missing (or another project's), 409 when a name
/// is ambiguous. Admins (`container:get_one_all_projects`) find any project's.
pub async fn lookup(
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

/// The policy target of a container: its capsule's project and user.
pub fn target(rec: &ContainerRecord) -> Target {
    Target::new()
        .with("project_id", rec.capsule.capsule.project_id.clone())
        .with("user_id", rec.capsule.capsule.user_id.clone())
}

/// Looks the container up and enforces `rule` on it.
pub async fn authorized(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    rule: &str,
) -> Result<ContainerRecord, ApiError> {
    let rec = lookup(state, ctx, ident).await?;
    state.policy.enforce(rule, &target(&rec), &ctx.creds)?;
    Ok(rec)
}

/// The statuses in which Zun allows `action` (`zun.common.utils.VALID_STATES`).
fn valid_states(action: &str) -> &'static [&'static str] {
    match action {
        "start" => &["Created", "Stopped", "Error"],
        "stop" | "pause" | "kill" | "execute" | "execute_resize" | "top" | "stats" => &["Running"],
        "reboot" => &["Created", "Running", "Stopped", "Error"],
        "unpause" => &["Paused"],
        "get_archive" | "put_archive" => &["Created", "Paused", "Running", "Stopped"],
        "logs" => &[
            "Created", "Error", "Paused", "Running", "Stopped", "Unknown",
        ],
        _ => &[],
    }
}

/// Zun's `validate_container_state`: 409 `Cannot <action> container <uuid> in <status>
/// state` unless the container's status allows `action`.
pub fn check_state(rec: &ContainerRecord, action: &str) -> Result<(), ApiError> {
    let status = rec.container.status.as_str();
    if valid_states(action).contains(&status) {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "Cannot {action} container {} in {status} state",
        rec.container.uuid
    )))
}

/// Where a container runs: its host, capsule and own id.
#[derive(Clone, Debug)]
pub struct Placed {
    /// The compute host.
    pub host: String,
    /// The capsule.
    pub capsule: Uuid,
    /// The container.
    pub container: Uuid,
}

/// Where `rec` runs; 409 when it has no host yet, 503 when no host can be reached at all.
pub fn placed(state: &AppState, rec: &ContainerRecord) -> Result<Placed, ApiError> {
    let Some(host) = rec.capsule.capsule.host.clone() else {
        return Err(ApiError::Conflict(format!(
            "Container {} is not on any host yet.",
            rec.container.uuid
        )));
    };
    if !state.compute.is_connected() {
        return Err(ApiError::ServiceUnavailable(
            "No message bus is configured, so no compute host can be reached.".into(),
        ));
    }
    Ok(Placed {
        host,
        capsule: rec
            .capsule
            .capsule
            .uuid
            .parse()
            .map_err(ApiError::internal)?,
        container: rec.container.uuid.parse().map_err(ApiError::internal)?,
    })
}

/// The API's error for a call the host could not be asked or did not answer.
pub fn unreachable(e: ComputeError, what: &str, container: &str) -> ApiError {
    match e {
        ComputeError::Unreachable { host, source } => ApiError::ServiceUnavailable(format!(
            "Compute host {host} did not answer for the {what} of container {container}: \
             {source}"
        )),
        ComputeError::NoBus => ApiError::ServiceUnavailable(
            "No message bus is configured, so no compute host can be reached.".into(),
        ),
        other => ApiError::internal(other),
    }
}

/// The API's error for a host's refusal; `None` for an answer that is not one.
pub fn refusal(reply: &ContainerReply) -> Option<ApiError> {
    Some(match reply {
        ContainerReply::NotFound { message } => ApiError::NotFound {
            code: "not-found",
            message: message.clone(),
        },
        ContainerReply::Conflict { message } => ApiError::Conflict(message.clone()),
        ContainerReply::Invalid { message } => ApiError::BadRequest {
            code: "invalid",
            message: message.clone(),
        },
        ContainerReply::TooLarge { message } => ApiError::TooLarge(message.clone()),
        ContainerReply::Unavailable { message } => ApiError::ServiceUnavailable(message.clone()),
        _ => return None,
    })
}

/// A host's answer of an unexpected kind (a host of another version, or a bug).
pub fn unexpected(reply: &ContainerReply, what: &str) -> ApiError {
    #[derive(Debug, thiserror::Error)]
    #[error("compute host answered {what} with {got}")]
    struct Unexpected {
        what: String,
        got: String,
    }
    let got = serde_json::to_value(reply)
        .ok()
        .and_then(|v| v["result"].as_str().map(str::to_owned))
        .unwrap_or_default();
    ApiError::internal(Unexpected {
        what: what.to_owned(),
        got,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zun_valid_states() {
        assert_eq!(valid_states("stop"), ["Running"]);
        assert_eq!(valid_states("unpause"), ["Paused"]);
        assert!(valid_states("start").contains(&"Stopped"));
        assert!(!valid_states("execute").contains(&"Paused"));
        assert!(valid_states("unknown-action").is_empty());
    }
}
