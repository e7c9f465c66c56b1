//! The parameters of Zun's `/v1/services` actions. python-zunclient sends those of the `PUT`
//! actions in the query string with an empty body; Zun (pecan) also merges the keys of a JSON
//! object body. Both are accepted and checked against Zun's schemas (`schemas/services.py`),
//! which Zun applies to the query string only. Where Zun answers 500 (a missing `host` or
//! `binary`), this answers 400.

use axum::body::Body;
use axum::http::HeaderMap;
use serde_json::Value;

use crate::app::service::{Action, Change, ServiceKey};
use crate::error::ApiError;
use crate::http::body::{parse_json, read_limited};
use crate::http::query::{pairs, parse_bool_strict};

/// Where a parameter came from (for error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Query,
    Body,
}

/// The parameters of one request: query-string pairs, then the keys of a JSON object body.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, Value, Source)>);

impl Params {
    /// The last value given for `key`.
    fn get(&self, key: &str) -> Option<(&Value, Source)> {
        self.0
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, s)| (v, *s))
    }
}

/// Reads the parameters of a service request: the query string, plus the keys of the body
/// when it is a non-empty JSON object (`Content-Type: application/json`, else 415; at most
/// `limit` bytes, else 413). An empty body, as python-zunclient sends, is no parameters.
pub async fn read_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Params, ApiError> {
    let mut params: Vec<(String, Value, Source)> = pairs(query)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v), Source::Query))
        .collect();
    let bytes = read_limited(headers, body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Params(params));
    }
    let value = parse_json(headers, &bytes)?;
    let Value::Object(map) = value else {
        return Err(ApiError::schema("The request body must be a JSON object."));
    };
    params.extend(map.into_iter().map(|(k, v)| (k, v, Source::Body)));
    Ok(Params(params))
}

/// The keys `action` takes.
fn keys(action: Action) -> &'static [&'static str] {
    match action {
        Action::Enable => &["host", "binary"],
        Action::Disable => &["host", "binary", "disabled_reason"],
        Action::ForceDown => &["host", "binary", "forced_down"],
    }
}

/// Python's `repr`-like rendering of a value inside Zun's validation messages.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn invalid(key: &str, v: &Value, source: Source, why: String) -> ApiError {
    let raw = match v {
        Value::String(s) => s.clone(),
        other => shown(other),
    };
    let what = match source {
        Source::Query => "query parameters",
        Source::Body => "field",
    };
    ApiError::schema(format!(
        "Invalid input for {what} '{key}'. Value: '{raw}'. {why}"
    ))
}

/// A string parameter of 1..=255 characters, optionally matching Zun's host-name pattern.
fn string_param(
    params: &Params,
    key: &'static str,
    hostname: bool,
) -> Result<Option<String>, ApiError> {
    let Some((v, source)) = params.get(key) else {
        return Ok(None);
    };
    let Value::String(s) = v else {
        return Err(invalid(
            key,
            v,
            source,
            format!("{} is not of type 'string'", shown(v)),
        ));
    };
    let len = s.chars().count();
    if len == 0 {
        return Err(invalid(
            key,
            v,
            source,
            format!("{} is too short", shown(v)),
        ));
    }
    if len > 255 {
        return Err(invalid(key, v, source, format!("{} is too long", shown(v))));
    }
    if hostname
        && !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err(invalid(
            key,
            v,
            source,
            format!("{} does not match '^[a-zA-Z0-9-._]*$'", shown(v)),
        ));
    }
    Ok(Some(s.clone()))
}

fn required(v: Option<String>, key: &str) -> Result<String, ApiError> {
    v.ok_or_else(|| ApiError::schema(format!("'{key}' is a required property")))
}

/// `host` and `binary`, both required.
fn host_binary(params: &Params) -> Result<(String, String), ApiError> {
    let host = required(string_param(params, "host", true)?, "host")?;
    let binary = required(string_param(params, "binary", false)?, "binary")?;
    Ok((host, binary))
}

