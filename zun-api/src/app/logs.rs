//! Container logs (Zun's `GET /v1/containers/{ident}/logs`) for capsule containers: the
//! container looked up by uuid or name within what the caller may see, and the lines read on
//! the container's host with a call ([`ComputeClient::container_logs`]).
//!
//! [`ComputeClient::container_logs`]: crate::compute::ComputeClient::container_logs

use capsule_types::rpc::{LogQuery, LogsReply};

use crate::app::container::{authorized, check_state, placed, unreachable};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// The logs of container `ident` as text; `query` is the parsed query, or why it did not
/// parse (reported once the container is found and the caller allowed, as Zun does).
pub async fn logs(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    query: Result<LogQuery, ApiError>,
) -> Result<String, ApiError> {
    let rec = authorized(state, ctx, ident, "container:logs").await?;
    let q = query?;
    check_state(&rec, "logs")?;
    let at = placed(state, &rec)?;
    let reply = state
        .compute
        .container_logs(
            &at.host,
            at.capsule,
            &rec.container.name,
            q,
            &ctx.request_id.0,
        )
        .await
        .map_err(|e| unreachable(e, "logs", &rec.container.uuid))?;
    match reply {
        LogsReply::Logs { text } => Ok(text),
        LogsReply::NotFound { message } => Err(ApiError::NotFound {
            code: "container-not-found",
            message,
        }),
        LogsReply::Unavailable { message } => Err(ApiError::Conflict(message)),
    }
}
