//! Volumes as the block-storage API takes them (`docs/volumes.md`, Cinder's v3 request
//! schemas): a create has `size` (a whole number of GiB, at most `[volume] max_size_gib`),
//! optional name, description, metadata and an existing availability zone, and no other source
//! than nothing; an update changes name, description and metadata only; metadata keys are 1 to
//! 255 of `[A-Za-z0-9-_:. /]` with string values; every volume action is refused.

use serde_json::{Map, Value};

use crate::oracle::{digits, integer, object, shape, unexpected, wrong, Judged, Shape};
use crate::oracle_network::resource;
use crate::strategies::Deeps;
use crate::NOWHERE;

/// `[volume] max_size_gib` (its default; devstack does not set it).
const MAX_SIZE_GIB: i128 = 100;
/// Cinder's longest name, description, metadata key and value.
const MAX_TEXT: usize = 255;
/// Sources of a new volume this service does not serve (`null` or `""` are no source).
const SOURCES: &[&str] = &[
    "snapshot_id",
    "source_volid",
    "imageRef",
    "image_id",
    "backup_id",
    "consistencygroup_id",
    "group_id",
];
/// Strings Cinder reads as false (`parameter_types.boolean`).
const FALSE: &[&str] = &["false", "0", "off", "no", "n", "f"];

/// A name or description: null, or a string of at most 255 characters once trimmed.
fn text(v: &Value, d: &Deeps, p: &str) -> Judged {
    match shape(v, d) {
        Shape::Json(Value::Null) => Ok(()),
        Shape::Json(Value::String(s)) if s.trim().chars().count() <= MAX_TEXT => Ok(()),
        Shape::Json(Value::String(_)) => Err(format!("{p}: longer than {MAX_TEXT} characters")),
        _ => Err(wrong(v, d, p, "a string")),
    }
}

/// Metadata: an object of strings under keys of 1 to 255 `[A-Za-z0-9-_:. /]`.
fn metadata(v: &Value, d: &Deeps, p: &str) -> Judged {
    entries(object(v, d, p)?, p)
}

/// The entries of a metadata object.
fn entries(m: &Map<String, Value>, p: &str) -> Judged {
    for (k, v) in m {
        let n = k.chars().count();
        if n == 0
            || n > MAX_TEXT
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. /".contains(c))
        {
            return Err(format!("{p}: a key not 1..=255 of [A-Za-z0-9-_:. /]"));
        }
        match v {
            Value::String(s) if s.chars().count() <= MAX_TEXT => {}
            _ => {
                return Err(format!(
                    "{p}.{k}: not a string of at most {MAX_TEXT} characters"
                ))
            }
        }
    }
    Ok(())
}

/// `POST /v3/{project}/volumes`.
pub(crate) fn volume_create(body: &Value, d: &Deeps) -> Judged {
    let top = object(body, d, "body")?;
    for (k, v) in top {
        match k.as_str() {
            "volume" => {}
            "OS-SCH-HNT:scheduler_hints" => hints(v, d, "body.OS-SCH-HNT:scheduler_hints")?,
            _ => return Err(unexpected("body", k)),
        }
    }
    let vol = object(
        top.get("volume").ok_or("body.volume: missing")?,
        d,
        "volume",
    )?;
    if vol.get("size").is_none_or(Value::is_null) {
        return Err("volume.size: missing".into());
    }
    for (k, v) in vol {
        let p = format!("volume.{k}");
        match k.as_str() {
            "size" => size(v, d, &p)?,
            "name" | "display_name" | "description" | "display_description" => text(v, d, &p)?,
            "availability_zone" => match shape(v, d) {
                Shape::Json(Value::Null) => {}
                Shape::Json(Value::String(s))
                    if s.is_empty() || s == NOWHERE || s.chars().count() > MAX_TEXT =>
                {
                    return Err(format!("{p}: no such zone"))
                }
                Shape::Json(Value::String(_)) => {}
                _ => return Err(wrong(v, d, &p, "a zone name")),
            },
            "metadata" if v.is_null() => {}
            "metadata" => metadata(v, d, &p)?,
            "volume_type" => match shape(v, d) {
                Shape::Json(Value::Null) => {}
                Shape::Json(Value::String(s)) if s.is_empty() || s == "__DEFAULT__" => {}
                _ => return Err(format!("{p}: no such type (the one type is __DEFAULT__)")),
            },
            "multiattach" => match shape(v, d) {
                Shape::Json(Value::Null | Value::Bool(false)) => {}
                Shape::Json(Value::String(s)) if FALSE.contains(&s.to_lowercase().as_str()) => {}
                Shape::Json(Value::Number(_)) if integer(v) != Some(1) => {}
                _ => return Err(format!("{p}: multiattach (refused) or not a boolean")),
            },
            "scheduler_hints" => hints(v, d, &p)?,
            key if SOURCES.contains(&key) => {
                if !(v.is_null() || v == "") {
                    return Err(format!("{p}: only new, empty volumes are made"));
                }
            }
            _ => return Err(unexpected("volume", k)),
        }
    }
    Ok(())
}

