//! Request parsing of the block-storage API, checked strictly as Cinder's schemas check it,
//! with a 400 naming the field: JSON bodies (400/413/415), booleans, list and summary queries
//! (a filter, sort or paging parameter this service does not implement is a 400, never
//! silently ignored), and volume bodies. What this service cannot do (volumes from snapshots,
//! images, backups or other volumes; multiattach; scheduler hints) is a 400 saying so.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::error::CinderError;
use super::version::Version;
use crate::app::volume::{CreateRequest, ListRequest, UpdateRequest};
use crate::http::body::{json_bytes, JsonBodyError};
use crate::http::query::{last, pairs, parse_bool_strict};

/// Most volumes in one page (Cinder's `osapi_max_limit`).
pub const MAX_LIMIT: u64 = 1000;

/// A JSON request body, or Cinder's 400/413/415.
pub fn json_body(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<Value, CinderError> {
    let accepted = |ct: &str| {
        ["application/json", "application/vnd.openstack.volume+json"]
            .iter()
            .any(|t| ct.starts_with(t))
    };
    json_bytes(headers, body, limit, accepted).map_err(|e| match e {
        JsonBodyError::TooLarge => {
            CinderError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request is too large.")
        }
        JsonBodyError::UnsupportedType(_) => CinderError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type",
        ),
        JsonBodyError::Malformed(_) => CinderError::bad_request("Malformed request body"),
    })
}

/// A boolean query parameter as Cinder reads it (`strutils.bool_from_string`, strict).
pub fn parse_bool(name: &str, v: &str) -> Result<bool, CinderError> {
    parse_bool_strict(v.trim()).ok_or_else(|| {
        CinderError::bad_request(format!(
            "Invalid value '{v}' for {name}: it must be a boolean."
        ))
    })
}

/// A parsed list query.
#[derive(Debug, Default)]
pub struct ListQuery {
    /// What the operation needs.
    pub list: ListRequest,
    /// Page size in force (asked, or the maximum).
    pub limit: u64,
    /// The query without `marker`, for the next link.
    pub rest: Vec<(String, String)>,
}

/// Whether `sort` (Cinder's `key[:dir],...`) asks for the one order served: newest first.
fn default_sort(sort: &str) -> bool {
    let keys: Vec<(&str, &str)> = sort
        .split(',')
        .map(|k| {
            let (key, dir) = k.split_once(':').unwrap_or((k, "desc"));
            (key.trim(), dir.trim())
        })
        .collect();
    matches!(
        keys.as_slice(),
        [("created_at", "desc")] | [("created_at", "desc"), ("id", "desc")]
    )
}

/// The query of `GET /volumes[/detail]` for a caller who is an admin or not, at `version`
/// (`project_id` is a filter of admins only, `with_count` one of 3.45 on).
pub fn list_query(
    query: Option<&str>,
    is_admin: bool,
    version: Version,
) -> Result<ListQuery, CinderError> {
    let mut p = ListQuery {
        limit: MAX_LIMIT,
        ..Default::default()
    };
    let mut invalid = Vec::new();
    let all = pairs(query);
    let has = |k: &str| all.iter().any(|(key, _)| key == k);
    if has("sort") && (has("sort_key") || has("sort_dir")) {
        return Err(CinderError::bad_request(
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with \
             the 'sort' parameter.",
        ));
    }
    let unsorted = || {
        CinderError::bad_request(
            "Volumes are listed newest first only: the sort may only be created_at:desc.",
        )
    };
    for (k, v) in all {
        match k.as_str() {
            "marker" => {
                p.list.query.marker = Some(v);
                continue;
            }
            "name" => p.list.query.name = Some(v.clone()),
            "status" => p.list.query.status = Some(v.clone()),
            "limit" => {
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| CinderError::bad_request("limit param must be an integer"))?;
                let n = u64::try_from(n)
                    .map_err(|_| CinderError::bad_request("limit param must be positive"))?;
                p.limit = n.min(MAX_LIMIT);
            }
            "offset" => match v.trim().parse::<i64>() {
                Ok(0) => {}
                _ => {
                    return Err(CinderError::bad_request(
                        "offset is not supported: page with marker and limit.",
                    ))
                }
            },
            "sort" if default_sort(&v) => {}
            "sort_key" if v == "created_at" => {}
            "sort_dir" if v == "desc" => {}
            "sort" | "sort_key" | "sort_dir" => return Err(unsorted()),
            "all_tenants" => p.list.all_tenants = parse_bool(&k, &v)?,
            "project_id" if is_admin => p.list.project = Some(v.clone()),
            "with_count" if version.at_least(45) => p.list.with_count = parse_bool(&k, &v)?,
            _ => invalid.push(k.clone()),
        }
        p.rest.push((k, v));
    }
    if !invalid.is_empty() {
        return Err(CinderError::bad_request(format!(
            "Invalid filters {} are found in query options.",
            invalid.join(",")
        )));
    }
    p.list.query.limit = Some(p.limit);
    Ok(p)
}

