//! The shim's protocol on `shim.sock`: newline-delimited JSON, one request per line; answers are
//! [`super::Status`]es, a [`ShutdownReply`], or an [`ErrorReply`] for a line that is not a
//! request.

use serde::{Deserialize, Serialize};

/// A request on `shim.sock`, one JSON object per line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Answer one [`super::Status`].
    Status,
    /// Answer a [`super::Status`] now and after every change, until the client goes.
    Watch,
    /// Stop everything (SIGTERM, SIGKILL after `grace_ms`), clean up, answer
    /// `{"ok":true}` and exit.
    Shutdown {
        /// How long containers get between SIGTERM and SIGKILL (default 10 s).
        #[serde(default)]
        grace_ms: Option<u64>,
    },
}

/// The answer to a shutdown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownReply {
    /// Whether everything was removed.
    pub ok: bool,
    /// What could not be, if anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The answer to a request the shim does not understand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What was wrong.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"status"}"#).unwrap(),
            Request::Status
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"shutdown","grace_ms":250}"#).unwrap(),
            Request::Shutdown {
                grace_ms: Some(250)
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"shutdown"}"#).unwrap(),
            Request::Shutdown { grace_ms: None }
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
    }
}
