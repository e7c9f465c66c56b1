//! `/v2.0/security-groups` handlers: list, show, create, update (name and description) and
//! delete.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::NetError;
use super::parse::{self, ListQuery};
use super::reply;
use super::view::{self, GROUP_FIELDS};
use crate::app::secgroup as app;
use crate::context::RequestContext;
use crate::http::context::base_url;
use crate::state::AppState;

/// `GET /v2.0/security-groups`.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, NetError> {
    let q = ListQuery::parse(query.as_deref(), GROUP_FIELDS)?;
    let (groups, defaults) = app::list(&state, &ctx).await?;
    let items = groups
        .iter()
        .map(|rec| view::group(rec, &defaults))
        .collect();
    let base = format!(
        "{}/v2.0/security-groups",
        base_url(state.config.network_api.public_url.as_deref(), &headers)
    );
    Ok(reply(
        StatusCode::OK,
        q.render("security_groups", items, &base),
    ))
}

/// `GET /v2.0/security-groups/{id}`.
pub async fn show(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, NetError> {
    let (rec, defaults) = app::show(&state, &ctx, &id).await?;
    let g = view::project(
        view::group(&rec, &defaults),
        &parse::fields(query.as_deref()),
    );
    Ok(reply(StatusCode::OK, json!({ "security_group": g })))
}

/// `POST /v2.0/security-groups`.
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NetError> {
    let req = parse::group_create(&headers, &body, state.config.api.max_body_bytes);
    let (rec, defaults) = app::create(&state, &ctx, req).await?;
    Ok(reply(
        StatusCode::CREATED,
        json!({ "security_group": view::group(&rec, &defaults) }),
    ))
}

/// `PUT /v2.0/security-groups/{id}`.
pub async fn update(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NetError> {
    let req = parse::group_update(&headers, &body, state.config.api.max_body_bytes);
    let (rec, defaults) = app::update(&state, &ctx, &id, req).await?;
    Ok(reply(
        StatusCode::OK,
        json!({ "security_group": view::group(&rec, &defaults) }),
    ))
}

/// `DELETE /v2.0/security-groups/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, NetError> {
    app::delete(&state, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
