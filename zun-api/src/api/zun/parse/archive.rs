//! `get_archive` and `put_archive`: the `path` (absolute, without `..` components, where Zun
//! takes any string) and `put_archive`'s body `{"data": <base64 tar archive>}`, whose archive
//! may be at most `[api] archive_max_bytes` (413 beyond). The body is read with a limit of its
//! own that fits such an archive in base64.

use base64::Engine;
use serde_json::Value;

use super::container::only;
use crate::error::ApiError;
use crate::http::query::{last, pairs};

/// Longest path.
const MAX_PATH: usize = 4096;
/// Room in a `put_archive` body besides the archive's base64.
const BODY_SLACK: usize = 64 * 1024;

/// The body limit of `put_archive` for archives of at most `archive_max` bytes.
pub fn put_body_limit(archive_max: usize) -> usize {
    archive_max
        .div_ceil(3)
        .saturating_mul(4)
        .saturating_add(BODY_SLACK)
}

/// Checks a path inside a container: absolute, no `..` component, no NUL, not too long.
pub fn container_path(v: &str) -> Result<String, ApiError> {
    let why = if v.is_empty() {
        Some("'path' is a required property")
    } else if !v.starts_with('/') {
        Some("The path must be absolute (start with '/').")
    } else if v.split('/').any(|c| c == "..") {
        Some("The path must not contain '..' components.")
    } else if v.contains('\0') {
        Some("The path holds a NUL character.")
    } else if v.len() > MAX_PATH {
        Some("The path is longer than 4096 bytes.")
    } else {
        None
    };
    match why {
        Some(why) => Err(ApiError::invalid_value(format!(
            "Invalid input for query parameters path. {why}"
        ))),
        None => Ok(v.to_owned()),
    }
}

/// The `path` of the query (the only parameter).
pub fn path(query: Option<&str>) -> Result<String, ApiError> {
    let pairs = pairs(query);
    only(&pairs, &["path"])?;
    container_path(last(&pairs, "path").unwrap_or_default())
}

/// `put_archive`'s `data`: base64 (standard alphabet, padded) of a tar archive of at most
/// `archive_max` bytes (413 beyond). Answers it as sent.
pub fn put_data(body: Value, archive_max: usize) -> Result<String, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::schema("The request body must be a JSON object."));
    };
    if let Some(k) = map.keys().find(|k| *k != "data") {
        return Err(ApiError::schema(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let Some(Value::String(data)) = map.remove("data") else {
        return Err(ApiError::schema(
            "'data' is a required property: a tar archive in base64.",
        ));
    };
    // Before decoding: the decoded size follows from the length.
    if data.len() / 4 * 3 > archive_max.saturating_add(2) {
        return Err(ApiError::TooLarge(format!(
            "The archive is larger than the limit of {archive_max} bytes."
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| ApiError::schema(format!("'data' is not base64: {e}.")))?;
    if bytes.len() > archive_max {
        return Err(ApiError::TooLarge(format!(
            "The archive is larger than the limit of {archive_max} bytes."
        )));
    }
    if bytes.is_empty() {
        return Err(ApiError::schema("'data' is an empty archive."));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        assert_eq!(path(Some("path=/etc/hostname")).unwrap(), "/etc/hostname");
        assert_eq!(path(Some("path=/a/..b/c.")).unwrap(), "/a/..b/c.");
        for (q, why) in [
            ("path=etc", "absolute"),
            ("path=", "required"),
            ("", "required"),
            ("path=/a/../etc", "'..'"),
            ("path=/..", "'..'"),
            ("path=/a%00b", "NUL"),
            ("path=/x&data=1", "'data' was unexpected"),
        ] {
            let m = path(Some(q)).unwrap_err().to_string();
            assert!(m.contains(why), "{q}: {m}");
        }
    }

    #[test]
    fn data_is_base64_within_the_limit() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        assert_eq!(put_data(json!({"data": b64(10)}), 10).unwrap(), b64(10));
        let e = put_data(json!({"data": b64(11)}), 10).unwrap_err();
        assert!(matches!(e, ApiError::TooLarge(_)), "{e:?}");
        let e = put_data(json!({"data": b64(4000)}), 10).unwrap_err();
        assert!(matches!(e, ApiError::TooLarge(_)), "{e:?}");
        for bad in [
            json!({"data": "not base64!"}),
            json!({"data": 5}),
            json!({}),
            json!({"data": ""}),
            json!({"data": b64(3), "path": "/x"}),
            json!([1]),
        ] {
            let e = put_data(bad.clone(), 10).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest { .. }), "{bad}: {e:?}");
        }
        // The body limit fits the largest archive in base64.
        let limit = put_body_limit(16 * 1024 * 1024);
        assert!(limit >= b64(16 * 1024 * 1024).len() + 100);
    }
}
