//! Security-group rules (the Neutron API's `/security-group-rules`): list, show, create and
//! delete, with the scope and member rules of [`secgroup`](super::secgroup). A change reaches
//! the compute hosts of the rule's project through the firewall sender.

use std::collections::BTreeSet;

use capsule_types::secgroup::NewRule;
use db::entity::security_group_rule;
use db::secgroups::{GroupScope, RuleCreated};

use super::secgroup::{ensure_default, may_change, owner, scope, SecgroupError};
use crate::context::RequestContext;
use crate::state::AppState;

/// Rules with the ids of the projects' `default` groups (views mark their rules).
pub type Rules = (Vec<security_group_rule::Model>, BTreeSet<String>);

/// The rules the caller may see.
pub async fn list(state: &AppState, ctx: &RequestContext) -> Result<Rules, SecgroupError> {
    ensure_default(state, ctx).await?;
    let scope = scope(ctx)?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    let rules = state.db.security_group_rules(scope).await?;
    Ok((rules, defaults))
}

/// Rule `id`, with the ids of the `default` groups the caller sees.
pub async fn show(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
) -> Result<(security_group_rule::Model, BTreeSet<String>), SecgroupError> {
    let scope = scope(ctx)?;
    let rule = state
        .db
        .security_group_rule(scope, id)
        .await?
        .ok_or_else(|| SecgroupError::RuleNotFound { id: id.to_owned() })?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    Ok((rule, defaults))
}

/// A `POST /security-group-rules` body, checked.
#[derive(Clone, Debug)]
pub struct RuleCreate {
    /// The rule.
    pub rule: NewRule,
    /// The project the body names as the owner, if any.
    pub project: Option<String>,
}

/// Adds a rule to a group the caller may change. `req` is the parsed body, or the API's
/// refusal of it.
pub async fn create<E: From<SecgroupError>>(
    state: &AppState,
    ctx: &RequestContext,
    req: Result<RuleCreate, E>,
) -> Result<(security_group_rule::Model, BTreeSet<String>), E> {
    may_change(ctx, "create_security_group_rule")?;
    let req = req?;
    Ok(create_checked(state, ctx, req).await?)
}

async fn create_checked(
    state: &AppState,
    ctx: &RequestContext,
    req: RuleCreate,
) -> Result<(security_group_rule::Model, BTreeSet<String>), SecgroupError> {
    let rule = &req.rule;
    ensure_default(state, ctx).await?;
    let scope = scope(ctx)?;
    let group_not_found = |id: &str| SecgroupError::GroupNotFound { id: id.to_owned() };
    let group = state
        .db
        .security_group(scope, &rule.security_group_id)
        .await?
        .ok_or_else(|| group_not_found(&rule.security_group_id))?
        .group;
    // A project-scoped caller names the group's project, or none.
    let owner = owner(ctx, req.project.as_deref())?;
    if owner != group.project_id && !ctx.is_admin {
        return Err(group_not_found(&rule.security_group_id));
    }
    if let Some(remote) = &rule.remote_group_id {
        if state.db.security_group(scope, remote).await?.is_none() {
            return Err(group_not_found(remote));
        }
    }
    match state.db.create_security_group_rule(scope, rule).await? {
        RuleCreated::Added(r) => {
            tracing::info!(rule = %r.id, group = %r.security_group_id, "security group rule created");
            if let Some(fw) = &state.firewall {
                fw.project_changed(&group.project_id).await;
            }
            let defaults = state
                .db
                .default_security_group_ids(GroupScope::Project(&group.project_id))
                .await?;
            Ok((*r, defaults))
        }
        RuleCreated::Exists { rule_id } => Err(SecgroupError::RuleExists { rule_id }),
        RuleCreated::NoGroup => Err(group_not_found(&rule.security_group_id)),
    }
}

/// Deletes rule `id`.
pub async fn delete(state: &AppState, ctx: &RequestContext, id: &str) -> Result<(), SecgroupError> {
    may_change(ctx, "delete_security_group_rule")?;
    let scope = scope(ctx)?;
    let not_found = || SecgroupError::RuleNotFound { id: id.to_owned() };
    let Some(r) = state.db.security_group_rule(scope, id).await? else {
        return Err(not_found());
    };
    if !state.db.delete_security_group_rule(scope, id).await? {
        return Err(not_found());
    }
    tracing::info!(rule = %id, group = %r.security_group_id, "security group rule deleted");
    if let Some(fw) = &state.firewall {
        fw.project_changed(&r.project_id).await;
    }
    Ok(())
}
