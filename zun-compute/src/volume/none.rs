//! The volume driver of a host that keeps no volumes (`[volume] driver = "none"`): every
//! request is refused with the same words, which a capsule's `status_reason` and a volume's
//! error report carry.

use std::path::PathBuf;

use async_trait::async_trait;
use uuid::Uuid;

use super::{VolumeDriver, VolumeError};

/// Refuses every volume.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoVolumes;

#[async_trait]
impl VolumeDriver for NoVolumes {
    fn available(&self) -> Result<(), VolumeError> {
        Err(VolumeError::NotConfigured)
    }

    async fn create(&self, _id: Uuid, _size_bytes: u64) -> Result<(), VolumeError> {
        Err(VolumeError::NotConfigured)
    }

    async fn attach(&self, _id: Uuid) -> Result<PathBuf, VolumeError> {
        Err(VolumeError::NotConfigured)
    }

    async fn detach(&self, _id: Uuid) -> Result<(), VolumeError> {
        Err(VolumeError::NotConfigured)
    }

    async fn delete(&self, _id: Uuid) -> Result<(), VolumeError> {
        Err(VolumeError::NotConfigured)
    }

    fn list(&self) -> Result<Vec<Uuid>, VolumeError> {
        Ok(Vec::new())
    }

    fn is_attached(&self, _id: Uuid) -> Result<bool, VolumeError> {
        Err(VolumeError::NotConfigured)
    }

    fn capacity(&self) -> Result<(u64, u64), VolumeError> {
        Ok((0, 0))
    }
}
