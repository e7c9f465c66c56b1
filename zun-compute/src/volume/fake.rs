//! A recording fake volume driver: volumes are entries of a table in memory, attaching one
//! gives a directory under a scratch root. For unit tests of the pod runtime and the manager.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use super::{VolumeDriver, VolumeError};
use crate::recorder::Recorder;

/// The fake. Its calls are `volume.create`, `volume.attach`, `volume.detach`,
/// `volume.delete`.
#[derive(Debug)]
pub struct FakeVolumes {
    calls: Recorder,
    root: PathBuf,
    /// Volume -> attached.
    table: Mutex<BTreeMap<Uuid, bool>>,
}

impl FakeVolumes {
    /// A fake recording into `calls`, whose mount points are directories under `root`.
    pub fn new(calls: Recorder, root: &Path) -> Self {
        Self {
            calls,
            root: root.to_owned(),
            table: Mutex::default(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<Uuid, bool>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, name: &'static str, id: Uuid) -> Result<(), VolumeError> {
        self.calls
            .call(name, id)
            .map_err(|reason| VolumeError::Config {
                path: self.root.clone(),
                reason,
            })
    }
}

#[async_trait]
impl VolumeDriver for FakeVolumes {
    async fn create(&self, id: Uuid, _size_bytes: u64) -> Result<(), VolumeError> {
        self.call("volume.create", id)?;
        self.table().entry(id).or_insert(false);
        Ok(())
    }

    async fn attach(&self, id: Uuid) -> Result<PathBuf, VolumeError> {
        self.call("volume.attach", id)?;
        let point = self.root.join(id.to_string());
        match self.table().get_mut(&id) {
            Some(attached) => *attached = true,
            None => return Err(VolumeError::NotFound { id, path: point }),
        }
        Ok(point)
    }

    async fn detach(&self, id: Uuid) -> Result<(), VolumeError> {
        self.call("volume.detach", id)?;
        if let Some(attached) = self.table().get_mut(&id) {
            *attached = false;
        }
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> Result<(), VolumeError> {
        self.call("volume.delete", id)?;
        self.table().remove(&id);
        Ok(())
    }

    fn list(&self) -> Result<Vec<Uuid>, VolumeError> {
        Ok(self.table().keys().copied().collect())
    }

    fn is_attached(&self, id: Uuid) -> Result<bool, VolumeError> {
        Ok(self.table().get(&id).copied().unwrap_or(false))
    }

    fn capacity(&self) -> Result<(u64, u64), VolumeError> {
        Ok((u64::MAX, u64::MAX))
    }
}
