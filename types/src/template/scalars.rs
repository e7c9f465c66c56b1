//! Checks for single JSON values: types, names, boolean-ish strings, ports, quantities, paths.
//!
//! Each checker records at most one error at the path it is given and returns `None` when it
//! did; nothing here panics, whatever the value.

use super::errors::{quote, Sink};
use super::limits::Limits;
use serde_json::{Map, Value};

/// Longest name (container, volume, port, security group, label key), as Zun's schema.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// JSON type of `v`, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Records `"must be {what} (got {type})"`.
pub(crate) fn wrong_type(v: &Value, what: &str, path: &str, sink: &mut Sink) {
    sink.add(path, format!("must be {what} (got {})", type_name(v)));
}

/// Records that `key` of the object at `parent` is missing.
pub(crate) fn required(parent: &str, key: &str, sink: &mut Sink) {
    sink.add(&super::errors::join(parent, key), "is a required property");
}

/// Records an unexpected key (already joined into `path`).
pub(crate) fn unexpected(path: &str, sink: &mut Sink) {
    sink.add(path, "unexpected property");
}

/// `v` as an object.
pub(crate) fn object<'a>(
    v: &'a Value,
    path: &str,
    sink: &mut Sink,
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(map) => Some(map),
        _ => {
            wrong_type(v, "an object", path, sink);
            None
        }
    }
}

/// `v` as an array.
/// Reports a collection at `path` with more than `max` entries.
pub(crate) fn check_count(len: usize, max: usize, path: &str, sink: &mut Sink) {
    if len > max {
        sink.add(path, format!("must have at most {max} entries (got {len})"));
    }
}

/// An object or null of at most `max` entries: `None` for null or (reported) another type; an
/// oversized object is reported and still returned, so its entries are checked too.
pub(crate) fn object_or_null<'a>(
    v: &'a Value,
    max: usize,
    path: &str,
    sink: &mut Sink,
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Null => None,
        Value::Object(obj) => {
            check_count(obj.len(), max, path, sink);
            Some(obj)
        }
        _ => {
            wrong_type(v, "an object or null", path, sink);
            None
        }
    }
}

pub(crate) fn array<'a>(v: &'a Value, path: &str, sink: &mut Sink) -> Option<&'a [Value]> {
    match v {
        Value::Array(items) => Some(items),
        _ => {
            wrong_type(v, "an array", path, sink);
            None
        }
    }
}

/// `v` as a string.
pub(crate) fn string<'a>(v: &'a Value, path: &str, sink: &mut Sink) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        _ => {
            wrong_type(v, "a string", path, sink);
            None
        }
    }
}

/// True for a C0 or C1 control character or DEL.
fn is_control(c: char) -> bool {
    c.is_control()
}

/// A short identifier-like string: `min..=max` characters and no control characters.
pub(crate) fn text(
    v: &Value,
    min: usize,
    max: usize,
    path: &str,
    sink: &mut Sink,
) -> Option<String> {
    let s = string(v, path, sink)?;
    check_text(s, min, max, path, sink).then(|| s.to_owned())
}

/// As [`text`], for a string already in hand (an object key, say).
pub(crate) fn check_text(s: &str, min: usize, max: usize, path: &str, sink: &mut Sink) -> bool {
    let len = s.chars().count();
    if len < min || len > max {
        let bounds = if min == max {
            format!("exactly {min}")
        } else {
            format!("{min} to {max}")
        };
        sink.add(
            path,
            format!("must be {bounds} characters long (got {len})"),
        );
        false
    } else if s.chars().any(is_control) {
        sink.add(path, "must not contain control characters");
        false
    } else {
        true
    }
}

/// Free text (command arguments, environment values): at most `max` bytes and no NUL.
pub(crate) fn check_free_text(s: &str, max: usize, path: &str, sink: &mut Sink) -> bool {
    if s.len() > max {
        sink.add(
            path,
            format!("must be at most {max} bytes long (got {})", s.len()),
        );
        false
    } else if s.contains('\0') {
        sink.add(path, "must not contain NUL characters");
        false
    } else {
        true
    }
}

