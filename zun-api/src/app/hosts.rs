//! Compute-host operations (Zun's `/v1/hosts`, microversion >= 1.4): a paged list and one host
//! by uuid or name, behind `host:get_all` and `host:get`.

use capsule_types::microversion::ApiVersion;
use db::entity::compute_node;
use db::{DbError, NodeListParams, NodeSortKey};
use policy::Target;

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// The first microversion with the hosts API.
pub const HOSTS_MIN_VERSION: ApiVersion = ApiVersion::new(1, 4);

/// One page of hosts, and the query of the next page when this one is full.
#[derive(Clone, Debug)]
pub struct HostPage {
    /// The nodes.
    pub nodes: Vec<compute_node::Model>,
    /// `sort_key=…&sort_dir=…&limit=…&marker=…` of the next page.
    pub next_query: Option<String>,
}

/// Zun's 404 for a compute node.
fn not_found(ident: &str) -> ApiError {
    ApiError::NotFound {
        code: "compute-node-not-found",
        message: format!("Compute node {ident} could not be found."),
    }
}

/// Zun answers a versioned route below its version with 406 (before any policy check).
fn check_version(ctx: &RequestContext) -> Result<(), ApiError> {
    if ctx.version < HOSTS_MIN_VERSION {
        return Err(ApiError::NotAcceptable(format!(
            "Version {} was requested but the requested API is not supported for this version.",
            ctx.version
        )));
    }
    Ok(())
}

fn authorize(state: &AppState, ctx: &RequestContext, rule: &str) -> Result<(), ApiError> {
    check_version(ctx)?;
    state
        .policy
        .enforce(rule, &Target::owned_by(&ctx.creds), &ctx.creds)?;
    Ok(())
}

/// Parses `limit`, `marker`, `sort_key` (default `hostname`) and `sort_dir` with Zun's
/// messages; `max_limit` caps and defaults `limit`. Other parameters are ignored, as in Zun.
pub fn parse_query(query: Option<&str>, max_limit: u64) -> Result<NodeListParams, ApiError> {
    let pairs = super::query::pairs(query);
    let (limit, marker, sort_key, sort_dir) =
        super::query::paging(&pairs, max_limit, NodeSortKey::Hostname)?;
    Ok(NodeListParams {
        limit,
        marker,
        sort_key,
        sort_dir,
    })
}

/// `GET /v1/hosts`.
pub async fn list(
    state: &AppState,
    ctx: &RequestContext,
    query: Option<&str>,
) -> Result<HostPage, ApiError> {
    authorize(state, ctx, "host:get_all")?;
    let params = parse_query(query, state.config.api.max_limit)?;
    let nodes = match state.db.list_compute_nodes(&params).await {
        Ok(nodes) => nodes,
        Err(DbError::MarkerNotFound { marker }) => return Err(not_found(&marker)),
        Err(e) => return Err(e.into()),
    };
    let next_query = (nodes.len() as u64 == params.limit && params.limit > 0)
        .then(|| nodes.last())
        .flatten()
        .map(|last| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("sort_key", params.sort_key.as_str())
                .append_pair("sort_dir", params.sort_dir.as_str())
                .append_pair("limit", &params.limit.to_string())
                .append_pair("marker", &last.uuid)
                .finish()
        });
    Ok(HostPage { nodes, next_query })
}

/// `GET /v1/hosts/{uuid_or_hostname}`.
pub async fn show(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
) -> Result<compute_node::Model, ApiError> {
    authorize(state, ctx, "host:get")?;
    state
        .db
        .compute_node(ident)
        .await?
        .ok_or_else(|| not_found(ident))
}

#[cfg(test)]
mod tests {
    use super::*;
    use db::SortDir;

    fn err(q: &str) -> String {
        parse_query(Some(q), 1000).unwrap_err().to_string()
    }

    #[test]
    fn zun_defaults_and_messages() {
        let p = parse_query(None, 1000).unwrap();
        assert_eq!(p.limit, 1000);
        assert_eq!(p.sort_key, NodeSortKey::Hostname);
        assert_eq!(p.sort_dir, SortDir::Asc);
        let p = parse_query(
            Some("limit=5000&sort_key=cpus&sort_dir=desc&marker=m"),
            1000,
        )
        .unwrap();
        assert_eq!(p.limit, 1000);
        assert_eq!(p.sort_key, NodeSortKey::Cpus);
        assert_eq!(p.sort_dir, SortDir::Desc);
        assert_eq!(p.marker.as_deref(), Some("m"));
        assert_eq!(err("limit=0"), "Limit must be positive integer");
        assert_eq!(err("limit=x"), "Limit must be positive integer");
        assert_eq!(
            err("sort_dir=up"),
            "Invalid sort direction: up. Acceptable values are 'asc' or 'desc'"
        );
        assert_eq!(
            err("sort_key=image"),
            "The sort_key value \"image\" is an invalid field for sorting"
        );
    }
}
