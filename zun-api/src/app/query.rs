//! Query-string parameters (flags and list paging), validated with Zun's messages.

use std::str::FromStr;

use db::{ListParams, SortDir, SortKey};

pub use crate::http::query::{last, pairs, parse_bool_strict};

use crate::error::ApiError;

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

/// Parameters of `GET /v1/capsules`.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// Page, sort and marker.
    pub params: ListParams,
    /// `all_projects` was given and true.
    pub all_projects: bool,
}

impl ListQuery {
    /// Parses and validates the query string; `max_limit` caps and defaults `limit`.
    pub fn parse(query: Option<&str>, max_limit: u64) -> Result<Self, ApiError> {
        let pairs = pairs(query);
        let (limit, marker, sort_key, sort_dir) = paging(&pairs, max_limit, SortKey::Id)?;
        Ok(Self {
            params: ListParams {
                limit,
                marker,
                sort_key,
                sort_dir,
            },
            all_projects: all_projects(&pairs)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        ListQuery::parse(Some(q), 1000).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_caps() {
        let q = ListQuery::parse(None, 1000).unwrap();
        assert_eq!(q.params.limit, 1000);
        assert_eq!(q.params.sort_key, SortKey::Id);
        assert!(!q.all_projects);
        let q = ListQuery::parse(
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
}
