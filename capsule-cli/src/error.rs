//! What can go wrong, in words a user can act on, and the exit code of each.
//!
//! Exit codes: 0 success; 1 the cloud refused or failed (API error, authentication, a capsule
//! that ended in Error under `--wait`, network); 2 the command line or the template is wrong
//! (nothing was sent).

/// An error of the `capsule` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad command line or arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The template is invalid; nothing was sent (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// No usable credentials, or Keystone refused them (exit 1).
    #[error("{0}")]
    Auth(String),
    /// The API answered with an error (exit 1).
    #[error("{message} (HTTP {status}{})", request_id.as_deref().map(|r| format!(", request {r}")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// The API's message.
        message: String,
        /// `x-openstack-request-id`, if any.
        request_id: Option<String>,
    },
    /// Anything else: I/O, network, a capsule that failed while waited for (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Invalid(_) => 2,
            _ => 1,
        }
    }
}