/// The query of `GET /volumes/summary`: only `all_tenants`.
pub fn summary_query(query: Option<&str>) -> Result<bool, CinderError> {
    let mut all_tenants = false;
    for (k, v) in pairs(query) {
        match k.as_str() {
            "all_tenants" => all_tenants = parse_bool(&k, &v)?,
            _ => {
                return Err(CinderError::bad_request(format!(
                    "Invalid filters {k} are found in query options."
                )))
            }
        }
    }
    Ok(all_tenants)
}

/// The query of `DELETE /volumes/{id}`: `cascade` (no snapshots exist, so it changes nothing)
/// and `force` (not supported), both booleans.
pub fn delete_query(query: Option<&str>) -> Result<(), CinderError> {
    for (k, v) in pairs(query) {
        if k == "cascade" {
            parse_bool(&k, &v)?;
        }
        if k == "force" && parse_bool(&k, &v)? {
            return Err(CinderError::bad_request(
                "Force-deleting a volume is not supported by this service: delete it when it \
                 is available or in error, after the capsule using it is deleted.",
            ));
        }
    }
    Ok(())
}

/// The project `GET /limits` names (`project_id` or `tenant_id`, from 3.39; the operation
/// honours it for admins only).
pub fn limits_query(query: Option<&str>, version: Version) -> Option<String> {
    let pairs = pairs(query);
    let asked = ["project_id", "tenant_id"]
        .iter()
        .find_map(|k| last(&pairs, k))?;
    version.at_least(39).then(|| asked.to_owned())
}

/// `usage` of `GET /os-quota-sets/{project}` (absent: false).
pub fn quota_usage(query: Option<&str>) -> Result<bool, CinderError> {
    let pairs = pairs(query);
    match last(&pairs, "usage") {
        Some(v) => parse_bool("usage", v),
        None => Ok(false),
    }
}

/// The action of a `POST /volumes/{id}/action` body: its one key.
pub fn action_name(body: &Value) -> Result<String, CinderError> {
    match body {
        Value::Object(m) if m.len() == 1 => Ok(m.keys().next().cloned().unwrap_or_default()),
        _ => Err(CinderError::bad_request("Malformed request body")),
    }
}

/// The metadata of a metadata body (`{"metadata": {...}}` or `{"meta": {...}}`, as `key`).
pub fn metadata_body(
    headers: &HeaderMap,
    body: &Bytes,
    limit: usize,
    key: &str,
) -> Result<Map<String, Value>, CinderError> {
    let body = json_body(headers, body, limit)?;
    parse_metadata(&Value::Object(wrapped(&body, key, false)?.clone()))
}

/// The one item of a `PUT /volumes/{id}/metadata/{key}` body, which must be `key`'s.
pub fn metadata_item(new: Map<String, Value>, key: &str) -> Result<Value, CinderError> {
    if new.len() > 1 {
        return Err(CinderError::bad_request(
            "Request body contains too many items.",
        ));
    }
    new.get(key)
        .cloned()
        .ok_or_else(|| CinderError::bad_request("Request body and URI mismatch"))
}

/// Longest name, description, metadata key or value, in characters.
const MAX_TEXT: usize = 255;
/// Largest size the schema accepts (Cinder's `DB_MAX_INT`), before the configured limit.
const DB_MAX_INT: i64 = 0x7FFF_FFFF;

/// Source keys Cinder accepts and this service does not implement; `null` is fine.
const SOURCES: &[(&str, &str)] = &[
    ("snapshot_id", "a snapshot"),
    ("source_volid", "another volume"),
    ("imageRef", "an image"),
    ("image_id", "an image"),
    ("backup_id", "a backup"),
    ("consistencygroup_id", "a consistency group"),
    ("group_id", "a group"),
];

fn unexpected(key: &str, allowed: &str) -> CinderError {
    CinderError::bad_request(format!(
        "Additional properties are not allowed ('{key}' was unexpected): {allowed}."
    ))
}

