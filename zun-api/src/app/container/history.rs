//! A container's history (Zun's `GET /v1/containers/{ident}/container_actions[/{request_id}]`):
//! its actions, newest first, and one action with its events, whose failure details
//! (`traceback`) only `container:action:events` (admins) may see.

use db::entity::container_action;
use db::ActionRecord;

use super::authorized;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// One action with its events, and whether the caller may see their failure details.
#[derive(Clone, Debug)]
pub struct ActionDetail {
    /// The action and its events.
    pub record: ActionRecord,
    /// `container:action:events` allows the details.
    pub show_traceback: bool,
}

/// The actions of container `ident`, newest first.
pub async fn list(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
) -> Result<Vec<container_action::Model>, ApiError> {
    let rec = authorized(state, ctx, ident, "container:actions").await?;
    Ok(state.db.container_actions(&rec.container.uuid).await?)
}

/// Action `request_id` of container `ident`; 404 (Zun's words) when it has none.
pub async fn show(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    request_id: &str,
) -> Result<ActionDetail, ApiError> {
    let rec = authorized(state, ctx, ident, "container:actions").await?;
    let Some(record) = state
        .db
        .container_action(&rec.container.uuid, request_id)
        .await?
    else {
        return Err(ApiError::NotFound {
            code: "resource-not-found",
            message: format!("The Action resource {request_id} could not be found."),
        });
    };
    let show_traceback =
        state
            .policy
            .check("container:action:events", &super::target(&rec), &ctx.creds);
    Ok(ActionDetail {
        record,
        show_traceback,
    })
}
