//! `/v1/capsules` handlers: list, create, show, delete; and our extension, the lifecycle
//! actions of a whole capsule (stop, start, restart every application container).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use capsule_types::rpc::ContainerAction;

use super::parse;
use super::view::{capsule_json, capsule_list_json, ViewMask};
use crate::app::capsule::{self as app, Listing};
use crate::app::container::lifecycle;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::http::body::read_json_body;
use crate::http::json_response;
use crate::state::AppState;

/// `GET /v1/capsules`. Pages of one project come from the list cache, gzip-compressed when
/// the client accepts it.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = parse::capsule_list(query.as_deref(), state.config.api.max_limit)?;
    let mask = ViewMask::for_request(&state.policy, &ctx);
    let render = |page: &app::Page| capsule_list_json(page, &ctx, &mask);
    let page = match app::list(&state, &ctx, &q, mask.fingerprint(), render).await? {
        Listing::Fresh(body) => return Ok(json_response(StatusCode::OK, body)),
        Listing::Cached(page) => page,
    };
    let mut resp = if accepts_gzip(&headers) {
        let mut r = json_response(StatusCode::OK, page.gzip());
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        json_response(StatusCode::OK, page.body.clone())
    };
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Ok(resp)
}

/// Whether `Accept-Encoding` allows gzip (with a non-zero quality).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !q_zero
        })
}

/// `POST /v1/capsules`: 202 with the capsule and its `Location`.
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_json_body(&headers, body, state.config.api.max_body_bytes).await?;
    let body = parse::create_body(body, query.as_deref());
    let rec = app::create(&state, &ctx, body).await?;
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
    let all_projects = parse::all_projects_flag(query.as_deref())?;
    let force = parse::force_flag(query.as_deref())?;
    app::delete(&state, &ctx, &ident, all_projects, force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/capsules/{ident}/stop?timeout=` (our extension): stops every application
/// container of the capsule; 202.
pub async fn stop(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let timeout_seconds = parse::container::timeout(query.as_deref())?;
    let action = ContainerAction::Stop { timeout_seconds };
    lifecycle::act_on_capsule(&state, &ctx, &ident, action).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /v1/capsules/{ident}/start` (our extension): starts every application container of
/// the capsule; 202.
pub async fn start(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
) -> Result<StatusCode, ApiError> {
    lifecycle::act_on_capsule(&state, &ctx, &ident, ContainerAction::Start).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /v1/capsules/{ident}/restart?timeout=` (our extension): restarts every application
/// container of the capsule; 202.
pub async fn restart(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(ident): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let timeout_seconds = parse::container::timeout(query.as_deref())?;
    let action = ContainerAction::Restart { timeout_seconds };
    lifecycle::act_on_capsule(&state, &ctx, &ident, action).await?;
    Ok(StatusCode::ACCEPTED)
}
