//! The fake runtime's volumes: a volume is an empty marker file beside the fake runtime's
//! table (`fake-volume-<uuid>`), never attached; each create and delete that changes something
//! is journaled, so tests can prove no request was carried out twice.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use uuid::Uuid;

use super::{VolumeDriver, VolumeError};
use crate::runtime::fake::journal;

/// Marker-file volumes of a host without block devices.
#[derive(Clone, Debug)]
pub struct MarkerVolumes {
    dir: PathBuf,
    journal: PathBuf,
}

impl MarkerVolumes {
    /// Volumes as marker files in `dir`, journaled to `journal`.
    pub fn new(dir: &Path, journal: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            journal: journal.to_owned(),
        }
    }

    fn file(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("fake-volume-{id}"))
    }

    fn journal(&self, what: &str, id: Uuid) -> Result<(), VolumeError> {
        journal(&self.journal, what, id).map_err(|e| VolumeError::Io {
            id: Some(id),
            action: "journal",
            path: self.journal.clone(),
            source: std::io::Error::other(crate::chain::chain(&e)),
        })
    }
}

fn io<'a>(
    id: Uuid,
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> VolumeError + 'a {
    move |source| VolumeError::Io {
        id: Some(id),
        action,
        path: path.to_owned(),
        source,
    }
}

#[async_trait]
impl VolumeDriver for MarkerVolumes {
    async fn create(&self, id: Uuid, _size_bytes: u64) -> Result<(), VolumeError> {
        let path = self.file(id);
        if path.exists() {
            return Ok(());
        }
        self.journal("create_volume", id)?;
        std::fs::write(&path, b"").map_err(io(id, "write", &path))
    }

    async fn attach(&self, id: Uuid) -> Result<PathBuf, VolumeError> {
        let path = self.file(id);
        if path.exists() {
            Ok(self.dir.clone())
        } else {
            Err(VolumeError::NotFound { id, path })
        }
    }

    async fn detach(&self, _id: Uuid) -> Result<(), VolumeError> {
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> Result<(), VolumeError> {
        let path = self.file(id);
        match std::fs::remove_file(&path) {
            Ok(()) => self.journal("delete_volume", id),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(id, "remove", &path)(e)),
        }
    }

    fn list(&self) -> Result<Vec<Uuid>, VolumeError> {
        let mut out: Vec<Uuid> = std::fs::read_dir(&self.dir)
            .map_err(|source| VolumeError::Io {
                id: None,
                action: "list",
                path: self.dir.clone(),
                source,
            })?
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("fake-volume-"))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn is_attached(&self, _id: Uuid) -> Result<bool, VolumeError> {
        Ok(false)
    }

    fn capacity(&self) -> Result<(u64, u64), VolumeError> {
        Ok((0, 0))
    }
}