/// Zun's `container_name`/`volume_name` pattern `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, 2..255.
pub(crate) fn is_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    (2..=MAX_NAME_LEN).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A container, volume or port name (string, Zun's name pattern).
pub(crate) fn name(v: &Value, path: &str, sink: &mut Sink) -> Option<String> {
    let s = string(v, path, sink)?;
    if is_name(s) {
        Some(s.to_owned())
    } else {
        sink.add(
            path,
            "must be 2 to 255 characters: letters, digits, '_', '.' or '-', starting with a \
             letter or digit",
        );
        None
    }
}

/// Zun's boolean: `true`, `false`, or the strings `"true"`, `"True"`, `"false"`, `"False"`,
/// each meaning what it says.
pub(crate) fn bool_ish(v: &Value, path: &str, sink: &mut Sink) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" || s == "True" => Some(true),
        Value::String(s) if s == "false" || s == "False" => Some(false),
        Value::String(s) => {
            sink.add(
                path,
                format!("must be true or false (got the string {})", quote(s)),
            );
            None
        }
        _ => {
            wrong_type(v, "true or false", path, sink);
            None
        }
    }
}

/// A non-negative integer given as a JSON integer or a string of digits (`Ok(None)` when it
/// overflows `u64`); `Err` for a negative integer or after recording a type error.
fn integer_or_digits(
    v: &Value,
    what: &str,
    path: &str,
    sink: &mut Sink,
) -> Result<Option<u64>, Negative> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else if n.is_i64() {
                Err(Negative::Value)
            } else {
                wrong_type(v, what, path, sink);
                Err(Negative::Reported)
            }
        }
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(s.parse::<u64>().ok())
        }
        Value::String(_) => {
            sink.add(path, format!("must be {what} or a string of digits"));
            Err(Negative::Reported)
        }
        _ => {
            wrong_type(v, what, path, sink);
            Err(Negative::Reported)
        }
    }
}

/// Why [`integer_or_digits`] gave no value.
enum Negative {
    /// The value is a negative integer; the caller reports it as out of range.
    Value,
    /// An error was already recorded.
    Reported,
}

/// A port number 1..65535, as an integer or a string of digits.
pub(crate) fn port(v: &Value, path: &str, sink: &mut Sink) -> Option<u16> {
    match integer_or_digits(v, "an integer", path, sink) {
        Ok(Some(n)) if (1..=65535).contains(&n) => u16::try_from(n).ok(),
        Ok(_) | Err(Negative::Value) => {
            sink.add(path, "must be 1..65535");
            None
        }
        Err(Negative::Reported) => None,
    }
}

/// An integer (or a string of digits) in `min..=max`, `unit` naming what it counts.
pub(crate) fn bounded(
    v: &Value,
    min: u64,
    max: u64,
    unit: &str,
    path: &str,
    sink: &mut Sink,
) -> Option<u64> {
    match integer_or_digits(v, "an integer", path, sink) {
        Ok(Some(n)) if (min..=max).contains(&n) => Some(n),
        Ok(_) | Err(Negative::Value) => {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" ({unit})")
            };
            sink.add(path, format!("must be {min}..{max}{unit}"));
            None
        }
        Err(Negative::Reported) => None,
    }
}

/// `spec.terminationGracePeriodSeconds`: seconds 0..=3600, as an integer or a string of digits.
pub(crate) fn grace_seconds(v: &Value, path: &str, sink: &mut Sink) -> Option<u64> {
    match integer_or_digits(v, "an integer", path, sink) {
        Ok(Some(n)) if n <= 3600 => Some(n),
        Ok(_) | Err(Negative::Value) => {
            sink.add(path, "must be 0..3600 (seconds)");
            None
        }
        Err(Negative::Reported) => None,
    }
}

/// `resources.requests.cpu`: a number or a numeric string (`^[0-9]*(\.[0-9]+)?$`, non-empty),
/// within the limits.
pub(crate) fn cpu(v: &Value, limits: &Limits, path: &str, sink: &mut Sink) -> Option<f64> {
    let value = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if is_decimal(s) => s.parse::<f64>().ok(),
        Value::String(_) => {
            sink.add(
                path,
                "must be a number or a string holding a decimal number",
            );
            return None;
        }
        _ => {
            wrong_type(v, "a number", path, sink);
            return None;
        }
    };
    match value.map(round_cpu) {
        Some(x) if x >= limits.min_cpu && x <= limits.max_cpu => Some(x),
        _ => {
            sink.add(
                path,
                format!("must be between {} and {}", limits.min_cpu, limits.max_cpu),
            );
            None
        }
    }
}