/// An optional text field: a string of at most 255 characters (trimmed) or `null`.
fn text(field: &str, v: &Value) -> Result<Option<String>, CinderError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            if s.chars().count() > MAX_TEXT {
                return Err(CinderError::invalid(
                    field,
                    format!("'{}...'", s.chars().take(32).collect::<String>()),
                    format!("It is longer than {MAX_TEXT} characters."),
                ));
            }
            Ok(Some(s.to_owned()))
        }
        other => Err(CinderError::invalid(
            field,
            other,
            "It must be a string or null.",
        )),
    }
}

/// A size: an integer >= 1, or a string of digits (Cinder accepts both).
fn size(v: &Value) -> Result<i64, CinderError> {
    let why = "The size must be a whole number of GiB, at least 1.";
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| CinderError::invalid("size", v, why))?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().unwrap_or(i64::MAX)
        }
        other => return Err(CinderError::invalid("size", other, why)),
    };
    if n < 1 {
        return Err(CinderError::invalid(
            "size",
            v,
            format!("{n} is less than the minimum of 1."),
        ));
    }
    if n > DB_MAX_INT {
        return Err(CinderError::invalid(
            "size",
            v,
            format!("{n} is greater than the maximum of {DB_MAX_INT}."),
        ));
    }
    Ok(n)
}

fn metadata_key_ok(k: &str) -> bool {
    let n = k.chars().count();
    (1..=MAX_TEXT).contains(&n)
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:. /".contains(c))
}

/// Metadata: an object of strings (keys of letters, digits and `-_:. /`, 1 to 255
/// characters; values at most 255).
pub fn parse_metadata(v: &Value) -> Result<Map<String, Value>, CinderError> {
    let Value::Object(m) = v else {
        return Err(CinderError::invalid(
            "metadata",
            v,
            "It must be an object of strings.",
        ));
    };
    for (k, val) in m {
        if !metadata_key_ok(k) {
            return Err(CinderError::invalid(
                "metadata",
                v,
                format!(
                    "Key '{k}' is not allowed: keys are 1 to {MAX_TEXT} letters, digits or \
                     '-_:. /'."
                ),
            ));
        }
        match val {
            Value::String(s) if s.chars().count() <= MAX_TEXT => {}
            Value::String(_) => {
                return Err(CinderError::invalid(
                    "metadata",
                    v,
                    format!("The value of '{k}' is longer than {MAX_TEXT} characters."),
                ))
            }
            other => {
                return Err(CinderError::invalid(
                    "metadata",
                    v,
                    format!("The value of '{k}' is {other}, not a string."),
                ))
            }
        }
    }
    Ok(m.clone())
}

/// An empty `null`/`{}` hint object is fine; anything else is not supported.
fn no_hints(key: &str, v: &Value) -> Result<(), CinderError> {
    match v {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        _ => Err(CinderError::bad_request(format!(
            "Scheduler hints ('{key}') are not supported by this service."
        ))),
    }
}

/// The object under `key` of a body that has only that key (and, for a create, scheduler
/// hints).
fn wrapped<'a>(
    body: &'a Value,
    key: &str,
    hints: bool,
) -> Result<&'a Map<String, Value>, CinderError> {
    let Value::Object(top) = body else {
        return Err(CinderError::bad_request("Malformed request body"));
    };
    for (k, v) in top {
        if k == key {
            continue;
        }
        if hints && k == "OS-SCH-HNT:scheduler_hints" {
            no_hints(k, v)?;
            continue;
        }
        return Err(unexpected(
            k,
            &format!("the body is {{\"{key}\": {{...}}}}"),
        ));
    }
    match top.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(CinderError::invalid(key, other, "It must be an object.")),
        None => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute body. '{key}' is a required property."
        ))),
    }
}

