//! Where an interactive exec's stream is: the compute host of the container named in the
//! stream's URL, and the stream listener that host's heartbeats advertised. The stream route
//! carries no Keystone token (websocket clients send none): its grant, which the host checks,
//! is its only authority, so nothing here depends on who asks.

use capsule_types::rpc::COMPUTE_BINARY;
use db::Scope;

use crate::error::ApiError;
use crate::state::AppState;

/// The host's stream listener (`host:port`) for the container `uuid`.
pub async fn host_address(state: &AppState, uuid: &str) -> Result<String, ApiError> {
    let gone = || ApiError::NotFound {
        code: "container-not-found",
        message: format!("Container {uuid} could not be found."),
    };
    if uuid::Uuid::try_parse(uuid).is_err() {
        return Err(gone());
    }
    let found = state.db.containers_by_ident(&Scope::All, uuid).await?;
    let Some(rec) = found.into_iter().find(|r| r.container.uuid == uuid) else {
        return Err(gone());
    };
    let Some(host) = rec.capsule.capsule.host else {
        return Err(ApiError::Conflict(format!(
            "Container {uuid} is not on any host yet."
        )));
    };
    let service = state.db.service(&host, COMPUTE_BINARY).await?;
    service.and_then(|s| s.stream_address).ok_or_else(|| {
        ApiError::ServiceUnavailable(format!(
            "Compute host {host} has no stream listener, so it cannot stream an exec."
        ))
    })
}
