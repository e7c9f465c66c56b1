//! A recording fake of the image part: every image is "present" with a `sh` command, a rootfs
//! is a plain directory. For unit tests of the pod runtime.

use std::path::Path;

use async_trait::async_trait;

use super::{Image, ImageDriver, ImageError, PullPolicy, RunConfig};
use crate::recorder::Recorder;

/// The fake. Its calls are `image.ensure`, `image.prepare_rootfs`, `image.release_rootfs`.
#[derive(Clone, Debug, Default)]
pub struct FakeImages {
    calls: Recorder,
}

impl FakeImages {
    /// A fake recording into `calls`.
    pub fn new(calls: Recorder) -> Self {
        Self { calls }
    }
}

fn injected(reference: &str, reason: String) -> ImageError {
    ImageError::Invalid {
        reference: reference.to_owned(),
        reason,
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[async_trait]
impl ImageDriver for FakeImages {
    async fn ensure(&self, reference: &str, _policy: PullPolicy) -> Result<Image, ImageError> {
        self.calls
            .call("image.ensure", reference)
            .map_err(|r| injected(reference, r))?;
        Ok(Image {
            name: reference.to_owned(),
            manifest_digest: "sha256:fake".into(),
            chain_id: "sha256:fake".into(),
            config: RunConfig {
                cmd: vec!["sh".into()],
                image: reference.to_owned(),
                ..RunConfig::default()
            },
        })
    }

    async fn prepare_rootfs(
        &self,
        key: &str,
        image: &Image,
        target: &Path,
        writable: Option<&Path>,
    ) -> Result<(), ImageError> {
        self.calls
            .call("image.prepare_rootfs", key)
            .map_err(|r| injected(&image.name, r))?;
        if let Some(w) = writable {
            std::fs::create_dir_all(w).map_err(io("create", w))?;
        }
        std::fs::create_dir_all(target).map_err(io("create", target))
    }

    async fn release_rootfs(&self, key: &str, target: &Path) -> Result<(), ImageError> {
        self.calls
            .call("image.release_rootfs", key)
            .map_err(|r| injected(key, r))?;
        match std::fs::remove_dir_all(target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", target)(e)),
            _ => Ok(()),
        }
    }
}
