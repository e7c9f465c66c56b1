//! A recording fake of the layers: a layer is a directory under a scratch root. For unit tests
//! of the pod runtime.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use uuid::Uuid;

use super::LayerDriver;
use crate::recorder::Recorder;
use crate::volume::VolumeError;

/// The fake. Its calls are `layer.create`, `layer.remove`.
#[derive(Debug)]
pub struct FakeLayers {
    calls: Recorder,
    root: PathBuf,
}

impl FakeLayers {
    /// A fake recording into `calls`, whose layers are directories under `root`.
    pub fn new(calls: Recorder, root: &Path) -> Self {
        Self {
            calls,
            root: root.to_owned(),
        }
    }

    /// The capsules that have a layer now.
    pub fn list(&self) -> Vec<Uuid> {
        std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect()
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        id: None,
        action: "make",
        path: path.to_owned(),
        source,
    }
}

#[async_trait]
impl LayerDriver for FakeLayers {
    async fn create(&self, capsule: Uuid, _bytes: u64) -> Result<PathBuf, VolumeError> {
        self.call("layer.create", capsule)?;
        let point = self.root.join(capsule.to_string());
        std::fs::create_dir_all(&point).map_err(io(&point))?;
        Ok(point)
    }

    async fn remove(&self, capsule: Uuid) -> Result<(), VolumeError> {
        self.call("layer.remove", capsule)?;
        let point = self.root.join(capsule.to_string());
        match std::fs::remove_dir_all(&point) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&point)(e)),
            _ => Ok(()),
        }
    }
}