/// Checks a `POST /volumes` body.
pub fn parse_create(body: &Value) -> Result<CreateRequest, CinderError> {
    let vol = wrapped(body, "volume", true)?;
    let mut req = CreateRequest {
        size: 0,
        name: None,
        description: None,
        availability_zone: None,
        metadata: Map::new(),
        volume_type: None,
    };
    let mut have_size = false;
    let (mut name, mut display_name, mut desc, mut display_desc) = (None, None, None, None);
    for (k, v) in vol {
        match k.as_str() {
            "size" if v.is_null() => {}
            "size" => {
                req.size = size(v)?;
                have_size = true;
            }
            "name" => name = text(k, v)?,
            "display_name" => display_name = text(k, v)?,
            "description" => desc = text(k, v)?,
            "display_description" => display_desc = text(k, v)?,
            "availability_zone" => {
                req.availability_zone = text(k, v)?;
                if req.availability_zone.as_deref() == Some("") {
                    return Err(CinderError::invalid(k, "''", "It must not be empty."));
                }
            }
            "metadata" if v.is_null() => {}
            "metadata" => req.metadata = parse_metadata(v)?,
            "volume_type" => req.volume_type = text(k, v)?.filter(|t| !t.is_empty()),
            "multiattach" => {
                let on = match v {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::String(s) => parse_bool(k, s)?,
                    other => return Err(CinderError::invalid(k, other, "It must be a boolean.")),
                };
                if on {
                    return Err(CinderError::bad_request(
                        "multiattach parameter has been removed. The default behavior is to use \
                         multiattach enabled volume types. Contact your administrator to create \
                         a multiattach enabled volume type and use it to create multiattach \
                         volumes.",
                    ));
                }
            }
            "OS-SCH-HNT:scheduler_hints" | "scheduler_hints" => no_hints(k, v)?,
            key => match SOURCES.iter().find(|(s, _)| *s == key) {
                Some(_) if v.is_null() || v.as_str() == Some("") => {}
                Some((_, what)) => {
                    return Err(CinderError::bad_request(format!(
                        "Creating a volume from {what} ('{key}') is not supported by this \
                         service: only new, empty volumes can be created."
                    )))
                }
                None => {
                    return Err(unexpected(
                        key,
                        "a volume has size, name, description, availability_zone, metadata \
                         and volume_type",
                    ))
                }
            },
        }
    }
    if !have_size {
        return Err(CinderError::bad_request(
            "Invalid input for field/attribute size. Value: None. The size of the volume, a \
             whole number of GiB (at least 1), is required.",
        ));
    }
    req.name = name.or(display_name);
    req.description = desc.or(display_desc);
    Ok(req)
}

