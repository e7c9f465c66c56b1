//! Security groups (the Neutron API's `/security-groups`): list, show, create, update (name
//! and description) and delete. A project sees and changes its own groups, an admin all;
//! changes need the `member` role (Neutron's `PROJECT_MEMBER`) or admin. Each project's
//! `default` group is made on its first security-group request, as Neutron does. A change
//! reaches the compute hosts of the group's project through the firewall sender.
//!
//! Operations answer [`SecgroupError`]; the Neutron API renders it. Those that Neutron checks
//! only after policy take the parsed request as a `Result` in the API's own error type `E`, and
//! report its refusal at that point.

use std::collections::BTreeSet;

use capsule_types::secgroup::GroupFields;
use db::secgroups::{GroupDeleted, GroupScope, SecurityGroupRecord};
use db::DbError;

use crate::context::RequestContext;
use crate::state::AppState;

/// Why a security-group operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecgroupError {
    /// Policy does not allow the caller `rule` (Neutron's rule name).
    #[error("policy does not allow {rule}")]
    Denied {
        /// The refused rule.
        rule: &'static str,
    },
    /// No group `id` the caller may see.
    #[error("security group {id} not found")]
    GroupNotFound {
        /// As asked.
        id: String,
    },
    /// No rule `id` the caller may see.
    #[error("security group rule {id} not found")]
    RuleNotFound {
        /// As asked.
        id: String,
    },
    /// A non-admin named another project than their own as the owner.
    #[error("only admins may create resources of other projects")]
    ForeignProject,
    /// A creation without a project: neither the token nor the body names one.
    #[error("a project-scoped token is needed")]
    NoProject,
    /// A `default` group may not be renamed.
    #[error("the default group cannot be renamed")]
    CannotUpdateDefault,
    /// Another group may not be named `default`.
    #[error("the project has a default group")]
    DefaultExists,
    /// Capsules use group `id`.
    #[error("security group {id} is in use")]
    InUse {
        /// The group.
        id: String,
    },
    /// A project's `default` group is not deleted.
    #[error("the default group cannot be deleted")]
    CannotRemoveDefault,
    /// The same rule exists.
    #[error("the rule exists as {rule_id}")]
    RuleExists {
        /// The existing rule.
        rule_id: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What the caller may see: an admin every project's groups, anyone else their project's.
pub fn scope(ctx: &RequestContext) -> Result<GroupScope<'_>, SecgroupError> {
    if ctx.is_admin {
        return Ok(GroupScope::All);
    }
    ctx.identity
        .project_id
        .as_deref()
        .map(GroupScope::Project)
        .ok_or(SecgroupError::Denied {
            rule: "get_security_group",
        })
}

/// Changes need the `member` role (Neutron's `PROJECT_MEMBER`) or admin; `reader`s only read.
pub fn may_change(ctx: &RequestContext, rule: &'static str) -> Result<(), SecgroupError> {
    if ctx.is_admin || ctx.identity.is_project_member() {
        Ok(())
    } else {
        Err(SecgroupError::Denied { rule })
    }
}

/// Makes the caller's project's `default` group if it has none (Neutron does so on the
/// project's first security-group request).
pub async fn ensure_default(state: &AppState, ctx: &RequestContext) -> Result<(), SecgroupError> {
    if let Some(p) = &ctx.identity.project_id {
        state.db.ensure_default_security_group(p).await?;
    }
    Ok(())
}

/// The project a new resource belongs to: the caller's, or (admin only) the one the body
/// names (`asked`).
pub fn owner(ctx: &RequestContext, asked: Option<&str>) -> Result<String, SecgroupError> {
    let own = ctx.identity.project_id.as_deref();
    match (asked, own) {
        (Some(p), Some(o)) if p == o => Ok(p.to_owned()),
        (Some(p), _) if ctx.is_admin => Ok(p.to_owned()),
        (Some(_), _) => Err(SecgroupError::ForeignProject),
        (None, Some(o)) => Ok(o.to_owned()),
        (None, None) => Err(SecgroupError::NoProject),
    }
}

/// Groups with the ids of the projects' `default` groups among them (views mark those).
pub type Groups = (Vec<SecurityGroupRecord>, BTreeSet<String>);

/// The groups the caller may see.
pub async fn list(state: &AppState, ctx: &RequestContext) -> Result<Groups, SecgroupError> {
    ensure_default(state, ctx).await?;
    let scope = scope(ctx)?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    let groups = state.db.security_groups(scope).await?;
    Ok((groups, defaults))
}

