//! The network module's error type: each variant (but `Config`) names the capsule, and carries
//! the namespace path or netavark's own error text and stderr where they apply.

use std::io;
use std::path::PathBuf;

use uuid::Uuid;

use super::Protocol;

/// Why a network operation failed. Every variant but `Config` names the capsule it was for.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// `[network]` is invalid.
    #[error("invalid network configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A requested host port is published by another capsule of this host.
    #[error(
        "host port {protocol}/{port} of capsule {capsule} is already published by capsule {holder}"
    )]
    PortClaimed {
        /// The capsule.
        capsule: Uuid,
        /// The port.
        port: u16,
        /// Its protocol.
        protocol: Protocol,
        /// The capsule publishing it.
        holder: Uuid,
    },
    /// A requested host port cannot be bound (something on the host listens on it, or the
    /// address is not the host's). netavark itself would not notice and would shadow it.
    #[error("host port {protocol}/{addr}:{port} of capsule {capsule} is not available")]
    PortUnavailable {
        /// The capsule.
        capsule: Uuid,
        /// The host address tried.
        addr: String,
        /// The port.
        port: u16,
        /// Its protocol.
        protocol: Protocol,
        /// Why the bind failed.
        #[source]
        source: io::Error,
    },
    /// Every address of the subnet is leased.
    #[error("no free address left in subnet {subnet} for capsule {capsule}")]
    SubnetExhausted {
        /// The capsule.
        capsule: Uuid,
        /// The subnet.
        subnet: String,
    },
    /// A file of this module (lease, lock, state file) could not be used.
    #[error("cannot {action} {} for capsule {capsule}", path.display())]
    Io {
        /// The capsule.
        capsule: Uuid,
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The capsule's state file is not what this module writes.
    #[error("invalid network state file {} of capsule {capsule}", path.display())]
    StateParse {
        /// The capsule.
        capsule: Uuid,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A namespace operation failed.
    #[error("cannot {action} network namespace {} of capsule {capsule}", netns.display())]
    Netns {
        /// The capsule.
        capsule: Uuid,
        /// What was being done.
        action: &'static str,
        /// The namespace file.
        netns: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// netavark could not be started or talked to.
    #[error("cannot run {} {command} for capsule {capsule}", binary.display())]
    NetavarkSpawn {
        /// The capsule.
        capsule: Uuid,
        /// The binary.
        binary: PathBuf,
        /// `setup` or `teardown`.
        command: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// netavark exited non-zero.
    #[error("netavark {command} of capsule {capsule} on {} failed ({}): {message}{}", netns.display(), exit_note(*code), stderr_note(stderr))]
    Netavark {
        /// The capsule.
        capsule: Uuid,
        /// `setup` or `teardown`.
        command: &'static str,
        /// The namespace file.
        netns: PathBuf,
        /// Its exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// Its JSON error message (else its stdout).
        message: String,
        /// Its stderr.
        stderr: String,
    },
    /// netavark setup succeeded but printed something unexpected.
    #[error("unexpected netavark setup output for capsule {capsule} ({reason}): {output}")]
    NetavarkOutput {
        /// The capsule.
        capsule: Uuid,
        /// What is wrong with it.
        reason: String,
        /// What it printed.
        output: String,
    },
    /// A teardown met errors; it carried on past each of them.
    #[error("network teardown of capsule {capsule} met {} error(s): {}", errors.len(), join_chains(errors))]
    Teardown {
        /// The capsule.
        capsule: Uuid,
        /// Each error, in the order met.
        errors: Vec<NetworkError>,
    },
}

fn exit_note(code: Option<i32>) -> String {
    code.map_or_else(|| "killed by a signal".into(), |c| format!("exit code {c}"))
}

fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {stderr})")
    }
}

/// Each error with its sources, `; `-separated.
fn join_chains(errors: &[NetworkError]) -> String {
    errors
        .iter()
        .map(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                s.push_str(": ");
                s.push_str(&c.to_string());
                src = c.source();
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}
