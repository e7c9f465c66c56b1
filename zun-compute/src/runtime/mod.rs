//! Runtimes: what runs a capsule on this host, behind [`RuntimeDriver`], chosen from
//! `[runtime] driver` at start: [`pod::PodRuntime`] (real pods, orchestrating the host parts)
//! or [`fake::FakeRuntime`] (tracks capsules without running anything). The manager sees
//! capsules only through this trait; volumes and security groups are its own members.

pub mod fake;
pub mod pod;

use async_trait::async_trait;
use capsule_types::rpc::{CapsuleSpec, CapsuleState, ContainerRef, LogQuery, LogsReply};
use tokio::sync::broadcast;
use uuid::Uuid;

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
}
