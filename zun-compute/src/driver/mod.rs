//! Runtime drivers: what actually runs a capsule on this host. Chosen from the configuration at
//! start; the control logic (manager, reconcile) only sees the trait.

pub mod fake;
pub mod pod;
pub mod secgroups;

use std::future::Future;

use capsule_types::rpc::{CapsuleSpec, CapsuleState, ContainerRef, LogQuery, LogsReply};
use capsule_types::secgroup::HostFirewall;
use tokio::sync::broadcast;
use uuid::Uuid;

/// A runtime failure, in words a user can act on (it becomes the capsule's `status_reason`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

/// Runs capsules.
pub trait RuntimeDriver: Send + Sync + 'static {
    /// Builds and starts the capsule and returns its state once its containers run (or it
    /// failed). On failure it undoes whatever it did. Called again for a capsule whose earlier
    /// create was interrupted: it must cope with leftovers of that attempt.
    fn create(
        &self,
        spec: &CapsuleSpec,
    ) -> impl Future<Output = Result<CapsuleState, DriverError>> + Send;

    /// Tears the capsule down. Idempotent: a capsule it does not know is already gone.
    fn delete(&self, capsule: Uuid) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// The capsule's current state as the runtime sees it; `None` if the runtime has nothing
    /// of it.
    fn inspect(
        &self,
        spec: &CapsuleSpec,
    ) -> impl Future<Output = Result<Option<CapsuleState>, DriverError>> + Send;

    /// Container `container`'s logs in capsule `capsule`, as `query` asks.
    fn logs(
        &self,
        capsule: Uuid,
        container: &ContainerRef,
        query: &LogQuery,
    ) -> impl Future<Output = LogsReply> + Send;

    /// Capsules whose state changed by themselves (a container exited, was restarted, was
    /// OOM-killed): the manager inspects and reports each one it hears of. A receiver that
    /// lags just misses names; the reconcile timer catches up with them.
    fn changes(&self) -> broadcast::Receiver<Uuid>;

    /// Enforces `firewall` (the API's whole security-group document for this host) from now
    /// on, unless a newer one is in force already. Idempotent.
    fn set_firewall(
        &self,
        firewall: HostFirewall,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// The epoch of the newest firewall the API sent since the agent started.
    fn firewall_epoch(&self) -> Option<u64>;

    /// Makes volume `id` of `size_gib` on this host, not attached. Idempotent: a volume the
    /// host has is kept as it is, data and all.
    fn create_volume(
        &self,
        id: Uuid,
        size_gib: u64,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Whether the host may still hold volumes of `capsule` (mounted, or recorded for its
    /// teardown). False once a teardown of it finished.
    fn holds_volumes(&self, capsule: Uuid) -> bool;

    /// Removes volume `id` and its data. Idempotent: a volume the host does not have is gone
    /// already. Refused while a capsule of this host has it attached.
    fn delete_volume(&self, id: Uuid) -> impl Future<Output = Result<(), DriverError>> + Send;
}
