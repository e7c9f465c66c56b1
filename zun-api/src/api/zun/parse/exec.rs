//! `POST /v1/containers/{ident}/execute`: `run`, `interactive` and `command` as Zun's
//! `query_param_execute_command` takes them, from the query (what python-zunclient sends) or
//! a JSON body (pecan merges both). The command is one string of shell words, split as
//! docker-py's `split_command` splits it; zunclient wraps each word of its command line in
//! double quotes, so `zun exec C "cat /etc/hostname"` arrives as one word with a space, which
//! is split again (Docker would look for a program named `cat /etc/hostname`). Beside Zun's
//! parameters, `tty` (our extension, default: `interactive`): `tty=False` makes an
//! interactive session of plain pipes, as `capsule exec -i` without `-t` asks.

use serde_json::Value;

use super::container::only;
use crate::app::container::calls::ExecRequest;
use crate::error::ApiError;
use crate::http::query::{last, pairs};

/// Most arguments of a command.
pub const MAX_ARGS: usize = 4096;
/// Longest command string, bytes.
pub const MAX_COMMAND_BYTES: usize = 128 * 1024;

fn invalid(key: &str, why: &str) -> ApiError {
    ApiError::invalid_value(format!("Invalid input for query parameters {key}. {why}"))
}

/// Zun's `parameter_types.boolean` (`True`, `true`, `False`, `false`; JSON booleans in a body).
fn boolean(key: &str, v: Option<&str>, default: bool) -> Result<bool, ApiError> {
    match v {
        None => Ok(default),
        Some("True" | "true") => Ok(true),
        Some("False" | "false") => Ok(false),
        Some(other) => Err(invalid(
            key,
            &format!(
                "Value: {other}. Valid run or interactive values are: True, true, False, false"
            ),
        )),
    }
}

/// The words of `command`.
pub fn words(command: &str) -> Result<Vec<String>, ApiError> {
    if command.len() > MAX_COMMAND_BYTES {
        return Err(invalid(
            "command",
            &format!("The command is longer than {MAX_COMMAND_BYTES} bytes."),
        ));
    }
    let split = |s: &str| {
        shlex::split(s).ok_or_else(|| {
            invalid(
                "command",
                "The command has an unclosed quote or ends in a backslash.",
            )
        })
    };
    let mut words = split(command)?;
    if words.len() == 1 && words[0].contains(char::is_whitespace) {
        words = split(&words[0])?;
    }
    if words.first().is_none_or(|w| w.is_empty()) {
        return Err(invalid("command", "The command names no program to run."));
    }
    if words.len() > MAX_ARGS {
        return Err(invalid(
            "command",
            &format!(
                "The command has {} arguments; at most {MAX_ARGS} are allowed.",
                words.len()
            ),
        ));
    }
    if words.iter().any(|w| w.contains('\0')) {
        return Err(invalid("command", "The command holds a NUL character."));
    }
    Ok(words)
}

/// The exec the query and body ask for.
pub fn execute(query: Option<&str>, body: Option<&Value>) -> Result<ExecRequest, ApiError> {
    let mut pairs = pairs(query);
    match body {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(true) => "true".to_owned(),
                    Value::Bool(false) => "false".to_owned(),
                    _ => return Err(invalid(k, "It must be a string.")),
                };
                pairs.push((k.clone(), v));
            }
        }
        Some(_) => return Err(ApiError::schema("The request body must be a JSON object.")),
    }
    only(&pairs, &["run", "interactive", "command", "tty"])?;
    let Some(command) = last(&pairs, "command") else {
        return Err(invalid("command", "'command' is a required property"));
    };
    let interactive = boolean("interactive", last(&pairs, "interactive"), false)?;
    let tty = boolean("tty", last(&pairs, "tty"), interactive)?;
    if tty && !interactive {
        return Err(invalid("tty", "A terminal needs interactive=True."));
    }
    Ok(ExecRequest {
        command: words(command)?,
        run: boolean("run", last(&pairs, "run"), true)?,
        interactive,
        tty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(command: &str) -> String {
        let c: String = form_urlencoded::byte_serialize(command.as_bytes()).collect();
        format!("command={c}")
    }

    #[test]
    fn what_zunclient_sends() {
        // `zun exec C cat /etc/hostname`
        let r = execute(Some(&q(r#""cat" "/etc/hostname""#)), None).unwrap();
        assert_eq!(r.command, ["cat", "/etc/hostname"]);
        assert!(r.run && !r.interactive && !r.streamed());
        // `zun exec C "cat /etc/hostname"`
        let r = execute(Some(&q(r#""cat /etc/hostname""#)), None).unwrap();
        assert_eq!(r.command, ["cat", "/etc/hostname"]);
        // `zun exec --interactive C /bin/sh`
        let query = format!("{}&interactive=True&run=False", q(r#""/bin/sh""#));
        let r = execute(Some(&query), None).unwrap();
        assert_eq!(r.command, ["/bin/sh"]);
        assert!(r.interactive && r.tty && !r.run && r.streamed());
        // `capsule exec -i C -- cat`: plain pipes.
        let r = execute(Some(&format!("{query}&tty=False")), None).unwrap();
        assert!(r.interactive && !r.tty && r.streamed());
        // `zun exec C sh -c "echo a b"`: quoted words keep their spaces.
        let r = execute(Some(&q(r#""sh" "-c" "echo a b""#)), None).unwrap();
        assert_eq!(r.command, ["sh", "-c", "echo a b"]);
        // A body, as pecan merges it.
        let r = execute(
            None,
            Some(&json!({"command": "ls -l /", "interactive": true})),
        )
        .unwrap();
        assert_eq!(r.command, ["ls", "-l", "/"]);
        assert!(r.streamed());
    }

    #[test]
    fn refusals_name_the_problem() {
        let err = |query: &str| execute(Some(query), None).unwrap_err().to_string();
        assert!(err("").contains("'command' is a required property"));
        assert!(err(&q("")).contains("names no program"));
        assert!(err(&q("   ")).contains("names no program"));
        assert!(err(&q("\"\"")).contains("names no program"));
        assert!(err(&q("echo 'open")).contains("unclosed quote"));
        let many = vec!["a"; MAX_ARGS + 1].join(" ");
        assert!(err(&q(&many)).contains("at most 4096"));
        let long = "a".repeat(MAX_COMMAND_BYTES + 1);
        assert!(err(&q(&long)).contains("longer than"));
        assert!(err(&format!("{}&run=1", q("ls"))).contains("Valid run or interactive"));
        assert!(err(&format!("{}&tty=true", q("ls"))).contains("needs interactive=True"));
        assert!(err(&format!("{}&tty=maybe", q("ls"))).contains("Value: maybe"));
        assert!(err(&format!("{}&pty=true", q("ls"))).contains("'pty' was unexpected"));
        let max = vec!["a"; MAX_ARGS].join(" ");
        assert_eq!(words(&max).unwrap().len(), MAX_ARGS);
    }
}
