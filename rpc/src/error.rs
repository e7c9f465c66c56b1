//! Errors of the RPC transport.

/// What went wrong sending or receiving.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The broker could not be reached within the caller's patience.
    #[error("message broker unavailable (gave up after {waited_ms} ms)")]
    Unavailable {
        /// How long we tried.
        waited_ms: u128,
        /// The last error seen.
        #[source]
        last: Option<lapin::Error>,
    },
    /// The broker refused the message (negative confirm or unroutable).
    #[error("message broker refused the message for {routing_key}")]
    Refused {
        /// Where it was going.
        routing_key: String,
    },
    /// No reply came in time.
    #[error("no reply from {routing_key} within {timeout_ms} ms")]
    Timeout {
        /// Where the request went.
        routing_key: String,
        /// The timeout.
        timeout_ms: u128,
    },
    /// A message could not be encoded or decoded.
    #[error("malformed message")]
    Codec(#[from] serde_json::Error),
    /// A message of an RPC version this side does not speak.
    #[error("message of RPC version {got}; this side speaks up to {ours}")]
    Version {
        /// Version in the message.
        got: u32,
        /// Ours.
        ours: u32,
    },
}
