//! The host's volumes as the API asks for them (`CreateVolume`, `DeleteVolume`), over the
//! volume driver; and whether a capsule may still hold volumes (its create's record of them is
//! still in its directory).

use std::sync::Arc;

use capsule_types::rpc::VolumeHostState;
use capsule_types::volume::GIB;
use uuid::Uuid;

use super::{Manager, ManagerError};
use crate::chain::Chain;
use crate::runtime::pod::CapsuleDirs;
use crate::volume::{VolumeDriver, VolumeError};

/// The volumes member of the manager.
#[derive(Clone, Debug)]
pub struct Volumes {
    driver: Arc<dyn VolumeDriver>,
    capsules: CapsuleDirs,
}

impl Volumes {
    /// Volumes kept by `driver`, for the capsules in `capsules`.
    pub fn new(driver: Arc<dyn VolumeDriver>, capsules: CapsuleDirs) -> Self {
        Self { driver, capsules }
    }

    /// Makes volume `id` of `size_gib` on this host, not attached. Idempotent: a volume the
    /// host has is kept as it is, data and all.
    pub async fn create(&self, id: Uuid, size_gib: u64) -> Result<(), VolumeError> {
        self.driver.create(id, size_gib.saturating_mul(GIB)).await
    }

    /// Removes volume `id` and its data. Idempotent: a volume the host does not have is gone
    /// already. Refused while a capsule of this host has it attached.
    pub async fn delete(&self, id: Uuid) -> Result<(), VolumeError> {
        if self.driver.is_attached(id)? {
            return Err(VolumeError::Attached { id });
        }
        self.driver.delete(id).await
    }

    /// Whether the host may still hold volumes of `capsule` (mounted, or recorded for its
    /// teardown). False once a teardown of it finished.
    pub fn held_by(&self, capsule: Uuid) -> bool {
        self.capsules.volumes_record(capsule).exists()
    }
}

impl Manager {
    /// Makes a volume and reports it `available`, or `error` with why. A create for a volume
    /// this host deleted (a late or redelivered request) is not honoured: it is reported gone.
    pub(super) async fn create_volume(&self, id: Uuid, size_gib: u64) -> Result<(), ManagerError> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        if self.store.is_buried(id) {
            tracing::info!(volume = %id, "create for a deleted volume: reporting it gone");
            self.reporter
                .volume(id, VolumeHostState::Deleted, None)
                .await?;
            return Ok(());
        }
        let started = std::time::Instant::now();
        let (state, reason) = match self.volumes.create(id, size_gib).await {
            Ok(()) => {
                tracing::info!(volume = %id, size_gib, ms = started.elapsed().as_millis() as u64, "volume made");
                (VolumeHostState::Available, None)
            }
            Err(e) => {
                tracing::warn!(volume = %id, size_gib, error = %Chain(&e), "cannot make the volume");
                (VolumeHostState::Error, Some(Chain(&e).to_string()))
            }
        };
        self.reporter.volume(id, state, reason).await?;
        Ok(())
    }

    /// Removes a volume and reports it gone, or `error` with why.
    pub(super) async fn delete_volume(&self, id: Uuid) -> Result<(), ManagerError> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        let (state, reason) = match self.volumes.delete(id).await {
            Ok(()) => {
                // Its tombstone, so that a create delivered late does not make it again.
                self.store.bury(id)?;
                tracing::info!(volume = %id, "volume removed");
                (VolumeHostState::Deleted, None)
            }
            Err(e) => {
                tracing::warn!(volume = %id, error = %Chain(&e), "cannot remove the volume");
                (VolumeHostState::Error, Some(Chain(&e).to_string()))
            }
        };
        self.reporter.volume(id, state, reason).await?;
        Ok(())
    }
}
