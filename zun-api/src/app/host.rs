//! Compute hosts (Zun's `/v1/hosts`): a paged list and one host by uuid or name, behind
//! `host:get_all` and `host:get`.

use db::entity::compute_node;
use db::{DbError, NodeListParams};
use policy::Target;

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

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

fn authorize(state: &AppState, ctx: &RequestContext, rule: &str) -> Result<(), ApiError> {
    state
        .policy
        .enforce(rule, &Target::owned_by(&ctx.creds), &ctx.creds)?;
    Ok(())
}

/// A page of hosts; `params` is the parsed query, or why it did not parse (reported after the
/// policy check, as Zun does).
pub async fn list(
    state: &AppState,
    ctx: &RequestContext,
    params: Result<NodeListParams, ApiError>,
) -> Result<HostPage, ApiError> {
    authorize(state, ctx, "host:get_all")?;
    let params = params?;
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

/// One host by uuid or host name.
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
