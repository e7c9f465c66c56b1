//! The lifecycle actions (Zun's stop, start, reboot, kill, pause, unpause) on one capsule
//! container, and our extension on every application container of a capsule (stop, start,
//! restart). Each is checked (policy, the container's state), then recorded in the
//! container's history with its task state and the message to the host, in one transaction
//! (the outbox); the API answers 202 and the host's report ends the action.

use capsule_types::rpc::ContainerAction;
use db::container_actions::lifecycle;
use db::{CapsuleRecord, NewAction};

use super::{authorized, check_state, placed, valid_states};
use crate::app::capsule::{capsule_target, lookup as capsule_lookup};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// The policy rule of an action (`container:stop`, ...; a restart is Zun's `reboot`).
fn rule(action: &ContainerAction) -> String {
    format!("container:{}", action.zun_name())
}

fn recorded(ctx: &RequestContext, action: &ContainerAction, project: &str) -> NewAction {
    NewAction {
        action: action.zun_name().to_owned(),
        request_id: ctx.request_id.0.clone(),
        user_id: Some(ctx.identity.user_id.clone()),
        project_id: project.to_owned(),
    }
}

/// `POST /v1/containers/{ident}/<action>`: does `action` to the container.
pub async fn act(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    action: ContainerAction,
) -> Result<(), ApiError> {
    let name = action.zun_name();
    let rec = authorized(state, ctx, ident, &rule(&action)).await?;
    check_state(&rec, name)?;
    let at = placed(state, &rec)?;
    let msg = state
        .compute
        .container_action(
            &at.host,
            at.capsule,
            Some(at.container),
            action.clone(),
            &ctx.request_id.0,
        )
        .map_err(ApiError::internal)?;
    let new = recorded(ctx, &action, &rec.capsule.capsule.project_id);
    let task_state = lifecycle(name).map(|(ts, _)| ts);
    let ids = state
        .db
        .start_container_action(
            std::slice::from_ref(&rec.container.uuid),
            &new,
            task_state,
            Some(msg),
        )
        .await?;
    tracing::info!(container = %at.container, host = %at.host, action = name, "container action accepted");
    state.publish_now(&ids).await;
    Ok(())
}

/// `POST /v1/capsules/{ident}/<stop|start|restart>` (our extension): does `action` to every
/// application container of the capsule. 409 when none of them is in a state that allows it.
pub async fn act_on_capsule(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    action: ContainerAction,
) -> Result<CapsuleRecord, ApiError> {
    let name = action.zun_name();
    let rec = capsule_lookup(state, ctx, ident, false).await?;
    state
        .policy
        .enforce(&rule(&action), &capsule_target(&rec), &ctx.creds)?;
    let c = &rec.capsule;
    if !rec
        .containers
        .iter()
        .any(|x| valid_states(name).contains(&x.status.as_str()))
    {
        return Err(ApiError::Conflict(format!(
            "Cannot {name} capsule {}: none of its containers is in a state that allows it \
             ({}).",
            c.uuid,
            valid_states(name).join(", ")
        )));
    }
    let Some(host) = c.host.clone() else {
        return Err(ApiError::Conflict(format!(
            "Capsule {} is not on any host yet.",
            c.uuid
        )));
    };
    if !state.compute.is_connected() {
        return Err(ApiError::ServiceUnavailable(
            "No message bus is configured, so no compute host can be reached.".into(),
        ));
    }
    let capsule = c.uuid.parse().map_err(ApiError::internal)?;
    let msg = state
        .compute
        .container_action(&host, capsule, None, action.clone(), &ctx.request_id.0)
        .map_err(ApiError::internal)?;
    let all: Vec<String> = rec.containers.iter().map(|x| x.uuid.clone()).collect();
    let new = recorded(ctx, &action, &c.project_id);
    let task_state = lifecycle(name).map(|(ts, _)| ts);
    let ids = state
        .db
        .start_container_action(&all, &new, task_state, Some(msg))
        .await?;
    tracing::info!(capsule = %c.uuid, %host, action = name, "capsule action accepted");
    state.publish_now(&ids).await;
    Ok(rec)
}
