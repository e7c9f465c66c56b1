//! Request parsing of the network API: JSON bodies (400/413/415), Neutron's list query (filters
//! on any attribute, a repeated key matching any of its values; `fields` to pick attributes;
//! `limit` and `marker` paging; an unknown key is a 400, as with Neutron's filter validation),
//! `?fields=` of a show, and the create and update bodies of groups and rules (checked by the
//! types crate's Neutron schemas).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use capsule_types::secgroup::{
    parse_group_create, parse_group_update, parse_rule_create, GroupFields,
};
use serde_json::Value;

use super::error::NetError;
use crate::app::secgroup::GroupCreate;
use crate::app::secgroup_rule::RuleCreate;
use crate::http::body::{json_bytes, JsonBodyError};
use crate::http::query::pairs;

/// A JSON request body, or Neutron's 400/413/415.
pub fn json_body(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<Value, NetError> {
    let accepted = |ct: &str| ct.starts_with("application/json");
    json_bytes(headers, body, limit, accepted).map_err(|e| match e {
        JsonBodyError::TooLarge => NetError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "HTTPRequestEntityTooLarge",
            format!("Request body is larger than the limit of {limit} bytes."),
        ),
        JsonBodyError::UnsupportedType(ct) => NetError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "HTTPUnsupportedMediaType",
            format!("Unsupported Content-Type {ct:?}; use application/json."),
        ),
        JsonBodyError::Malformed(e) => {
            NetError::bad_request(format!("Malformed request body: {e}"))
        }
    })
}

/// The fields asked for with `?fields=` on a show.
pub fn fields(query: Option<&str>) -> Vec<String> {
    pairs(query)
        .into_iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v)
        .collect()
}

/// A parsed list query.
#[derive(Debug, Default)]
pub struct ListQuery {
    /// Filters: an attribute and the values it may have.
    pub(super) filters: Vec<(String, Vec<String>)>,
    /// The attributes to show (all when empty).
    pub(super) fields: Vec<String>,
    /// Page size, if any.
    pub(super) limit: Option<usize>,
    /// The id after which the page starts.
    pub(super) marker: Option<String>,
    /// The query without `marker`, for the next link.
    pub(super) rest: Vec<(String, String)>,
}

impl ListQuery {
    /// Parses `query` for a resource with these attributes; an unknown key is a 400, as with
    /// Neutron's filter validation.
    pub fn parse(query: Option<&str>, attributes: &[&str]) -> Result<Self, NetError> {
        let mut q = ListQuery::default();
        for (k, v) in pairs(query) {
            match k.as_str() {
                "fields" => q.fields.push(v.clone()),
                "limit" => {
                    let n: usize = v.parse().map_err(|_| {
                        NetError::bad_request(format!("Bad limit request: Limit must be an integer 0 or greater and not '{v}'."))
                    })?;
                    q.limit = (n > 0).then_some(n);
                }
                "marker" => {
                    q.marker = Some(v);
                    continue;
                }
                "sort_key" | "sort_dir" | "page_reverse" => {}
                key if attributes.contains(&key) => {
                    match q.filters.iter_mut().find(|(f, _)| f == key) {
                        Some((_, vals)) => vals.push(v.clone()),
                        None => q.filters.push((key.to_owned(), vec![v.clone()])),
                    }
                }
                key => {
                    return Err(NetError::bad_request(format!(
                        "{} is invalid attribute for filtering",
                        key.chars().take(64).collect::<String>()
                    )))
                }
            }
            q.rest.push((k, v));
        }
        Ok(q)
    }
}

/// The project a create's resource names as its owner (`project_id` or `tenant_id`), if any.
fn asked_project(resource: &Value) -> Option<String> {
    ["project_id", "tenant_id"]
        .iter()
        .find_map(|k| resource.get(*k).and_then(Value::as_str))
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
}

/// A `POST /security-groups` body. Stateless groups are refused: connection tracking is
/// always on.
pub fn group_create(
    headers: &HeaderMap,
    body: &Bytes,
    limit: usize,
) -> Result<GroupCreate, NetError> {
    let body = json_body(headers, body, limit)?;
    let fields = parse_group_create(&body)?;
    if body["security_group"].get("stateful") == Some(&Value::Bool(false)) {
        return Err(NetError::bad_request(
            "Stateless security groups are not supported: connection tracking is always on.",
        ));
    }
    Ok(GroupCreate {
        fields,
        project: asked_project(&body["security_group"]),
    })
}

/// A `PUT /security-groups/{id}` body.
pub fn group_update(
    headers: &HeaderMap,
    body: &Bytes,
    limit: usize,
) -> Result<GroupFields, NetError> {
    let body = json_body(headers, body, limit)?;
    Ok(parse_group_update(&body)?)
}

/// A `POST /security-group-rules` body.
pub fn rule_create(
    headers: &HeaderMap,
    body: &Bytes,
    limit: usize,
) -> Result<RuleCreate, NetError> {
    let body = json_body(headers, body, limit)?;
    let rule = parse_rule_create(&body)?;
    Ok(RuleCreate {
        rule,
        project: asked_project(&body["security_group_rule"]),
    })
}