/// CPU amounts are kept to Docker's `NanoCpus` resolution.
const NANOS_PER_CPU: f64 = 1e9;

/// Rounds `x` to the nearest 1e-9 CPU. Runtimes cannot use finer amounts, and the result has a
/// short decimal form that survives a JSON round trip exactly (serde_json's default float parser
/// can be one ULP off for 17-digit numbers).
pub(crate) fn round_cpu(x: f64) -> f64 {
    (x * NANOS_PER_CPU).round() / NANOS_PER_CPU
}

/// `^[0-9]*(\.[0-9]+)?$` and non-empty.
fn is_decimal(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (s, None),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    match frac {
        Some(frac) => digits(int) && !frac.is_empty() && digits(frac),
        None => !int.is_empty() && digits(int),
    }
}

/// `resources.requests.memory` in MiB: an integer or a string of digits, within the limits.
pub(crate) fn memory(v: &Value, limits: &Limits, path: &str, sink: &mut Sink) -> Option<u64> {
    match integer_or_digits(v, "an integer number of MiB", path, sink) {
        Ok(Some(n)) if n >= limits.min_memory_mib && n <= limits.max_memory_mib => Some(n),
        Ok(_) | Err(Negative::Value) => {
            sink.add(
                path,
                format!(
                    "must be between {} and {} MiB",
                    limits.min_memory_mib, limits.max_memory_mib
                ),
            );
            None
        }
        Err(Negative::Reported) => None,
    }
}