/// `forced_down` as Zun reads it (`strutils.bool_from_string(strict=True)`).
fn forced_down(params: &Params) -> Result<bool, ApiError> {
    let Some((v, _)) = params.get("forced_down") else {
        return Err(ApiError::schema("'forced_down' is a required property"));
    };
    let parsed = match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool_strict(s.trim()),
        Value::Number(n) => parse_bool_strict(&n.to_string()),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ApiError::invalid_value(
            "Valid forced_down values are: 1, t, true, on, y, yes, 0, f, false, off, n, no",
        )
    })
}

/// The service `DELETE /v1/services?host=&binary=` names.
pub fn service_key(query: Option<&str>) -> Result<ServiceKey, ApiError> {
    let params = Params(
        pairs(query)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v), Source::Query))
            .collect(),
    );
    let (host, binary) = host_binary(&params)?;
    Ok(ServiceKey { host, binary })
}

/// What `PUT /v1/services/<action>` asks, checked in Zun's order: no other keys, `host` and
/// `binary`, then the action's own parameter.
pub fn service_change(action: Action, params: &Params) -> Result<(ServiceKey, Change), ApiError> {
    if let Some((key, _, _)) = params
        .0
        .iter()
        .find(|(k, _, _)| !keys(action).contains(&k.as_str()))
    {
        return Err(ApiError::schema(format!(
            "Additional properties are not allowed ('{key}' was unexpected)"
        )));
    }
    let (host, binary) = host_binary(params)?;
    let change = match action {
        Action::Enable => Change::Enable,
        Action::Disable => Change::Disable {
            reason: string_param(params, "disabled_reason", false)?,
        },
        Action::ForceDown => Change::ForceDown(forced_down(params)?),
    };
    Ok((ServiceKey { host, binary }, change))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(query: &str) -> Params {
        Params(
            pairs(Some(query))
                .into_iter()
                .map(|(k, v)| (k, Value::String(v), Source::Query))
                .collect(),
        )
    }

    #[test]
    fn host_and_binary_follow_zuns_schema() {
        assert_eq!(
            host_binary(&q("host=c-1.a_b&binary=zun-compute")).unwrap(),
            ("c-1.a_b".to_owned(), "zun-compute".to_owned())
        );
        let msg = |query: &str| host_binary(&q(query)).unwrap_err().to_string();
        assert_eq!(msg("binary=b"), "'host' is a required property");
        assert_eq!(msg("host=h"), "'binary' is a required property");
        assert_eq!(
            msg("host=a%20b&binary=b"),
            "Invalid input for query parameters 'host'. Value: 'a b'. 'a b' does not match \
             '^[a-zA-Z0-9-._]*$'"
        );
        assert_eq!(
            msg("host=&binary=b"),
            "Invalid input for query parameters 'host'. Value: ''. '' is too short"
        );
        let body = Params(vec![
            ("host".into(), json!(5), Source::Body),
            ("binary".into(), json!("b"), Source::Body),
        ]);
        assert_eq!(
            host_binary(&body).unwrap_err().to_string(),
            "Invalid input for field 'host'. Value: '5'. 5 is not of type 'string'"
        );
    }

    #[test]
    fn forced_down_is_a_strict_boolean() {
        for (v, want) in [
            (json!(true), true),
            (json!("True"), true),
            (json!("false"), false),
            (json!("no"), false),
            (json!(1), true),
        ] {
            let p = Params(vec![("forced_down".into(), v, Source::Body)]);
            assert_eq!(forced_down(&p).unwrap(), want);
        }
        for v in [json!("maybe"), json!(null), json!(2), json!([])] {
            let p = Params(vec![("forced_down".into(), v, Source::Body)]);
            assert!(forced_down(&p)
                .unwrap_err()
                .to_string()
                .starts_with("Valid forced_down values are: 1, t, true"));
        }
    }
}
