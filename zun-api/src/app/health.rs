//! Health (Zun's `/healthcheck`): the service is healthy while its database answers.

use crate::error::ApiError;
use crate::state::AppState;

/// Whether the service can serve: the database answers.
pub async fn check(state: &AppState) -> Result<(), ApiError> {
    state.db.ping().await?;
    Ok(())
}
