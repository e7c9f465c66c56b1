//! Runtimes: what runs a capsule on this host, behind [`RuntimeDriver`], chosen from
//! `[runtime] driver` at start: [`pod::PodRuntime`] (real pods, orchestrating the host parts)
//! or [`fake::FakeRuntime`] (tracks capsules without running anything). The manager sees
//! capsules only through this trait; volumes and security groups are its own members.

mod exec;
pub mod fake;
pub mod pod;
mod usage;

use std::time::Duration;

use async_trait::async_trait;
use capsule_types::rpc::{
    CapsuleSpec, CapsuleState, ContainerCall, ContainerEventKind, ContainerRef, ContainerReply,
    LogQuery, LogsReply,
};
use capsule_types::template::ProbeAction;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use uuid::Uuid;

pub use exec::{ExecOutcome, ExecProcess, Terminal};
pub use usage::{CapsuleUsage, ContainerUsage};

/// A lifecycle action on containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// The stop signal, SIGKILL after `grace` (`None`: the capsule's
    /// `terminationGracePeriodSeconds`, else the runtime's default); stays stopped.
    Stop {
        /// The grace period.
        grace: Option<Duration>,
    },
    /// Start a stopped container.
    Start,
    /// Stop, then start.
    Restart {
        /// As in `Stop`.
        grace: Option<Duration>,
    },
    /// Send a signal to the main process.
    Kill {
        /// The signal number.
        signal: i32,
    },
    /// SIGKILL as a failure (its liveness probe failed): its restart policy applies.
    Fail,
    /// Freeze.
    Pause,
    /// Thaw.
    Unpause,
}

/// What an action did to one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActOutcome {
    /// The container.
    pub container: Uuid,
    /// Why it failed, for users (`None`: done).
    pub error: Option<String>,
}

/// Something a container did by itself (exited, was restarted...), numbered by the runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeEvent {
    /// Its number, growing in the life of the capsule's runtime.
    pub seq: u64,
    /// The container.
    pub container: Uuid,
    /// What happened.
    pub kind: ContainerEventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The exit code, for an exit.
    pub exit_code: Option<i32>,
}

/// Why a runtime could not do what it was asked; shown with its causes, it is the capsule's
/// `status_reason`.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A pod create failed at one of its steps (what was done is undone).
    #[error(transparent)]
    Create(#[from] pod::CreateFailed),
    /// A pod teardown left something behind.
    #[error(transparent)]
    Teardown(#[from] pod::TeardownError),
    /// The fake runtime's files failed.
    #[error(transparent)]
    Fake(#[from] fake::FakeError),
    /// The capsule's shim could not be asked.
    #[error(transparent)]
    Shim(#[from] crate::shim::ShimError),
}

/// Runs capsules.
#[async_trait]
pub trait RuntimeDriver: Send + Sync + std::fmt::Debug + 'static {
    /// Builds and starts the capsule and returns its state once its containers run (or it
    /// failed). On failure it undoes whatever it did. Called again for a capsule whose earlier
    /// create was interrupted (after a delete of it): it must cope with leftovers.
    async fn create(&self, spec: &CapsuleSpec) -> Result<CapsuleState, RuntimeError>;

    /// Tears the capsule down. Idempotent: a capsule it does not know is already gone.
    async fn delete(&self, capsule: Uuid) -> Result<(), RuntimeError>;

    /// The capsule's current state as the runtime sees it; `None` if it has nothing of it.
    async fn inspect(&self, spec: &CapsuleSpec) -> Result<Option<CapsuleState>, RuntimeError>;

    /// Container `container`'s logs in capsule `capsule`, as `query` asks.
    async fn logs(&self, capsule: Uuid, container: &ContainerRef, query: &LogQuery) -> LogsReply;

    /// Capsules whose state changed by themselves (a container exited, was restarted, was
    /// OOM-killed): the manager inspects and reports each one it hears of. A receiver that
    /// lags just misses names; the reconcile timer catches up with them.
    fn changes(&self) -> broadcast::Receiver<Uuid>;

    /// Does `act` to `containers` (application containers of `spec`'s capsule); one outcome
    /// per container, once done. Idempotent: what is already so is a success.
    async fn act(
        &self,
        spec: &CapsuleSpec,
        containers: &[ContainerRef],
        act: Act,
    ) -> Result<Vec<ActOutcome>, RuntimeError>;

    /// What the capsule's containers did by themselves since event `after`.
    async fn events(
        &self,
        spec: &CapsuleSpec,
        after: u64,
    ) -> Result<Vec<RuntimeEvent>, RuntimeError>;

    /// Starts `command` in `container` as the container runs (see [`ExecProcess`]); with
    /// `tty` on a terminal, else with stdout and stderr together and, if `stdin`, an input.
    async fn exec(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        command: Vec<String>,
        tty: bool,
        stdin: bool,
    ) -> Result<ExecOutcome, RuntimeError>;

    /// Answers `call` (top, stats, archives; not exec, which is [`RuntimeDriver::exec`]) about
    /// `container`, whose state the caller checked.
    async fn call(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        call: &ContainerCall,
    ) -> ContainerReply;

    /// What every capsule this host runs uses now (for the metrics); a runtime that runs
    /// nothing has nothing to say.
    async fn usage(&self) -> Vec<CapsuleUsage> {
        Vec::new()
    }

    /// Runs health probe `action` against `container` (an exec in it; a connection or an
    /// HTTP `GET` in its capsule's network namespace), for at most `timeout`: healthy, or why
    /// not. A runtime that runs nothing finds nothing unhealthy.
    async fn probe(
        &self,
        _spec: &CapsuleSpec,
        _container: &ContainerRef,
        _action: &ProbeAction,
        _timeout: Duration,
    ) -> Result<(), String> {
        Ok(())
    }
}