/// Checks a `PUT /volumes/{id}` body; from 3.53 it must change something.
pub fn parse_update(body: &Value, version: Version) -> Result<UpdateRequest, CinderError> {
    let vol = wrapped(body, "volume", false)?;
    let mut req = UpdateRequest::default();
    let (mut display_name, mut display_desc) = (None, None);
    for (k, v) in vol {
        match k.as_str() {
            "name" => req.name = Some(text(k, v)?),
            "display_name" => display_name = Some(text(k, v)?),
            "description" => req.description = Some(text(k, v)?),
            "display_description" => display_desc = Some(text(k, v)?),
            "metadata" => req.metadata = Some(parse_metadata(v)?),
            key => {
                return Err(unexpected(
                    key,
                    "only name, description and metadata can be changed",
                ))
            }
        }
    }
    req.name = req.name.or(display_name);
    req.description = req.description.or(display_desc);
    if version.at_least(53) && req == UpdateRequest::default() {
        return Err(CinderError::invalid(
            "volume",
            "{}",
            "It must name at least one of name, description or metadata.",
        ));
    }
    Ok(req)
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(volume: Value) -> Result<CreateRequest, CinderError> {
        parse_create(&json!({ "volume": volume }))
    }

    fn refused(volume: Value) -> String {
        let e = create(volume).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        e.message().to_owned()
    }

    #[test]
    fn what_openstackclient_sends_is_accepted() {
        let r = parse_create(&json!({"volume": {
            "size": 1, "name": "data1", "description": null, "snapshot_id": null,
            "source_volid": null, "imageRef": null, "volume_type": null,
            "consistencygroup_id": null, "backup_id": null, "multiattach": false,
            "availability_zone": null, "metadata": null,
            "OS-SCH-HNT:scheduler_hints": null,
        }}))
        .unwrap();
        assert_eq!(r.size, 1);
        assert_eq!(r.name.as_deref(), Some("data1"));
        assert!(r.metadata.is_empty());
        assert_eq!(r.volume_type, None);
        let r = parse_create(&json!({"volume": {"size": "2", "display_name": " x ",
            "metadata": {"k": "v"}, "volume_type": "__DEFAULT__"},
            "OS-SCH-HNT:scheduler_hints": {}}))
        .unwrap();
        assert_eq!(r.size, 2);
        assert_eq!(r.name.as_deref(), Some("x"));
        assert_eq!(r.metadata["k"], "v");
        assert_eq!(r.volume_type.as_deref(), Some("__DEFAULT__"));
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in [
            json!(0),
            json!(-1),
            json!("abc"),
            json!(1.5),
            json!("1.5"),
            json!(""),
            json!(true),
            json!(2_147_483_648_i64),
            json!("99999999999999999999999"),
        ] {
            let m = refused(json!({ "size": bad }));
            assert!(m.contains("field/attribute size"), "{bad}: {m}");
        }
        assert!(refused(json!({"name": "x"})).contains("size"));
        assert!(refused(json!({"size": null})).contains("required"));
    }

    #[test]
    fn unsupported_and_unknown_keys_are_named() {
        let m = refused(json!({"size": 1, "snapshot_id": "5a0b4d4c-1d0b-4d4e-8e59-3b6cfa1b1f2a"}));
        assert!(
            m.contains("'snapshot_id'") && m.contains("not supported"),
            "{m}"
        );
        for key in ["source_volid", "imageRef", "backup_id", "group_id"] {
            let m = refused(json!({"size": 1, key: "x"}));
            assert!(m.contains(&format!("'{key}'")), "{m}");
        }
        assert!(refused(json!({"size": 1, "multiattach": true})).contains("multiattach"));
        assert!(refused(json!({"size": 1, "colour": "red"})).contains("'colour'"));
        assert!(refused(json!({"size": 1, "scheduler_hints": {"a": "b"}})).contains("hints"));
        let e = parse_create(&json!({"volume": {"size": 1}, "extra": 1})).unwrap_err();
        assert!(e.message().contains("'extra'"));
        assert!(parse_create(&json!({"volume": 1})).is_err());
        assert!(parse_create(&json!({}))
            .unwrap_err()
            .message()
            .contains("required"));
        assert!(parse_create(&json!([1])).is_err());
    }

    #[test]
    fn texts_and_metadata_are_checked() {
        assert!(refused(json!({"size": 1, "name": "n".repeat(256)})).contains("name"));
        assert!(create(json!({"size": 1, "name": "n".repeat(255)})).is_ok());
        assert!(refused(json!({"size": 1, "description": 5})).contains("description"));
        assert!(refused(json!({"size": 1, "availability_zone": ""})).contains("availability_zone"));
        assert!(refused(json!({"size": 1, "metadata": {"k": 1}})).contains("'k'"));
        assert!(refused(json!({"size": 1, "metadata": {"": "v"}})).contains("Key"));
        assert!(
            refused(json!({"size": 1, "metadata": {"a/b c:d.e_f-g": "v".repeat(256)}}))
                .contains("longer")
        );
        assert!(refused(json!({"size": 1, "metadata": ["a"]})).contains("metadata"));
        assert!(create(json!({"size": 1, "metadata": {"a/b c:d.e_f-g": "v"}})).is_ok());
    }

    #[test]
    fn updates_change_only_what_is_named() {
        let u = parse_update(
            &json!({"volume": {"name": "x", "description": null}}),
            Version(0),
        )
        .unwrap();
        assert_eq!(u.name, Some(Some("x".into())));
        assert_eq!(u.description, Some(None));
        assert_eq!(u.metadata, None);
        let u = parse_update(&json!({"volume": {"metadata": {"a": "b"}}}), Version(70)).unwrap();
        assert_eq!(u.metadata.unwrap()["a"], "b");
        assert!(parse_update(&json!({"volume": {}}), Version(0)).is_ok());
        assert!(parse_update(&json!({"volume": {}}), Version(53)).is_err());
        let e = parse_update(&json!({"volume": {"size": 2}}), Version(0)).unwrap_err();
        assert!(e.message().contains("'size'"));
        assert!(parse_update(&json!({"volume": {"metadata": null}}), Version(0)).is_err());
    }

    #[test]
    fn booleans_as_cinder_reads_them() {
        assert!(parse_bool("x", "True").unwrap());
        assert!(parse_bool("x", "1").unwrap());
        assert!(!parse_bool("x", "off").unwrap());
        assert_eq!(
            parse_bool("all_tenants", "maybe").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn sort_is_newest_first_only() {
        assert!(default_sort("created_at"));
        assert!(default_sort("created_at:desc"));
        assert!(default_sort("created_at:desc,id:desc"));
        assert!(!default_sort("created_at:asc"));
        assert!(!default_sort("name"));
    }
}
