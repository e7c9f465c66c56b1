//! The firewall module's error type: each variant names the nftables table it was for, and a
//! failed run carries the command line, the exit status and nft's stderr.

use std::io;

use crate::notes::{exit_note, stderr_note};

/// Why a firewall operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// `[firewall]`, or the subnet and gateway given with it, are invalid.
    #[error("invalid firewall configuration for table inet {table}: {reason}")]
    Config {
        /// The table configured.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// nft (or nsenter) could not be started or talked to.
    #[error("cannot run `{command}` to {action} table inet {table}")]
    Spawn {
        /// The table.
        table: String,
        /// `apply` or `remove`.
        action: &'static str,
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// nft exited non-zero: the script was refused (nothing of it was applied) or the
    /// namespace could not be entered.
    #[error("`{command}` failed to {action} table inet {table} ({}){}", exit_note(*code), stderr_note(stderr))]
    Nft {
        /// The table.
        table: String,
        /// `apply` or `remove`.
        action: &'static str,
        /// The command line.
        command: String,
        /// Its exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// Its stderr, trimmed (nft names the offending line of the script).
        stderr: String,
    },
}
