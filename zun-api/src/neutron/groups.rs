//! `/v2.0/security-groups`: list, show, create, update (name and description) and delete.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use capsule_types::secgroup::{parse_group_create, parse_group_update};
use db::secgroups::{GroupDeleted, GroupScope};
use serde_json::{json, Value};

use super::error::NetError;
use super::view::{self, ListQuery, GROUP_FIELDS};
use super::{ensure_default, fields, json_body, may_change, reply, scope};
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
    ensure_default(&state, &ctx).await?;
    let scope = scope(&ctx)?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    let items = state
        .db
        .security_groups(scope)
        .await?
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
    ensure_default(&state, &ctx).await?;
    let scope = scope(&ctx)?;
    let rec = state
        .db
        .security_group(scope, &id)
        .await?
        .ok_or_else(|| NetError::group_not_found(&id))?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    let g = view::project(view::group(&rec, &defaults), &fields(query.as_deref()));
    Ok(reply(StatusCode::OK, json!({ "security_group": g })))
}

/// `POST /v2.0/security-groups`.
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NetError> {
    may_change(&ctx, "create_security_group")?;
    let body = json_body(&headers, &body, state.config.api.max_body_bytes)?;
    let f = parse_group_create(&body)?;
    if body["security_group"].get("stateful") == Some(&Value::Bool(false)) {
        return Err(NetError::bad_request(
            "Stateless security groups are not supported: connection tracking is always on.",
        ));
    }
    let project = owner(&ctx, &body["security_group"])?;
    state.db.ensure_default_security_group(&project).await?;
    let name = f.name.unwrap_or_default();
    let description = f.description.unwrap_or_default();
    let rec = state
        .db
        .create_security_group(&project, &name, &description)
        .await?;
    tracing::info!(group = %rec.group.id, %project, name, "security group created");
    let defaults = state
        .db
        .default_security_group_ids(GroupScope::Project(&project))
        .await?;
    Ok(reply(
        StatusCode::CREATED,
        json!({ "security_group": view::group(&rec, &defaults) }),
    ))
}

/// The project a new resource belongs to: the caller's, or (admin only) the one the body
/// names in `project_id` or `tenant_id`.
pub(super) fn owner(ctx: &RequestContext, resource: &Value) -> Result<String, NetError> {
    let asked = ["project_id", "tenant_id"]
        .iter()
        .find_map(|k| resource.get(*k).and_then(Value::as_str))
        .filter(|p| !p.is_empty());
    let own = ctx.identity.project_id.as_deref();
    match (asked, own) {
        (Some(p), Some(o)) if p == o => Ok(p.to_owned()),
        (Some(p), _) if ctx.is_admin => Ok(p.to_owned()),
        (Some(_), _) => Err(NetError::new(
            StatusCode::FORBIDDEN,
            "HTTPForbidden",
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        )),
        (None, Some(o)) => Ok(o.to_owned()),
        (None, None) => Err(NetError::bad_request(
            "A project-scoped token is needed to create security groups and rules.",
        )),
    }
}

/// `PUT /v2.0/security-groups/{id}`.
pub async fn update(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NetError> {
    may_change(&ctx, "update_security_group")?;
    let body = json_body(&headers, &body, state.config.api.max_body_bytes)?;
    let f = parse_group_update(&body)?;
    let scope = scope(&ctx)?;
    let current = state
        .db
        .security_group(scope, &id)
        .await?
        .ok_or_else(|| NetError::group_not_found(&id))?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    let is_default = defaults.contains(&id);
    if is_default && f.name.as_deref().is_some_and(|n| n != "default") {
        return Err(NetError::new(
            StatusCode::CONFLICT,
            "SecurityGroupCannotUpdateDefault",
            "Updating default security group not allowed.",
        ));
    }
    if !is_default && f.name.as_deref() == Some("default") {
        return Err(NetError::new(
            StatusCode::CONFLICT,
            "SecurityGroupDefaultAlreadyExists",
            "Default security group already exists.",
        ));
    }
    let rec = state
        .db
        .update_security_group(scope, &current.group.id, &f)
        .await?
        .ok_or_else(|| NetError::group_not_found(&id))?;
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
    may_change(&ctx, "delete_security_group")?;
    let scope = scope(&ctx)?;
    let project = state
        .db
        .security_group(scope, &id)
        .await?
        .map(|rec| rec.group.project_id);
    match state
        .db
        .delete_security_group(scope, &id, ctx.is_admin)
        .await?
    {
        GroupDeleted::Deleted => {
            tracing::info!(group = %id, "security group deleted");
            if let (Some(fw), Some(p)) = (&state.firewall, project) {
                // Rules of other groups naming it as their remote group went with it.
                fw.project_changed(&p).await;
            }
            Ok(axum::response::IntoResponse::into_response(
                StatusCode::NO_CONTENT,
            ))
        }
        GroupDeleted::NotFound => Err(NetError::group_not_found(&id)),
        GroupDeleted::InUse => Err(NetError::new(
            StatusCode::CONFLICT,
            "SecurityGroupInUse",
            format!("Security Group {id} in use."),
        )),
        GroupDeleted::IsDefault => Err(NetError::new(
            StatusCode::CONFLICT,
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        )),
    }
}
