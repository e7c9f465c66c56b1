//! The shim's protocol on `shim.sock`: newline-delimited JSON, one request per line; answers are
//! [`super::Status`]es, a [`ShutdownReply`], an [`ActReply`], an [`EventsReply`], an
//! [`ExecReply`] then an [`ExecExit`], or an [`ErrorReply`] for a line that is not a request.

use capsule_types::rpc::ContainerEventKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    /// Do `action` to app container `container` (every app container when `None`); answer
    /// one [`ActReply`] once it is done (a stop: once the container exited).
    Act {
        /// The container's name in the plan.
        #[serde(default)]
        container: Option<String>,
        /// What to do.
        action: Action,
    },
    /// Answer the [`EventsReply`] of the events numbered above `after`.
    Events {
        /// The last event the asker has.
        #[serde(default)]
        after: u64,
    },
    /// Run `args` in container `container` (its namespaces, cgroup, user, environment, working
    /// directory, capabilities, seccomp profile). The first request of its connection, and its
    /// last: the shim answers an [`ExecReply`] carrying the process's descriptors
    /// (`SCM_RIGHTS`), then an [`ExecExit`] when it exits. Closing the connection first kills
    /// the process and everything it started.
    Exec {
        /// The container's name in the plan.
        container: String,
        /// The command and its arguments.
        args: Vec<String>,
        /// With a terminal: one descriptor, the terminal's master side.
        #[serde(default)]
        tty: bool,
        /// Without a terminal: whether the process gets a stdin pipe (else `/dev/null`); the
        /// descriptors are then the output (stdout and stderr together) and, if asked, stdin.
        #[serde(default)]
        stdin: bool,
    },
}

/// A lifecycle action on app containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "lowercase")]
pub enum Action {
    /// The container's stop signal, SIGKILL after `grace_ms`; it stays stopped (no restart by
    /// policy) until started.
    Stop {
        /// The grace period.
        grace_ms: u64,
    },
    /// Start a stopped or exited container.
    Start,
    /// Stop as `Stop`, then start.
    Restart {
        /// The grace period.
        grace_ms: u64,
    },
    /// Send `signal` to the container's main process.
    Kill {
        /// The signal number.
        signal: i32,
    },
    /// SIGKILL the container as a failure (its liveness probe failed): unlike a user's kill,
    /// its restart policy applies.
    Fail,
    /// Freeze the container's processes.
    Pause,
    /// Thaw them.
    Unpause,
}

/// The answer to an [`Request::Act`]: one result per container acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActReply {
    /// Per container.
    pub results: Vec<ActResult>,
}

/// What an action did to one container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActResult {
    /// The container's name in the plan.
    pub name: String,
    /// Why it failed, for users; `None`: done (or nothing was left to do).
    #[serde(default)]
    pub error: Option<String>,
    /// Whether the action failed because of the container's state (not running, paused...).
    #[serde(default)]
    pub conflict: bool,
}

/// Something the runtime did by itself, numbered in the shim's life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimEvent {
    /// Its number: 1, 2, ... in the life of the shim.
    pub seq: u64,
    /// The container's id in the API.
    pub container: Uuid,
    /// What happened (`created`, `started`, `exited`, `oom_killed`, `restarted`).
    pub kind: ContainerEventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The exit code, for an exit.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// The answer to [`Request::Events`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsReply {
    /// The events after the asked number, oldest first (the shim keeps the last few hundred).
    pub events: Vec<ShimEvent>,
}

/// The first answer to [`Request::Exec`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "exec", rename_all = "lowercase")]
pub enum ExecReply {
    /// Started; its descriptors ride with this line.
    Started {
        /// Its pid (host namespace).
        pid: i32,
    },
    /// Not started.
    Refused {
        /// Why, for users.
        message: String,
        /// Because of the container's state (not running).
        #[serde(default)]
        conflict: bool,
    },
}

/// The last answer to [`Request::Exec`]: the process exited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecExit {
    /// Its exit code (128 + n for a death by signal n).
    pub exited: i32,
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
        assert_eq!(
            serde_json::from_str::<Request>(
                r#"{"op":"act","container":"a","action":{"do":"stop","grace_ms":5}}"#
            )
            .unwrap(),
            Request::Act {
                container: Some("a".into()),
                action: Action::Stop { grace_ms: 5 }
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"exec","container":"a","args":["id"]}"#)
                .unwrap(),
            Request::Exec {
                container: "a".into(),
                args: vec!["id".into()],
                tty: false,
                stdin: false
            }
        );
    }
}
