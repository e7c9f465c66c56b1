//! Each capsule's writable layer: a file system of its own, of `[limits] writable_layer_mib`,
//! that holds its containers' overlay upper and work directories (instead of containerd's
//! snapshot directories on the host's disk), so that a container that writes too much gets
//! `ENOSPC` inside its capsule and nowhere else.
//!
//! This kernel has no ext4/XFS project quotas and no device-mapper (see docs/runtime.md), so a
//! layer is what a volume is: a sparse file formatted ext4, mounted through a loop device.
//! [`LoopLayers`] is the real driver (built on [`crate::volume::LoopVolumes`], over its own
//! directory `<state_dir>/layers`: `<uuid>.img` mounted at `mnt/<uuid>`), [`fake::FakeLayers`]
//! a recording fake for the pod runtime's unit tests. Both directions are idempotent and work
//! from what is on the host, so a teardown after an agent restart finds everything.

pub mod fake;
mod loopfs;

use std::path::PathBuf;

use async_trait::async_trait;
use uuid::Uuid;

pub use loopfs::LoopLayers;

use crate::volume::VolumeError;

/// The capsules' writable layers on this host.
#[async_trait]
pub trait LayerDriver: Send + Sync + std::fmt::Debug + 'static {
    /// Makes (if needed) and mounts capsule `capsule`'s layer of `bytes`; returns its mount
    /// point, under which each container gets a directory. Idempotent.
    async fn create(&self, capsule: Uuid, bytes: u64) -> Result<PathBuf, VolumeError>;

    /// Unmounts and removes capsule `capsule`'s layer, its loop device and its file.
    /// Idempotent: a capsule without one is fine. A layer still in use is
    /// [`VolumeError::Busy`] (it stays).
    async fn remove(&self, capsule: Uuid) -> Result<(), VolumeError>;
}
