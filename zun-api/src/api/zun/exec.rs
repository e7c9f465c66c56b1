//! Exec in capsule containers: `POST /v1/containers/{ident}/execute` (the output, or an
//! interactive session's `proxy_url`), `execute_resize`, and `GET .../exec_stream`, the
//! websocket a session's `proxy_url` names. That route is authorized by its grant alone (no
//! Keystone token: websocket clients send none; see `http::auth::is_public`): it is relayed to
//! the container's host, which holds the grant and refuses any other.

use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use uuid::Uuid;

use super::parse::container::{exec_resize as parse_resize, only};
use super::parse::exec::execute as parse_execute;
use super::view::container::exec_json;
use crate::app::container::{calls, stream};
use crate::compute::stream::{connect_exec, StreamError};
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorChain};
use crate::http::body::read_optional_json;
use crate::http::query::{last, pairs};
use crate::http::relay::{relay, RelayEnd};
use crate::state::AppState;

/// Longest grant.
const MAX_GRANT: usize = 512;

/// `POST /v1/containers/{ident}/execute?command=...&run=...&interactive=...`.
pub async fn execute(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = read_optional_json(&headers, body, state.config.api.max_body_bytes).await?;
    let req = parse_execute(query.as_deref(), body.as_ref())?;
    let outcome = calls::exec(&state, &ctx, &ident, req).await?;
    Ok(Json(exec_json(&outcome, &ctx.base_url)))
}

/// `POST /v1/containers/{ident}/execute_resize?exec_id=...&w=...&h=...`.
pub async fn execute_resize(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (exec_id, w, h) = parse_resize(query.as_deref())?;
    calls::exec_resize(&state, &ctx, &ident, exec_id, w, h).await?;
    Ok(Json(Value::Null))
}

/// The stream's query: the session and its grant (token characters only, as the host issues
/// them; never logged).
fn stream_query(query: Option<&str>) -> Result<(Uuid, String), ApiError> {
    let pairs = pairs(query);
    only(&pairs, &["exec_id", "grant"])?;
    let exec_id = last(&pairs, "exec_id")
        .and_then(|v| Uuid::try_parse(v).ok())
        .ok_or_else(|| ApiError::invalid_value("exec_id is missing or not a session id."))?;
    let grant = last(&pairs, "grant").unwrap_or_default();
    let token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if grant.is_empty() || grant.len() > MAX_GRANT || !grant.chars().all(token) {
        return Err(ApiError::invalid_value("grant is missing or malformed."));
    }
    Ok((exec_id, grant.to_owned()))
}

/// `GET /v1/containers/{uuid}/exec_stream?exec_id=...&grant=...`: a websocket (subprotocol
/// `binary`, which python-zunclient asks for) relayed to the session on the container's host.
/// The host is connected first, so a refused grant is an HTTP error, not an empty session.
pub async fn exec_stream(
    State(state): State<AppState>,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Ok(ws) = ws else {
        return Err(ApiError::invalid_value(
            "This is a websocket: connect with a websocket client (Upgrade: websocket).",
        ));
    };
    let (exec_id, grant) = stream_query(query.as_deref())?;
    let address = stream::host_address(&state, &ident).await?;
    let host = connect_exec(&address, exec_id, &grant)
        .await
        .map_err(|e| match e {
            StreamError::Refused { status: 404 } => ApiError::NotFound {
                code: "not-found",
                message: format!("Exec session {exec_id} is over or never was."),
            },
            StreamError::Refused { status } if status < 500 => ApiError::Forbidden {
                rule: "the grant of this exec session (unknown, used or expired)".into(),
            },
            other => {
                tracing::warn!(%exec_id, error = %ErrorChain(&other), "cannot reach the exec stream");
                ApiError::ServiceUnavailable(format!(
                    "The compute host of container {ident} cannot stream exec {exec_id} now."
                ))
            }
        })?;
    tracing::info!(container = %ident, %exec_id, "exec stream attached");
    let resp = ws
        .protocols(["binary"])
        .on_upgrade(move |socket| async move {
            let end = relay(socket, host).await;
            let how = match &end {
                RelayEnd::Host(reason) => reason.clone().unwrap_or_default(),
                RelayEnd::Client => "client left".to_owned(),
            };
            tracing::info!(container = %ident, %exec_id, end = %how, "exec stream over");
        });
    Ok(resp.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_token_characters() {
        let id = Uuid::new_v4();
        let (e, g) = stream_query(Some(&format!("exec_id={id}&grant=abc-DEF_1.2~3"))).unwrap();
        assert_eq!((e, g.as_str()), (id, "abc-DEF_1.2~3"));
        for bad in [
            format!("exec_id={id}"),
            format!("exec_id={id}&grant="),
            format!("exec_id={id}&grant=a%0D%0Ab"),
            format!("exec_id={id}&grant=a%20b"),
            format!("exec_id={id}&grant={}", "a".repeat(MAX_GRANT + 1)),
            "exec_id=x&grant=abc".to_owned(),
            format!("exec_id={id}&grant=abc&host=evil:1"),
        ] {
            assert!(stream_query(Some(&bad)).is_err(), "{bad}");
        }
    }
}
