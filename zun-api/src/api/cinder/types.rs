//! `/types` handlers: the one volume type.

use axum::Json;
use serde_json::{json, Value};

use super::call::Call;
use super::error::CinderError;
use super::view;
use crate::app::volume_type as app;

/// `GET /types`: the one volume type.
pub async fn list(_call: Call) -> Json<Value> {
    Json(json!({ "volume_types": [view::default_type()] }))
}

/// `GET /types/{id}`: the one volume type, by id, name or `default`.
pub async fn show(call: Call) -> Result<Json<Value>, CinderError> {
    app::find(call.param("type_id"))?;
    Ok(Json(json!({ "volume_type": view::default_type() })))
}
