//! Capsules (Zun's `/v1/capsules`): show, list (pages of one project served from the list
//! cache while the project is unchanged) and delete; create, with the container names and the
//! volumes it resolves, is in [`create`].

mod create;
mod names;
mod volumes;

use std::sync::Arc;

use db::{CapsuleRecord, ListParams, Scope};
use policy::Target;

pub use create::{create, NO_VALID_HOST};

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::list_cache::{CachedPage, ListKey};
use crate::state::AppState;

/// The query of `GET /v1/capsules`.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// Page, sort and marker.
    pub params: ListParams,
    /// `all_projects` was given and true.
    pub all_projects: bool,
}

/// Whether `ident` is a UUID (Zun's `is_uuid_like`); gives its canonical form.
fn as_uuid(ident: &str) -> Option<String> {
    uuid::Uuid::try_parse(ident)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// The scope a caller sees without asking for all projects.
fn own_scope(ctx: &RequestContext) -> Scope {
    match &ctx.identity.project_id {
        Some(p) => Scope::Project(p.clone()),
        None => Scope::User(ctx.identity.user_id.clone()),
    }
}

pub(crate) fn capsule_target(rec: &CapsuleRecord) -> Target {
    Target::new()
        .with("project_id", rec.capsule.project_id.clone())
        .with("user_id", rec.capsule.user_id.clone())
}

/// Looks a capsule up by uuid or name as Zun does: 404 when missing, 409 when a name is
/// ambiguous. Admins (`capsule:get_one_all_projects`) see every project.
pub(crate) async fn lookup(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    all: bool,
) -> Result<CapsuleRecord, ApiError> {
    let scope = if all
        || state.policy.check(
            "capsule:get_one_all_projects",
            &Target::owned_by(&ctx.creds),
            &ctx.creds,
        ) {
        Scope::All
    } else {
        own_scope(ctx)
    };
    if let Some(uuid) = as_uuid(ident) {
        return state
            .db
            .capsule_by_uuid(&scope, &uuid)
            .await?
            .ok_or_else(|| ApiError::capsule_not_found(ident));
    }
    let mut found = state.db.capsules_by_name(&scope, ident).await?;
    match found.len() {
        0 => Err(ApiError::capsule_not_found(ident)),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::Conflict(
            "Multiple containers exist with same name. Please use the container uuid instead."
                .into(),
        )),
    }
}

/// `GET /v1/capsules/{ident}`.
pub async fn show(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
) -> Result<CapsuleRecord, ApiError> {
    let rec = lookup(state, ctx, ident, false).await?;
    state
        .policy
        .enforce("capsule:get", &capsule_target(&rec), &ctx.creds)?;
    Ok(rec)
}

/// One page of a list, and the query of the next page when this one is full.
#[derive(Debug)]
pub struct Page {
    /// The capsules.
    pub records: Vec<CapsuleRecord>,
    /// The query string of the next page (`sort_key=…&sort_dir=…&limit=…&marker=…`).
    pub next_query: Option<String>,
}

/// The scope `GET /v1/capsules` lists for this caller, after the policy checks.
fn list_scope(state: &AppState, ctx: &RequestContext, q: &ListQuery) -> Result<Scope, ApiError> {
    let own = Target::owned_by(&ctx.creds);
    state.policy.enforce("capsule:get_all", &own, &ctx.creds)?;
    if q.all_projects {
        // Zun silently ignores a non-admin's all_projects; we refuse it.
        state
            .policy
            .enforce("capsule:get_all_all_projects", &own, &ctx.creds)?;
        return Ok(Scope::All);
    }
    Ok(own_scope(ctx))
}

/// A rendered list page.
#[derive(Debug)]
pub enum Listing {
    /// Rendered for this request only (lists beyond one project are not cached).
    Fresh(Vec<u8>),
    /// A page of one project, from the list cache or put there.
    Cached(Arc<CachedPage>),
}

