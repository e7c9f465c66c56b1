//! How error messages word a failed command: its exit status, and its standard error.

/// `exit code N`, or `killed by a signal`.
pub(crate) fn exit_note(code: Option<i32>) -> String {
    code.map_or_else(|| "killed by a signal".into(), |c| format!("exit code {c}"))
}

/// `: <stderr>`, or nothing when it said nothing.
pub(crate) fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}
