//! `/os-availability-zone` handler: the compute hosts' zones and whether each is available.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::call::Call;
use super::error::CinderError;
use crate::app::zone as app;
use crate::state::AppState;

/// `GET /os-availability-zone`.
pub async fn list(State(state): State<AppState>, _call: Call) -> Result<Json<Value>, CinderError> {
    let info: Vec<Value> = app::states(&state)
        .await?
        .into_iter()
        .map(|(name, available)| json!({"zoneName": name, "zoneState": {"available": available}}))
        .collect();
    Ok(Json(json!({ "availabilityZoneInfo": info })))
}
