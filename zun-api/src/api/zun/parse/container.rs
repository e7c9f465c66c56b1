//! The queries of the container lifecycle routes and of `top` and `execute_resize`, as Zun's
//! schemas take them (`query_param_stop`, `query_param_signal`, `query_param_top`,
//! `query_param_execute_resize`; unknown parameters refused), with limits Zun lacks: a
//! timeout of at most an hour, `ps` arguments without shell metacharacters.

use capsule_types::rpc::ContainerAction;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::http::query::{last, pairs};

/// Longest stop timeout, seconds.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;
/// Longest `ps_args`.
const MAX_PS_ARGS: usize = 256;
/// Docker's (and so Zun's) signal when none is given: SIGKILL.
const DEFAULT_SIGNAL: i32 = 9;

/// Linux signals by name, as Python's `signal.Signals` lists them (Zun's `SIGNALS`).
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGIOT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPOLL", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
    ("SIGRTMIN", 34),
    ("SIGRTMAX", 64),
];

/// Refuses parameters other than `allowed`, with jsonschema's words as Zun answers them.
pub fn only(pairs: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    match pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(ApiError::invalid_value(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

fn invalid(key: &str, value: &str, why: &str) -> ApiError {
    ApiError::invalid_value(format!(
        "Invalid input for query parameters {key}. Value: {value}. {why}"
    ))
}

/// `timeout` of `stop` and `reboot`: whole seconds, 0 to an hour (absent: the host's default).
pub fn timeout(query: Option<&str>) -> Result<Option<u64>, ApiError> {
    let pairs = pairs(query);
    only(&pairs, &["timeout"])?;
    match last(&pairs, "timeout") {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= MAX_TIMEOUT_SECONDS && v.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(n))
            }
            _ => Err(invalid(
                "timeout",
                v,
                &format!("It must be a whole number of seconds from 0 to {MAX_TIMEOUT_SECONDS}."),
            )),
        },
    }
}

/// The signal a name or number (as Zun accepts them) stands for: `SIGTERM`, `TERM`,
/// `sigterm`, `term` or `15`; `None` (or `"None"`): SIGKILL, Docker's default.
pub fn signal_number(v: Option<&str>) -> Result<i32, ApiError> {
    let Some(v) = v.filter(|v| *v != "None") else {
        return Ok(DEFAULT_SIGNAL);
    };
    let named = SIGNALS.iter().find(|(name, _)| {
        let short = &name[3..];
        v == *name
            || v == short
            || v == name.to_ascii_lowercase()
            || v == short.to_ascii_lowercase()
    });
    if let Some((_, n)) = named {
        return Ok(*n);
    }
    match v.parse::<i32>() {
        Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) && SIGNALS.iter().any(|s| s.1 == n) => Ok(n),
        _ => Err(invalid(
            "signal",
            v,
            "It is not a signal: give a name such as SIGTERM, TERM or term, or its number.",
        )),
    }
}

/// `kill`'s signal, from the query or a JSON body (Zun validates both merged).
pub fn kill(query: Option<&str>, body: Option<&Value>) -> Result<ContainerAction, ApiError> {
    let mut pairs = pairs(query);
    match body {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "None".to_owned(),
                    other => other.to_string(),
                };
                pairs.push((k.clone(), v));
            }
        }
        Some(_) => return Err(ApiError::schema("The request body must be a JSON object.")),
    }
    only(&pairs, &["signal"])?;
    Ok(ContainerAction::Kill {
        signal: signal_number(last(&pairs, "signal"))?,
    })
}

