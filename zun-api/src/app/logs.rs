//! `GET /v1/containers/{ident}/logs` for capsule containers: the query as Zun takes it
//! (`stdout`, `stderr`, `timestamps`, `tail`, `since`), the container looked up by uuid or
//! name within what the caller may see, and the lines read on the container's host through
//! an RPC call.

use capsule_types::rpc::{LogQuery, LogsReply};
use chrono::{DateTime, NaiveDateTime, Utc};
use db::{ContainerRecord, Scope};
use policy::Target;

use super::query::{last, pairs, parse_bool_strict};
use crate::compute::ComputeError;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// Statuses in which Zun serves logs (`VALID_STATES['logs']`).
const LOG_STATES: [&str; 6] = [
    "Created", "Error", "Paused", "Running", "Stopped", "Unknown",
];

/// Parses the query, with Zun's messages.
pub fn parse_query(query: Option<&str>) -> Result<LogQuery, ApiError> {
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

/// Finds the container as Zun does: 404 when missing, 409 when a name is ambiguous.
async fn lookup(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
) -> Result<ContainerRecord, ApiError> {
    let scope = if state.policy.check(
        "container:get_one_all_projects",
        &Target::owned_by(&ctx.creds),
        &ctx.creds,
    ) {
        Scope::All
    } else {
        match &ctx.identity.project_id {
            Some(p) => Scope::Project(p.clone()),
            None => Scope::User(ctx.identity.user_id.clone()),
        }
    };
    let mut found = state.db.containers_by_ident(&scope, ident).await?;
    match found.len() {
        0 => Err(ApiError::NotFound {
            code: "container-not-found",
            message: format!("Container {ident} could not be found."),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::Conflict(
            "Multiple containers exist with same name. Please use the container uuid instead."
                .into(),
        )),
    }
}

/// The logs as text.
pub async fn logs(
    state: &AppState,
    ctx: &RequestContext,
    ident: &str,
    query: Option<&str>,
) -> Result<String, ApiError> {
    let rec = lookup(state, ctx, ident).await?;
    let target = Target::new()
        .with("project_id", rec.capsule.capsule.project_id.clone())
        .with("user_id", rec.capsule.capsule.user_id.clone());
    state
        .policy
        .enforce("container:logs", &target, &ctx.creds)?;
    let q = parse_query(query)?;
    let status = rec.container.status.as_str();
    if !LOG_STATES.contains(&status) {
        return Err(ApiError::Conflict(format!(
            "Cannot logs container {} in {status} state.",
            rec.container.uuid
        )));
    }
    let Some(host) = rec.capsule.capsule.host.clone() else {
        return Err(ApiError::Conflict(format!(
            "Container {} is not on any host yet.",
            rec.container.uuid
        )));
    };
    if !state.compute.is_connected() {
        return Err(ApiError::ServiceUnavailable(
            "No message bus is configured, so no compute host can be asked for logs.".into(),
        ));
    }
    let capsule = rec
        .capsule
        .capsule
        .uuid
        .parse()
        .map_err(ApiError::internal)?;
    let reply = state
        .compute
        .container_logs(&host, capsule, &rec.container.name, q, &ctx.request_id.0)
        .await
        .map_err(|e| match e {
            ComputeError::Unreachable { host, source } => ApiError::ServiceUnavailable(format!(
                "Compute host {host} did not answer for the logs of container {}: {source}",
                rec.container.uuid
            )),
            other => ApiError::internal(other),
        })?;
    match reply {
        LogsReply::Logs { text } => Ok(text),
        LogsReply::NotFound { message } => Err(ApiError::NotFound {
            code: "container-not-found",
            message,
        }),
        LogsReply::Unavailable { message } => Err(ApiError::Conflict(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_as_zun_takes_it() {
        let q = parse_query(None).unwrap();
        assert_eq!(q, LogQuery::default());
        let q = parse_query(Some("stdout=True&stderr=False&timestamps=yes&tail=5")).unwrap();
        assert!(q.stdout && !q.stderr && q.timestamps);
        assert_eq!(q.tail, Some(5));
        // zunclient's "neither flag given".
        let q = parse_query(Some("stdout=False&stderr=False&tail=all")).unwrap();
        assert!(q.stdout && q.stderr);
        assert_eq!(q.tail, None);
        let q = parse_query(Some("since=1700000000")).unwrap();
        assert_eq!(q.since.unwrap().timestamp(), 1_700_000_000);
        let q = parse_query(Some("since=2026-11-24%2010:00:00,5")).unwrap();
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
                matches!(parse_query(Some(bad)), Err(ApiError::BadRequest { .. })),
                "{bad}"
            );
        }
    }
}
