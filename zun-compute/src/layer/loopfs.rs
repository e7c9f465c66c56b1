//! [`LoopLayers`]: writable layers as sparse ext4 files on loop devices.

use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use uuid::Uuid;

use super::LayerDriver;
use crate::volume::{LoopVolumes, VolumeConfig, VolumeDriver, VolumeError};

/// The real driver: a [`LoopVolumes`] of its own, whose volumes are the capsules' layers
/// (named by the capsule's uuid).
#[derive(Clone, Debug)]
pub struct LoopLayers(LoopVolumes);

impl LoopLayers {
    /// Layers under `<state_dir>/layers`, made and mounted with `tools`' binaries (its `dir`
    /// is not used).
    pub fn new(tools: &VolumeConfig, state_dir: &Path) -> Result<Self, VolumeError> {
        let cfg = VolumeConfig {
            dir: PathBuf::from("layers"),
            ..tools.clone()
        };
        Ok(Self(LoopVolumes::new(cfg, state_dir)?))
    }

    /// The directory of the layer files.
    pub fn dir(&self) -> &Path {
        self.0.dir()
    }

    /// The file of capsule `capsule`'s layer.
    pub fn file(&self, capsule: Uuid) -> PathBuf {
        self.0.file(capsule)
    }

    /// Where capsule `capsule`'s layer is mounted (when it is).
    pub fn mount_point(&self, capsule: Uuid) -> PathBuf {
        self.0.mount_point(capsule)
    }
}

#[async_trait]
impl LayerDriver for LoopLayers {
    async fn create(&self, capsule: Uuid, bytes: u64) -> Result<PathBuf, VolumeError> {
        let started = Instant::now();
        self.0.create(capsule, bytes).await?;
        let made = started.elapsed();
        let point = match self.0.attach(capsule).await {
            Ok(p) => p,
            Err(e) => {
                // Nothing of a layer is worth keeping: the next try makes it again.
                if let Err(rm) = self.0.delete(capsule).await {
                    tracing::warn!(%capsule, error = %crate::chain::Chain(&rm), "removing a layer that did not mount");
                }
                return Err(e);
            }
        };
        tracing::info!(%capsule, bytes, make_ms = made.as_millis() as u64, ms = started.elapsed().as_millis() as u64, "writable layer mounted");
        Ok(point)
    }

    async fn remove(&self, capsule: Uuid) -> Result<(), VolumeError> {
        self.0.delete(capsule).await
    }
}