/// `ps_args` of `top`: `ps` options (letters, digits, spaces, `,`, `+`, `-`); `None` or
/// `"None"` (what zunclient sends when none is given): the host's default.
pub fn ps_args(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let pairs = pairs(query);
    only(&pairs, &["ps_args"])?;
    let Some(v) = last(&pairs, "ps_args").filter(|v| *v != "None" && !v.trim().is_empty()) else {
        return Ok(None);
    };
    let ok = v.len() <= MAX_PS_ARGS
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || " ,+-".contains(c));
    if !ok {
        return Err(invalid(
            "ps_args",
            v,
            &format!(
                "ps arguments may hold only letters, digits, spaces, ',', '+' and '-', at most \
                 {MAX_PS_ARGS} characters."
            ),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// `execute_resize`'s `exec_id` (the session's id, as `execute` gave it), `w` and `h`.
pub fn exec_resize(query: Option<&str>) -> Result<(Uuid, u16, u16), ApiError> {
    let pairs = pairs(query);
    only(&pairs, &["exec_id", "w", "h"])?;
    let exec_id = last(&pairs, "exec_id").unwrap_or_default();
    let exec_id = Uuid::try_parse(exec_id).map_err(|_| {
        invalid(
            "exec_id",
            exec_id,
            "It is not the exec_id an interactive execute answered.",
        )
    })?;
    let size = |key: &str| {
        let v = last(&pairs, key).unwrap_or_default();
        match v.parse::<u16>() {
            Ok(n) if n > 0 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(invalid(
                key,
                v,
                "It must be a whole number from 1 to 65535.",
            )),
        }
    };
    Ok((exec_id, size("w")?, size("h")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(e: ApiError) -> String {
        assert!(matches!(e, ApiError::BadRequest { .. }), "{e:?}");
        e.to_string()
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout(None).unwrap(), None);
        assert_eq!(timeout(Some("timeout=10")).unwrap(), Some(10));
        assert_eq!(timeout(Some("timeout=0")).unwrap(), Some(0));
        for bad in [
            "timeout=-1",
            "timeout=1.5",
            "timeout=x",
            "timeout=",
            "timeout=3601",
        ] {
            let m = msg(timeout(Some(bad)).unwrap_err());
            assert!(m.contains("timeout"), "{bad}: {m}");
        }
        let m = msg(timeout(Some("timeout=1&force=1")).unwrap_err());
        assert_eq!(
            m,
            "Additional properties are not allowed ('force' was unexpected)"
        );
    }

    #[test]
    fn signals_as_zun_names_them() {
        for (v, n) in [
            ("SIGTERM", 15),
            ("TERM", 15),
            ("sigterm", 15),
            ("term", 15),
            ("15", 15),
            ("SIGRTMAX", 64),
            ("None", 9),
        ] {
            assert_eq!(signal_number(Some(v)).unwrap(), n, "{v}");
        }
        assert_eq!(signal_number(None).unwrap(), 9);
        for bad in ["Term", "SIGFOO", "0", "65", "32", "-9", "9 ", "15;ls"] {
            msg(signal_number(Some(bad)).unwrap_err());
        }
        let k = kill(Some("signal=SIGINT"), None).unwrap();
        assert_eq!(k, ContainerAction::Kill { signal: 2 });
        let k = kill(None, Some(&json!({"signal": "TERM"}))).unwrap();
        assert_eq!(k, ContainerAction::Kill { signal: 15 });
        msg(kill(None, Some(&json!({"sig": "TERM"}))).unwrap_err());
    }

    #[test]
    fn ps_args_are_words_only() {
        assert_eq!(ps_args(None).unwrap(), None);
        assert_eq!(ps_args(Some("ps_args=None")).unwrap(), None);
        assert_eq!(
            ps_args(Some("ps_args=aux")).unwrap().as_deref(),
            Some("aux")
        );
        assert_eq!(
            ps_args(Some("ps_args=-o%20pid,comm")).unwrap().as_deref(),
            Some("-o pid,comm")
        );
        for bad in ["aux;rm", "a|b", "$(id)", "`id`", "a>b", "a&b", "a\nb"] {
            let q = format!(
                "ps_args={}",
                form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>()
            );
            let m = msg(ps_args(Some(&q)).unwrap_err());
            assert!(m.contains("ps_args"), "{m}");
        }
    }

    #[test]
    fn resize() {
        let id = Uuid::new_v4();
        let (e, w, h) = exec_resize(Some(&format!("exec_id={id}&w=80&h=24"))).unwrap();
        assert_eq!((e, w, h), (id, 80, 24));
        for bad in [
            format!("exec_id={id}&w=0&h=24"),
            format!("exec_id={id}&w=80"),
            format!("exec_id={id}&w=80&h=70000"),
            "exec_id=abc&w=80&h=24".to_owned(),
        ] {
            msg(exec_resize(Some(&bad)).unwrap_err());
        }
    }
}
