//! `/v2.0/security-group-rules` handlers: list, show, create and delete.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::NetError;
use super::parse::{self, ListQuery};
use super::reply;
use super::view::{self, RULE_FIELDS};
use crate::app::secgroup_rule as app;
use crate::context::RequestContext;
use crate::http::context::base_url;
use crate::state::AppState;

/// `GET /v2.0/security-group-rules`.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, NetError> {
    let q = ListQuery::parse(query.as_deref(), RULE_FIELDS)?;
    let (rules, defaults) = app::list(&state, &ctx).await?;
    let items = rules.iter().map(|r| view::rule(r, &defaults)).collect();
    let base = format!(
        "{}/v2.0/security-group-rules",
        base_url(state.config.network_api.public_url.as_deref(), &headers)
    );
    Ok(reply(
        StatusCode::OK,
        q.render("security_group_rules", items, &base),
    ))
}

/// `GET /v2.0/security-group-rules/{id}`.
pub async fn show(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, NetError> {
    let (r, defaults) = app::show(&state, &ctx, &id).await?;
    let r = view::project(view::rule(&r, &defaults), &parse::fields(query.as_deref()));
    Ok(reply(StatusCode::OK, json!({ "security_group_rule": r })))
}

/// `POST /v2.0/security-group-rules`.
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NetError> {
    let req = parse::rule_create(&headers, &body, state.config.api.max_body_bytes);
    let (r, defaults) = app::create(&state, &ctx, req).await?;
    Ok(reply(
        StatusCode::CREATED,
        json!({ "security_group_rule": view::rule(&r, &defaults) }),
    ))
}

/// `DELETE /v2.0/security-group-rules/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, NetError> {
    app::delete(&state, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
