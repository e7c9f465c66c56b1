//! The query of `GET /v1/containers/{ident}/logs` as Zun takes it: `stdout`, `stderr`,
//! `timestamps`, `tail` and `since`, with Zun's messages.

use capsule_types::rpc::LogQuery;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::error::ApiError;
use crate::http::query::{last, pairs, parse_bool_strict};

/// Parses the query, with Zun's messages.
pub fn log_query(query: Option<&str>) -> Result<LogQuery, ApiError> {
    let pairs = pairs(query);
    for (k, _) in &pairs {
        if !matches!(
            k.as_str(),
            "stdout" | "stderr" | "timestamps" | "tail" | "since"
        ) {
            return Err(ApiError::invalid_value(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let boolean = |key: &str, default: bool| {
        match last(&pairs, key) {
        None => Ok(default),
        Some(v) => parse_bool_strict(v).ok_or_else(|| {
            ApiError::invalid_value(
                "Valid stdout, stderr and timestamps values are: 1, t, true, on, y, yes, 0, f, false, off, n, no",
            )
        }),
    }
    };
    let mut q = LogQuery {
        stdout: boolean("stdout", true)?,
        stderr: boolean("stderr", true)?,
        timestamps: boolean("timestamps", false)?,
        tail: None,
        since: None,
    };
    // zunclient sends both false when neither is asked for: that means both.
    if !q.stdout && !q.stderr {
        q.stdout = true;
        q.stderr = true;
    }
    if let Some(t) = last(&pairs, "tail") {
        if !t.eq_ignore_ascii_case("all") {
            q.tail = Some(t.parse().map_err(|_| {
                ApiError::invalid_value(format!(
                    "Invalid input for query parameters tail: '{t}' is not 'all' or a non-negative integer"
                ))
            })?);
        }
    }
    if let Some(s) = last(&pairs, "since").filter(|s| !s.is_empty() && *s != "None") {
        q.since = Some(parse_since(s).ok_or_else(|| {
            ApiError::invalid_value(format!(
                "Invalid input for query parameters since: '{s}' is not an epoch in seconds or a datetime"
            ))
        })?);
    }
    Ok(q)
}

/// `since`: integer epoch seconds, Zun's `%Y-%m-%d %H:%M:%S,%f`, or RFC 3339.
fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(secs) = s.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0);
    }
    // Python's `%f` after a comma is a fraction of a second, as chrono's `%.f` after a dot.
    let dotted = s.replace(',', ".");
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&dotted, fmt) {
            return Some(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_as_zun_takes_it() {
        let q = log_query(None).unwrap();
        assert_eq!(q, LogQuery::default());
        let q = log_query(Some("stdout=True&stderr=False&timestamps=yes&tail=5")).unwrap();
        assert!(q.stdout && !q.stderr && q.timestamps);
        assert_eq!(q.tail, Some(5));
        // zunclient's "neither flag given".
        let q = log_query(Some("stdout=False&stderr=False&tail=all")).unwrap();
        assert!(q.stdout && q.stderr);
        assert_eq!(q.tail, None);
        let q = log_query(Some("since=1700000000")).unwrap();
        assert_eq!(q.since.unwrap().timestamp(), 1_700_000_000);
        let q = log_query(Some("since=2026-11-24%2010:00:00,5")).unwrap();
        assert_eq!(
            q.since.unwrap().to_rfc3339(),
            "2026-11-24T10:00:00.500+00:00"
        );
        for bad in [
            "tail=-1",
            "tail=x",
            "stdout=maybe",
            "since=yesterday",
            "follow=1",
        ] {
            assert!(
                matches!(log_query(Some(bad)), Err(ApiError::BadRequest { .. })),
                "{bad}"
            );
        }
    }
}
