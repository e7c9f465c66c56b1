//! The contract generated requests are judged by, and its shared pieces. A judge reads the
//! request as it goes out and says `Err(why)` when the contract makes it certainly invalid (it
//! must then get a 4xx), or `Ok(())` when it may be valid. The contract is what the services
//! document: Zun's template schema as `docs/zun-compatibility.md` tightens it, Neutron's and
//! Cinder's request rules as `docs/security-groups.md` and `docs/volumes.md` say the network and
//! block-storage APIs serve them, OpenStack's microversion rules, and the HTTP and JSON RFCs.
//! Judges are sound rather than complete: where the contract leaves room (a lenient parser, an
//! RFC's "MAY", a Zun rule this service might keep looser), they say nothing, and a success is
//! allowed; a judge never calls a request invalid because of what the implementation happens
//! to do.

use serde_json::{Map, Value};

use crate::strategies::Deeps;

/// A judge's finding: `Err(why)` when the input is certainly invalid.
pub(crate) type Judged = Result<(), String>;

/// Nesting every JSON decoder on the way reads: serde_json's limit, which the service names
/// as its own (`types::template::MAX_ANNOTATION_DEPTH`'s comment); nesting deeper than this
/// plus two levels of slack (decoders count from different places) is refused.
pub(crate) const JSON_DEPTH: usize = 128;

/// A value as judges see it: JSON, or a mark that stands for nesting too deep to build.
pub(crate) enum Shape<'a> {
    /// An ordinary value.
    Json(&'a Value),
    /// `depth` levels of arrays (`[[…]]`) or of objects (`{"a":{"a":…1}}`).
    Deep { depth: usize, object: bool },
}

/// What `v` is, seeing through deep marks.
pub(crate) fn shape<'a>(v: &'a Value, d: &Deeps) -> Shape<'a> {
    match d.lookup(v) {
        Some((depth, object)) => Shape::Deep { depth, object },
        None => Shape::Json(v),
    }
}

/// `v`'s JSON type in words.
pub(crate) fn type_of(v: &Value, d: &Deeps) -> String {
    match shape(v, d) {
        Shape::Deep { depth, object } => {
            format!(
                "{depth} levels of {}",
                if object { "objects" } else { "arrays" }
            )
        }
        Shape::Json(v) => match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(n) if n.is_f64() => "a float",
            Value::Number(_) => "an integer",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
        .to_owned(),
    }
}

/// `Err("{p}: must be {what}, not …")`.
pub(crate) fn wrong(v: &Value, d: &Deeps, p: &str, what: &str) -> String {
    format!("{p}: must be {what}, not {}", type_of(v, d))
}

/// `v` as a string.
pub(crate) fn string<'a>(v: &'a Value, d: &Deeps, p: &str) -> Result<&'a str, String> {
    match shape(v, d) {
        Shape::Json(Value::String(s)) => Ok(s),
        _ => Err(wrong(v, d, p, "a string")),
    }
}

/// `v` as an object whose keys are all checked (a deep one has the unknown key `a`).
pub(crate) fn object<'a>(
    v: &'a Value,
    d: &Deeps,
    p: &str,
) -> Result<&'a Map<String, Value>, String> {
    match shape(v, d) {
        Shape::Json(Value::Object(m)) => Ok(m),
        _ => Err(wrong(v, d, p, "an object")),
    }
}

/// `v` as an object whose unknown keys are ignored, `nest` levels down the body: `Ok(None)`
/// for a deep object that decoders still read (its one key is unknown, so nothing in it
/// counts); too deep, or not an object, is invalid.
pub(crate) fn lenient_object<'a>(
    v: &'a Value,
    d: &Deeps,
    p: &str,
    nest: usize,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match shape(v, d) {
        Shape::Json(Value::Object(m)) => Ok(Some(m)),
        Shape::Deep {
            depth,
            object: true,
        } => too_deep(nest + depth, p).map(|()| None),
        _ => Err(wrong(v, d, p, "an object")),
    }
}

/// Nesting of `total` levels: invalid beyond [`JSON_DEPTH`] and its slack.
pub(crate) fn too_deep(total: usize, p: &str) -> Judged {
    if total > JSON_DEPTH + 2 {
        Err(format!(
            "{p}: nests {total} levels, beyond every JSON decoder's {JSON_DEPTH}"
        ))
    } else {
        Ok(())
    }
}

/// `v` as an array of items that are never arrays (a deep array is invalid).
pub(crate) fn array<'a>(v: &'a Value, d: &Deeps, p: &str) -> Result<&'a [Value], String> {
    match shape(v, d) {
        Shape::Json(Value::Array(a)) => Ok(a),
        Shape::Deep { object: false, .. } => Err(format!("{p}: holds arrays where items belong")),
        _ => Err(wrong(v, d, p, "an array")),
    }
}

/// An integer JSON number (a float, even `80.0`, is not one).
pub(crate) fn integer(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    }
}

/// A non-empty run of ASCII digits, as a number (`u128::MAX` when it overflows).
pub(crate) fn digits(s: &str) -> Option<u128> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().unwrap_or(u128::MAX))
}