/// `GET /v1/capsules`: the page `q` asks for, rendered by `render`. Pages of one project are
/// reused from the list cache while the project's generation is unchanged; `view_key`
/// fingerprints what else the rendering depends on besides the request's version and base
/// URL (the fields policy hides).
pub async fn list(
    state: &AppState,
    ctx: &RequestContext,
    q: &ListQuery,
    view_key: u64,
    render: impl FnOnce(&Page) -> Result<Vec<u8>, ApiError>,
) -> Result<Listing, ApiError> {
    let scope = list_scope(state, ctx, q)?;
    let Scope::Project(project) = &scope else {
        let page = list_page(state, &scope, q).await?;
        return Ok(Listing::Fresh(render(&page)?));
    };
    // The generation is read before the page, so a page is never newer than its label.
    let generation = state.db.project_generation(project).await?;
    let key = ListKey::new(project, &q.params, ctx.version, view_key, &ctx.base_url);
    if let Some(hit) = state.list_cache.get(&key, generation) {
        state.metrics.list_cache(true);
        return Ok(Listing::Cached(hit));
    }
    state.metrics.list_cache(false);
    let page = list_page(state, &scope, q).await?;
    let page = Arc::new(CachedPage::new(generation, render(&page)?));
    state.list_cache.insert(key, page.clone());
    Ok(Listing::Cached(page))
}

/// One page of `scope`.
async fn list_page(state: &AppState, scope: &Scope, q: &ListQuery) -> Result<Page, ApiError> {
    let records = state.db.list_capsules(scope, &q.params).await?;
    let next_query = (records.len() as u64 == q.params.limit && q.params.limit > 0)
        .then(|| records.last())
        .flatten()
        .map(|last| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            s.append_pair("sort_key", q.params.sort_key.as_str())
                .append_pair("sort_dir", q.params.sort_dir.as_str())
                .append_pair("limit", &q.params.limit.to_string())
                .append_pair("marker", &last.capsule.uuid);
            if q.all_projects {
                // Zun drops it, so its next page silently shrinks to the admin's own project.
                s.append_pair("all_projects", "True");
            }
            s.finish()
        });
    Ok(Page {
        records,
        next_query,
    })
}

/// `DELETE /v1/capsules/{ident}`. A capsule on a host is marked `Deleting` and the host told
/// to tear it down (durably: a host that is down does it when it comes back); the host's
/// report removes the rows. A capsule that never got a host is removed at once. `force`
/// (admin) removes the rows at once whatever the host does, for hosts that are gone for good;
/// the host is still told, in case it comes back.
pub async fn delete(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    all_projects: bool,
    force: bool,
) -> Result<(), ApiError> {
    let own = Target::owned_by(&ctx.creds);
    if all_projects {
        state
            .policy
            .enforce("capsule:delete_all_projects", &own, &ctx.creds)?;
    }
    if force {
        state
            .policy
            .enforce("capsule:force_delete", &own, &ctx.creds)?;
    }
    let rec = lookup(state, ctx, ident, all_projects).await?;
    state
        .policy
        .enforce("capsule:delete", &capsule_target(&rec), &ctx.creds)?;
    let c = &rec.capsule;
    tracing::info!(capsule = %c.uuid, host = ?c.host, force, "deleting capsule");
    let tell_host = match c.host.as_deref() {
        Some(host) => {
            let capsule = c.uuid.parse().map_err(ApiError::internal)?;
            let msg = state
                .compute
                .delete_capsule(host, capsule, &ctx.request_id.0);
            Some(msg.map_err(ApiError::internal)?)
        }
        None => None,
    };
    let ids = match (tell_host, force) {
        (Some(msg), false) => state.db.request_capsule_delete(c.id, msg).await?,
        (msg, _) => state.db.delete_capsule(c.id, msg).await?.1,
    };
    state.publish_now(&ids).await;
    Ok(())
}