/// `cinder.size` in GiB: a JSON number with an integral value, 1..=max.
pub(crate) fn size_gib(v: &Value, limits: &Limits, path: &str, sink: &mut Sink) -> Option<u64> {
    let Value::Number(n) = v else {
        wrong_type(v, "an integer number of GiB", path, sink);
        return None;
    };
    let max = limits.max_volume_size_gib;
    let out_of_range = |sink: &mut Sink| {
        sink.add(path, format!("must be between 1 and {max} GiB"));
        None
    };
    if let Some(u) = n.as_u64() {
        return if (1..=max).contains(&u) {
            Some(u)
        } else {
            out_of_range(sink)
        };
    }
    if n.is_i64() {
        return out_of_range(sink);
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() || f.fract() != 0.0 {
        sink.add(path, "must be a whole number of GiB");
        return None;
    }
    // Integral and finite: compare as floats first so the cast below is exact and in range.
    if f >= 1.0 && f <= max as f64 {
        Some(f as u64)
    } else {
        out_of_range(sink)
    }
}

/// Checks an absolute container path (`workDir`); true when it is valid.
pub(crate) fn absolute_path(s: &str, limits: &Limits, path: &str, sink: &mut Sink) -> bool {
    if let Err(msg) = check_path_text(s, limits) {
        sink.add(path, msg);
        false
    } else {
        true
    }
}

/// Common checks of an absolute path: non-empty, starts with `/`, length, no control chars.
fn check_path_text(s: &str, limits: &Limits) -> Result<(), String> {
    if !s.starts_with('/') {
        Err(String::from("must be an absolute path"))
    } else if s.len() > limits.max_path_len {
        Err(format!(
            "must be at most {} bytes long (got {})",
            limits.max_path_len,
            s.len()
        ))
    } else if s.chars().any(is_control) {
        Err(String::from("must not contain NUL or control characters"))
    } else {
        Ok(())
    }
}

/// Top-level directories a volume may not be mounted over or under.
const FORBIDDEN_MOUNT_ROOTS: [&str; 3] = ["proc", "sys", "dev"];

/// Validates a `mountPath` and returns its normal form: absolute, no `..`, not `/`, not under
/// `/proc`, `/sys` or `/dev`; empty and `.` components and trailing slashes removed.
pub(crate) fn mount_path(s: &str, limits: &Limits) -> Result<String, String> {
    check_path_text(s, limits)?;
    let components: Vec<&str> = s
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if components.contains(&"..") {
        return Err(String::from("must not contain '..' components"));
    }
    match components.first() {
        None => Err(String::from("must not be the root directory")),
        Some(first) if FORBIDDEN_MOUNT_ROOTS.contains(first) => {
            Err(String::from("must not be under /proc, /sys or /dev"))
        }
        Some(_) => Ok(format!("/{}", components.join("/"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check<T>(f: impl FnOnce(&mut Sink) -> Option<T>) -> (Option<T>, Vec<String>) {
        let mut sink = Sink::default();
        let out = f(&mut sink);
        (out, sink.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn type_names() {
        assert_eq!(type_name(&json!(1)), "integer");
        assert_eq!(type_name(&json!(-1)), "integer");
        assert_eq!(type_name(&json!(1.5)), "number");
        assert_eq!(type_name(&json!(null)), "null");
        assert_eq!(type_name(&json!({})), "object");
    }

    #[test]
    fn names() {
        for ok in ["ab", "a1", "A.b-c_d", "0x"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "-ab",
            "_ab",
            "a b",
            "a/b",
            "ü-ab",
            "ab;rm",
            &"a".repeat(256),
        ] {
            assert!(!is_name(bad), "{bad}");
        }
        assert!(is_name(&"a".repeat(255)));
        let (out, errs) = check(|s| name(&json!(12), "n", s));
        assert_eq!(out, None);
        assert_eq!(errs, ["n: must be a string (got integer)"]);
    }

    #[test]
    fn booleans() {
        for (v, want) in [
            (json!(true), true),
            (json!("True"), true),
            (json!("true"), true),
            (json!(false), false),
            (json!("false"), false),
            (json!("False"), false),
        ] {
            assert_eq!(check(|s| bool_ish(&v, "b", s)).0, Some(want), "{v}");
        }
        for bad in [
            json!("yes"),
            json!("TRUE"),
            json!(1),
            json!(null),
            json!(""),
        ] {
            let (out, errs) = check(|s| bool_ish(&bad, "b", s));
            assert_eq!(out, None);
            assert_eq!(errs.len(), 1);
            assert!(errs[0].starts_with("b: must be true or false"), "{errs:?}");
        }
    }

    #[test]
    fn ports() {
        for (v, want) in [
            (json!(1), 1),
            (json!(65535), 65535),
            (json!("8080"), 8080),
            (json!("007"), 7),
        ] {
            assert_eq!(check(|s| port(&v, "p", s)).0, Some(want));
        }
        for bad in [
            json!(0),
            json!(65536),
            json!(-1),
            json!("0"),
            json!("99999999999999999999999"),
            json!(u64::MAX),
            json!(i64::MIN),
        ] {
            let (out, errs) = check(|s| port(&bad, "p", s));
            assert_eq!(out, None);
            assert_eq!(errs, ["p: must be 1..65535"], "{bad}");
        }
        for bad in [
            json!("abc"),
            json!(""),
            json!(" 80"),
            json!(1.5),
            json!(80.0),
            json!(true),
            json!(null),
        ] {
            let (out, errs) = check(|s| port(&bad, "p", s));
            assert_eq!(out, None);
            assert_eq!(errs.len(), 1, "{bad}");
            assert!(errs[0].contains("must be an integer"), "{errs:?}");
        }
    }

    #[test]
    fn cpus() {
        let l = Limits::default();
        for (v, want) in [
            (json!(0.1), 0.1),
            (json!(16), 16.0),
            (json!("0.5"), 0.5),
            (json!(".5"), 0.5),
            (json!("2"), 2.0),
        ] {
            assert_eq!(check(|s| cpu(&v, &l, "c", s)).0, Some(want), "{v}");
        }
        for bad in [
            json!(0),
            json!(0.05),
            json!(16.5),
            json!(-1),
            json!(-0.0),
            json!("0"),
            json!("1e400"),
        ] {
            let (out, errs) = check(|s| cpu(&bad, &l, "c", s));
            assert_eq!(out, None, "{bad}");
            assert_eq!(errs.len(), 1);
        }
        let (out, _) = check(|s| cpu(&json!(14.046574958306719), &l, "c", s));
        assert_eq!(out, Some(14.046_574_958));
        let (out, _) = check(|s| cpu(&json!("0.09999999999"), &l, "c", s));
        assert_eq!(out, Some(0.1));
        let huge = "9".repeat(400);
        assert_eq!(check(|s| cpu(&json!(huge), &l, "c", s)).0, None);
        for bad in ["", "1.", "a", "-1", "1.2.3", "1e3", " 1"] {
            let (_, errs) = check(|s| cpu(&json!(bad), &l, "c", s));
            assert!(errs[0].contains("decimal number"), "{bad}: {errs:?}");
        }
        assert!(check(|s| cpu(&json!(true), &l, "c", s)).1[0].contains("got boolean"));
    }

    #[test]
    fn memories() {
        let l = Limits::default();
        for (v, want) in [(json!(4), 4), (json!("512"), 512), (json!(8192), 8192)] {
            assert_eq!(check(|s| memory(&v, &l, "m", s)).0, Some(want));
        }
        for bad in [
            json!(0),
            json!(3),
            json!(8193),
            json!(-5),
            json!("99999999999999999999999"),
        ] {
            let (out, errs) = check(|s| memory(&bad, &l, "m", s));
            assert_eq!(out, None);
            assert_eq!(errs, ["m: must be between 4 and 8192 MiB"], "{bad}");
        }
        for bad in [
            json!(512.0),
            json!(1.5),
            json!("512Mi"),
            json!("1.5"),
            json!([]),
        ] {
            let (out, errs) = check(|s| memory(&bad, &l, "m", s));
            assert_eq!(out, None);
            assert!(errs[0].contains("must be an integer"), "{errs:?}");
        }
    }

    #[test]
    fn sizes() {
        let l = Limits::default();
        for (v, want) in [(json!(1), 1), (json!(1024), 1024), (json!(2.0), 2)] {
            assert_eq!(check(|s| size_gib(&v, &l, "s", s)).0, Some(want));
        }
        for bad in [
            json!(0),
            json!(-1),
            json!(1025),
            json!(1_000_000),
            json!(0.0),
            json!(-0.0),
            json!(1e300),
        ] {
            let (out, errs) = check(|s| size_gib(&bad, &l, "s", s));
            assert_eq!(out, None);
            assert_eq!(errs, ["s: must be between 1 and 1024 GiB"], "{bad}");
        }
        let (_, errs) = check(|s| size_gib(&json!(1.5), &l, "s", s));
        assert_eq!(errs, ["s: must be a whole number of GiB"]);
        let (_, errs) = check(|s| size_gib(&json!("10"), &l, "s", s));
        assert_eq!(errs, ["s: must be an integer number of GiB (got string)"]);
    }

    #[test]
    fn mount_paths() {
        let l = Limits::default();
        assert_eq!(mount_path("/data", &l).as_deref(), Ok("/data"));
        assert_eq!(mount_path("/data/", &l).as_deref(), Ok("/data"));
        assert_eq!(mount_path("//a/./b//", &l).as_deref(), Ok("/a/b"));
        assert_eq!(mount_path("/processes", &l).as_deref(), Ok("/processes"));
        assert_eq!(mount_path("/var/proc", &l).as_deref(), Ok("/var/proc"));
        for bad in [
            "",
            "data",
            "./data",
            "/",
            "//",
            "/./",
            "/a/../../etc",
            "/a/..",
            "/proc",
            "/proc/x",
            "/sys/",
            "/dev/shm",
            "//dev",
            "/a\0b",
            "/a\nb",
        ] {
            assert!(mount_path(bad, &l).is_err(), "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(4096));
        assert!(mount_path(&long, &l).is_err());
    }

    #[test]
    fn texts() {
        let (out, errs) = check(|s| text(&json!(""), 1, 255, "t", s));
        assert_eq!(out, None);
        assert_eq!(errs, ["t: must be 1 to 255 characters long (got 0)"]);
        let (out, _) = check(|s| text(&json!("zoné"), 1, 4, "t", s));
        assert_eq!(out.as_deref(), Some("zoné"));
        let (out, errs) = check(|s| text(&json!("a\u{7}"), 1, 4, "t", s));
        assert_eq!(out, None);
        assert_eq!(errs, ["t: must not contain control characters"]);
        let mut sink = Sink::default();
        assert!(!check_free_text("a\0", 10, "f", &mut sink));
        assert!(!check_free_text("abc", 2, "f", &mut sink));
        assert!(check_free_text("a\nb", 10, "f", &mut sink));
        assert_eq!(sink.count(), 2);
        assert!(absolute_path("/w", &Limits::default(), "w", &mut sink));
        assert!(!absolute_path("w", &Limits::default(), "w", &mut sink));
    }
}
