//! `/v2.0/security-group-rules`: list, show, create and delete. A change reaches the compute
//! hosts of the rule's project through the firewall sender.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use capsule_types::secgroup::parse_rule_create;
use db::secgroups::{GroupScope, RuleCreated};
use serde_json::json;

use super::error::NetError;
use super::groups::owner;
use super::view::{self, ListQuery, RULE_FIELDS};
use super::{ensure_default, fields, json_body, may_change, reply, scope};
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
    ensure_default(&state, &ctx).await?;
    let scope = scope(&ctx)?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    let items = state
        .db
        .security_group_rules(scope)
        .await?
        .iter()
        .map(|r| view::rule(r, &defaults))
        .collect();
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
    let scope = scope(&ctx)?;
    let r = state
        .db
        .security_group_rule(scope, &id)
        .await?
        .ok_or_else(|| NetError::rule_not_found(&id))?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    let r = view::project(view::rule(&r, &defaults), &fields(query.as_deref()));
    Ok(reply(StatusCode::OK, json!({ "security_group_rule": r })))
}

/// `POST /v2.0/security-group-rules`.
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NetError> {
    may_change(&ctx, "create_security_group_rule")?;
    let body = json_body(&headers, &body, state.config.api.max_body_bytes)?;
    let rule = parse_rule_create(&body)?;
    ensure_default(&state, &ctx).await?;
    let scope = scope(&ctx)?;
    let group = state
        .db
        .security_group(scope, &rule.security_group_id)
        .await?
        .ok_or_else(|| NetError::group_not_found(&rule.security_group_id))?
        .group;
    // A project-scoped caller names the group's project, or none.
    let owner = owner(&ctx, &body["security_group_rule"])?;
    if owner != group.project_id && !ctx.is_admin {
        return Err(NetError::group_not_found(&rule.security_group_id));
    }
    if let Some(remote) = &rule.remote_group_id {
        if state.db.security_group(scope, remote).await?.is_none() {
            return Err(NetError::group_not_found(remote));
        }
    }
    match state.db.create_security_group_rule(scope, &rule).await? {
        RuleCreated::Added(r) => {
            tracing::info!(rule = %r.id, group = %r.security_group_id, "security group rule created");
            if let Some(fw) = &state.firewall {
                fw.project_changed(&group.project_id).await;
            }
            let defaults = state
                .db
                .default_security_group_ids(GroupScope::Project(&group.project_id))
                .await?;
            Ok(reply(
                StatusCode::CREATED,
                json!({ "security_group_rule": view::rule(&r, &defaults) }),
            ))
        }
        RuleCreated::Exists { rule_id } => Err(NetError::new(
            StatusCode::CONFLICT,
            "SecurityGroupRuleExists",
            format!("Security group rule already exists. Rule id is {rule_id}."),
        )),
        RuleCreated::NoGroup => Err(NetError::group_not_found(&rule.security_group_id)),
    }
}

/// `DELETE /v2.0/security-group-rules/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, NetError> {
    may_change(&ctx, "delete_security_group_rule")?;
    let scope = scope(&ctx)?;
    let Some(r) = state.db.security_group_rule(scope, &id).await? else {
        return Err(NetError::rule_not_found(&id));
    };
    if !state.db.delete_security_group_rule(scope, &id).await? {
        return Err(NetError::rule_not_found(&id));
    }
    tracing::info!(rule = %id, group = %r.security_group_id, "security group rule deleted");
    if let Some(fw) = &state.firewall {
        fw.project_changed(&r.project_id).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