/// Group `id`, with the ids of the `default` groups the caller sees.
pub async fn show(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
) -> Result<(SecurityGroupRecord, BTreeSet<String>), SecgroupError> {
    ensure_default(state, ctx).await?;
    let scope = scope(ctx)?;
    let rec = state
        .db
        .security_group(scope, id)
        .await?
        .ok_or_else(|| SecgroupError::GroupNotFound { id: id.to_owned() })?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    Ok((rec, defaults))
}

/// A `POST /security-groups` body, checked.
#[derive(Clone, Debug)]
pub struct GroupCreate {
    /// Name and description.
    pub fields: GroupFields,
    /// The project the body names as the owner, if any.
    pub project: Option<String>,
}

/// Creates a group in the caller's project (or, for an admin, the one the body names). `req`
/// is the parsed body, or the API's refusal of it.
pub async fn create<E: From<SecgroupError>>(
    state: &AppState,
    ctx: &RequestContext,
    req: Result<GroupCreate, E>,
) -> Result<(SecurityGroupRecord, BTreeSet<String>), E> {
    may_change(ctx, "create_security_group")?;
    let req = req?;
    Ok(create_checked(state, ctx, req).await?)
}

async fn create_checked(
    state: &AppState,
    ctx: &RequestContext,
    req: GroupCreate,
) -> Result<(SecurityGroupRecord, BTreeSet<String>), SecgroupError> {
    let project = owner(ctx, req.project.as_deref())?;
    state.db.ensure_default_security_group(&project).await?;
    let name = req.fields.name.unwrap_or_default();
    let description = req.fields.description.unwrap_or_default();
    let rec = state
        .db
        .create_security_group(&project, &name, &description)
        .await?;
    tracing::info!(group = %rec.group.id, %project, name, "security group created");
    let defaults = state
        .db
        .default_security_group_ids(GroupScope::Project(&project))
        .await?;
    Ok((rec, defaults))
}

/// Changes name and description of group `id` (a `default` group keeps its name, and no
/// other takes it). `req` is the parsed body, or the API's refusal of it.
pub async fn update<E: From<SecgroupError>>(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    req: Result<GroupFields, E>,
) -> Result<(SecurityGroupRecord, BTreeSet<String>), E> {
    may_change(ctx, "update_security_group")?;
    let f = req?;
    Ok(update_checked(state, ctx, id, f).await?)
}

async fn update_checked(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    f: GroupFields,
) -> Result<(SecurityGroupRecord, BTreeSet<String>), SecgroupError> {
    let scope = scope(ctx)?;
    let not_found = || SecgroupError::GroupNotFound { id: id.to_owned() };
    let current = state
        .db
        .security_group(scope, id)
        .await?
        .ok_or_else(not_found)?;
    let defaults = state.db.default_security_group_ids(scope).await?;
    let is_default = defaults.contains(id);
    if is_default && f.name.as_deref().is_some_and(|n| n != "default") {
        return Err(SecgroupError::CannotUpdateDefault);
    }
    if !is_default && f.name.as_deref() == Some("default") {
        return Err(SecgroupError::DefaultExists);
    }
    let rec = state
        .db
        .update_security_group(scope, &current.group.id, &f)
        .await?
        .ok_or_else(not_found)?;
    Ok((rec, defaults))
}

/// Deletes group `id` unless capsules use it or it is a `default` group.
pub async fn delete(state: &AppState, ctx: &RequestContext, id: &str) -> Result<(), SecgroupError> {
    may_change(ctx, "delete_security_group")?;
    let scope = scope(ctx)?;
    let project = state
        .db
        .security_group(scope, id)
        .await?
        .map(|rec| rec.group.project_id);
    match state
        .db
        .delete_security_group(scope, id, ctx.is_admin)
        .await?
    {
        GroupDeleted::Deleted => {
            tracing::info!(group = %id, "security group deleted");
            if let (Some(fw), Some(p)) = (&state.firewall, project) {
                // Rules of other groups naming it as their remote group went with it.
                fw.project_changed(&p).await;
            }
            Ok(())
        }
        GroupDeleted::NotFound => Err(SecgroupError::GroupNotFound { id: id.to_owned() }),
        GroupDeleted::InUse => Err(SecgroupError::InUse { id: id.to_owned() }),
        GroupDeleted::IsDefault => Err(SecgroupError::CannotRemoveDefault),
    }
}