/// What Python's `int()` makes of a string (OpenStack services convert numbers with it).
pub(crate) enum PyInt {
    /// Plain ASCII digits with an optional sign: this number.
    Is(i128),
    /// A form `int()` takes that a stricter parser may not (spaces, underscores, other
    /// scripts' digits).
    Unsure,
    /// Not a number to `int()`.
    Not,
}

/// See [`PyInt`].
pub(crate) fn py_int(s: &str) -> PyInt {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if let Some(n) = digits(rest) {
        let n = i128::try_from(n).unwrap_or(i128::MAX);
        return PyInt::Is(if neg { -n } else { n });
    }
    let t = s.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !t.is_empty() && t.chars().all(|c| c.is_numeric() || c == '_') {
        PyInt::Unsure
    } else {
        PyInt::Not
    }
}

/// Whether `s` holds a control character (C0, DEL or C1).
pub(crate) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Zun's name pattern (`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, 2 to 255 characters).
pub(crate) fn zun_name(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=255).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `p.key: unexpected property` (the key clipped).
pub(crate) fn unexpected(p: &str, key: &str) -> String {
    format!(
        "{p}.{}: unexpected",
        key.chars().take(40).collect::<String>()
    )
}

/// The entries of an `OpenStack-API-Version` value as `(service, version)` words, or `None`
/// when it holds control characters (which RFC 9110 lets a recipient replace with spaces, so
/// nothing is certain about it).
fn version_entries(h: &str) -> Option<Vec<Vec<&str>>> {
    (!has_control(h)).then(|| {
        h.split(',')
            .map(|e| e.split_whitespace().collect())
            .collect()
    })
}

/// `OpenStack-API-Version` of a capsule request: certainly refused (406, as Zun and the
/// microversion guideline say) when its one entry names the container service with no
/// version, a version not `X.Y`, or one outside 1.1..=1.40.
pub(crate) fn container_version(h: &str) -> Judged {
    let Some(entries) = version_entries(h) else {
        return Ok(());
    };
    let [entry] = entries.as_slice() else {
        return Ok(());
    };
    match entry.as_slice() {
        [s] if s.eq_ignore_ascii_case("container") => {
            Err("OpenStack-API-Version: container without a version".into())
        }
        [s, v] if s.eq_ignore_ascii_case("container") && !v.eq_ignore_ascii_case("latest") => {
            let parsed = v
                .split_once('.')
                .and_then(|(a, b)| Some((digits(a)?, digits(b)?)));
            match parsed {
                None => Err(format!("OpenStack-API-Version: container {v:?}, not X.Y")),
                Some((1, 1..=40)) => Ok(()),
                Some(_) => Err(format!(
                    "OpenStack-API-Version: container {v}, not 1.1 to 1.40"
                )),
            }
        }
        _ => Ok(()),
    }
}

/// `OpenStack-API-Version` of a block-storage request: certainly refused (Cinder's 400 or
/// 406) when its one entry names the volume service with a version not in Cinder's
/// `MajorNum.MinorNum` form (no leading zeros) or outside 3.0..=3.70. Returns the minor
/// version in force when that is certain.
pub(crate) fn volume_version(h: Option<&str>) -> Result<Option<u16>, String> {
    let Some(h) = h else {
        return Ok(Some(0));
    };
    let Some(entries) = version_entries(h) else {
        return Ok(None);
    };
    let asked: Vec<&Vec<&str>> = entries
        .iter()
        .filter(|e| e.first() == Some(&"volume"))
        .collect();
    match (entries.len(), asked.as_slice()) {
        (_, []) => Ok(Some(0)),
        (1, [entry]) => {
            let v = entry.get(1).copied().unwrap_or("");
            if v.eq_ignore_ascii_case("latest") {
                return Ok(Some(70));
            }
            let canonical = |s: &str| s == "0" || (!s.starts_with('0') && digits(s).is_some());
            let Some((a, b)) = v
                .split_once('.')
                .filter(|(a, b)| canonical(a) && canonical(b))
            else {
                return Err(format!(
                    "OpenStack-API-Version: volume {v:?}, not MajorNum.MinorNum"
                ));
            };
            match (digits(a), digits(b)) {
                (Some(3), Some(minor @ 0..=70)) => Ok(u16::try_from(minor).ok()),
                _ => Err(format!(
                    "OpenStack-API-Version: volume {v}, not 3.0 to 3.70"
                )),
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in [
            "container 1.40",
            "container latest",
            "container 01.40",
            "compute 2.1",
            "",
        ] {
            assert_eq!(container_version(ok), Ok(()), "{ok}");
        }
        for bad in [
            "container 1.41",
            "container 2.0",
            "container 1.x",
            "container",
        ] {
            assert!(container_version(bad).is_err(), "{bad}");
        }
        assert_eq!(volume_version(Some("volume 3.70")), Ok(Some(70)));
        assert_eq!(volume_version(Some("compute 2.1")), Ok(Some(0)));
        for bad in [
            "volume 3.71",
            "volume 3",
            "volume 03.1",
            "volume 4.0",
            "volume x.y",
        ] {
            assert!(volume_version(Some(bad)).is_err(), "{bad}");
        }
    }
}
