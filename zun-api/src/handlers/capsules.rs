//! `/v1/capsules` handlers: list, create, show, delete.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::capsules as app;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{capsule_json, capsule_list_json, ViewMask};

/// `GET /v1/capsules`.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = app::ListQuery::parse(query.as_deref(), state.config.api.max_limit)?;
    let page = app::list(&state, &ctx, &params).await?;
    let mask = ViewMask::for_request(&state.policy, &ctx);
    let body = capsule_list_json(&page, &ctx, &mask)?;
    Ok(json_response(StatusCode::OK, body))
}

/// `POST /v1/capsules`: 202 with the capsule and its `Location`.
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = app::read_json_body(&headers, body, state.config.api.max_body_bytes).await?;
    let rec = app::create(&state, &ctx, body, query.as_deref()).await?;
    let mask = ViewMask::for_request(&state.policy, &ctx);
    let location = format!("{}/v1/capsules/{}", ctx.base_url, rec.capsule.uuid);
    let mut resp = json_response(StatusCode::ACCEPTED, capsule_json(&rec, &ctx, &mask)?);
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /v1/capsules/{ident}`: by uuid or name.
pub async fn show(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<Response, ApiError> {
    let rec = app::show(&state, &ctx, &ident).await?;
    let mask = ViewMask::for_request(&state.policy, &ctx);
    Ok(json_response(
        StatusCode::OK,
        capsule_json(&rec, &ctx, &mask)?,
    ))
}

/// `DELETE /v1/capsules/{ident}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let all_projects = app::all_projects_flag(query.as_deref())?;
    app::delete(&state, &ctx, &ident, all_projects).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
