//! Request parsing of Zun's `/v1`, with Zun's messages: the paging and flags of query strings,
//! capsule and host lists, the capsule create body, container logs' query ([`logs`]), the
//! container actions' and calls' parameters ([`container`], [`exec`], [`archive`]) and the
//! services actions' parameters ([`services`]). Where Zun checks a parameter only after the
//! policy check, the handler hands the parse's `Result` to the operation, which reports a
//! refusal at that point.

pub mod archive;
pub mod container;
pub mod exec;
pub mod logs;
pub mod services;

use std::str::FromStr;

use db::{ListParams, NodeListParams, NodeSortKey, SortDir, SortKey};
use serde_json::Value;

use crate::app::capsule::ListQuery;
use crate::error::ApiError;
use crate::http::query::{last, pairs, parse_bool_strict};

/// A boolean flag such as `all_projects` or `force` (absent: false).
pub fn flag(pairs: &[(String, String)], key: &str) -> Result<bool, ApiError> {
    match last(pairs, key) {
        None => Ok(false),
        Some(v) => parse_bool_strict(v).ok_or_else(|| {
            ApiError::invalid_value(format!(
                "Valid {key} values are: 1, t, true, on, y, yes, 0, f, false, off, n, no"
            ))
        }),
    }
}

/// The `all_projects` flag (absent: false).
pub fn all_projects(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    flag(pairs, "all_projects")
}

/// The paging parameters every Zun list takes: `limit` (capped and defaulted by
/// `max_limit`), `marker`, `sort_key` (default `default_key`) and `sort_dir`.
pub fn paging<K: FromStr<Err = ()>>(
    pairs: &[(String, String)],
    max_limit: u64,
    default_key: K,
) -> Result<(u64, Option<String>, K, SortDir), ApiError> {
    let limit = match last(pairs, "limit") {
        None => max_limit,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => u64::try_from(n).unwrap_or(max_limit).min(max_limit),
            _ => return Err(ApiError::invalid_value("Limit must be positive integer")),
        },
    };
    let sort_dir = match last(pairs, "sort_dir") {
        None | Some("asc") => SortDir::Asc,
        Some("desc") => SortDir::Desc,
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
            )))
        }
    };
    let sort_key = match last(pairs, "sort_key") {
        None => default_key,
        Some(k) => k.parse().map_err(|()| ApiError::BadRequest {
            code: "invalid-parameter-value",
            message: format!("The sort_key value \"{k}\" is an invalid field for sorting"),
        })?,
    };
    let marker = last(pairs, "marker")
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    Ok((limit, marker, sort_key, sort_dir))
}

/// The query of `GET /v1/capsules`; `max_limit` caps and defaults `limit`.
pub fn capsule_list(query: Option<&str>, max_limit: u64) -> Result<ListQuery, ApiError> {
    let pairs = pairs(query);
    let (limit, marker, sort_key, sort_dir) = paging(&pairs, max_limit, SortKey::Id)?;
    Ok(ListQuery {
        params: ListParams {
            limit,
            marker,
            sort_key,
            sort_dir,
        },
        all_projects: all_projects(&pairs)?,
    })
}

/// `force` of a query string (absent: false).
pub fn force_flag(query: Option<&str>) -> Result<bool, ApiError> {
    flag(&pairs(query), "force")
}

/// `all_projects` of a query string.
pub fn all_projects_flag(query: Option<&str>) -> Result<bool, ApiError> {
    all_projects(&pairs(query))
}

/// A `POST /v1/capsules` body with the query's parameters merged in, as pecan merges them into
/// a JSON object body (the template's schema then refuses them).
pub fn create_body(mut body: Value, query: Option<&str>) -> Value {
    if let Value::Object(map) = &mut body {
        for (k, v) in pairs(query) {
            map.insert(k, Value::String(v));
        }
    }
    body
}

/// The query of `GET /v1/hosts`: `limit`, `marker`, `sort_key` (default `hostname`) and
/// `sort_dir`; `max_limit` caps and defaults `limit`. Other parameters are ignored, as in Zun.
pub fn host_list(query: Option<&str>, max_limit: u64) -> Result<NodeListParams, ApiError> {
    let pairs = pairs(query);
    let (limit, marker, sort_key, sort_dir) = paging(&pairs, max_limit, NodeSortKey::Hostname)?;
    Ok(NodeListParams {
        limit,
        marker,
        sort_key,
        sort_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        capsule_list(Some(q), 1000).unwrap_err().to_string()
    }

    fn host_err(q: &str) -> String {
        host_list(Some(q), 1000).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_caps() {
        let q = capsule_list(None, 1000).unwrap();
        assert_eq!(q.params.limit, 1000);
        assert_eq!(q.params.sort_key, SortKey::Id);
        assert!(!q.all_projects);
        let q = capsule_list(
            Some("limit=5000&sort_key=name&sort_dir=desc&all_projects=Yes&marker=m"),
            1000,
        )
        .unwrap();
        assert_eq!(q.params.limit, 1000);
        assert_eq!(q.params.sort_key, SortKey::Name);
        assert_eq!(q.params.sort_dir, SortDir::Desc);
        assert_eq!(q.params.marker.as_deref(), Some("m"));
        assert!(q.all_projects);
    }

    #[test]
    fn zun_messages() {
        assert_eq!(err("limit=0"), "Limit must be positive integer");
        assert_eq!(err("limit=abc"), "Limit must be positive integer");
        assert_eq!(err("limit=-3"), "Limit must be positive integer");
        assert_eq!(
            err("sort_dir=up"),
            "Invalid sort direction: up. Acceptable values are 'asc' or 'desc'"
        );
        assert_eq!(
            err("sort_key=image"),
            "The sort_key value \"image\" is an invalid field for sorting"
        );
        assert!(err("all_projects=maybe").starts_with("Valid all_projects values are"));
    }

    #[test]
    fn zun_defaults_and_messages() {
        let p = host_list(None, 1000).unwrap();
        assert_eq!(p.limit, 1000);
        assert_eq!(p.sort_key, NodeSortKey::Hostname);
        assert_eq!(p.sort_dir, SortDir::Asc);
        let p = host_list(
            Some("limit=5000&sort_key=cpus&sort_dir=desc&marker=m"),
            1000,
        )
        .unwrap();
        assert_eq!(p.limit, 1000);
        assert_eq!(p.sort_key, NodeSortKey::Cpus);
        assert_eq!(p.sort_dir, SortDir::Desc);
        assert_eq!(p.marker.as_deref(), Some("m"));
        assert_eq!(host_err("limit=0"), "Limit must be positive integer");
        assert_eq!(host_err("limit=x"), "Limit must be positive integer");
        assert_eq!(
            host_err("sort_dir=up"),
            "Invalid sort direction: up. Acceptable values are 'asc' or 'desc'"
        );
        assert_eq!(
            host_err("sort_key=image"),
            "The sort_key value \"image\" is an invalid field for sorting"
        );
    }
}