/// Scheduler hints: null or an object (what one holds is left to the API).
fn hints(v: &Value, d: &Deeps, p: &str) -> Judged {
    match shape(v, d) {
        Shape::Json(Value::Null | Value::Object(_)) => Ok(()),
        _ => Err(wrong(v, d, p, "an object")),
    }
}

/// `size`: a whole number of GiB, 1..=`max_size_gib`, or a string of its digits (a float
/// with no fraction is left to the API: JSON Schema validators differ on it).
fn size(v: &Value, d: &Deeps, p: &str) -> Judged {
    let n = match v {
        Value::Number(n) if integer(v).is_none() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            return if f.fract() == 0.0 && (1.0..=100.0).contains(&f) {
                Ok(())
            } else {
                Err(format!("{p}: not a whole number 1..={MAX_SIZE_GIB}"))
            };
        }
        Value::Number(_) => integer(v).unwrap_or_default(),
        Value::String(s) => match digits(s) {
            Some(n) => i128::try_from(n).unwrap_or(i128::MAX),
            None => return Err(format!("{p}: a string that is not digits")),
        },
        _ => return Err(wrong(v, d, p, "a number of GiB")),
    };
    if (1..=MAX_SIZE_GIB).contains(&n) {
        Ok(())
    } else {
        Err(format!("{p}: not 1..={MAX_SIZE_GIB} GiB"))
    }
}

/// A change of the fixture volume: `change` indexes `volumes::VOLUME_CHANGES`; `minor` is the
/// microversion in force when certain; `key` the metadata key the path names, decoded.
pub(crate) fn volume_change(
    change: usize,
    body: &Value,
    d: &Deeps,
    minor: Option<u16>,
    key: &str,
) -> Judged {
    match change {
        0 => {
            let vol = resource(body, d, "volume")?;
            for (k, v) in vol {
                let p = format!("volume.{k}");
                match k.as_str() {
                    "name" | "display_name" | "description" | "display_description" => {
                        text(v, d, &p)?
                    }
                    "metadata" => metadata(v, d, &p)?,
                    _ => return Err(format!("{p}: cannot be changed")),
                }
            }
            if vol.is_empty() && minor.is_some_and(|m| m >= 53) {
                return Err("volume: an update that changes nothing (3.53 and later)".into());
            }
            Ok(())
        }
        1 | 2 => entries(resource(body, d, "metadata")?, "metadata"),
        3 => {
            let m = resource(body, d, "meta")?;
            entries(m, "meta")?;
            match m.keys().collect::<Vec<_>>().as_slice() {
                [k] if *k == key => Ok(()),
                _ => Err(format!("meta: not exactly the key {key:?} of the path")),
            }
        }
        _ => Err("volume actions are all refused".into()),
    }
}
