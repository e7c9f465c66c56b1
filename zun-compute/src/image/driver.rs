//! The image part as the pod runtime sees it: make an image present, and prepare or release a
//! container's root filesystem on it.

use std::path::Path;

use async_trait::async_trait;

use super::{Image, ImageError, ImageStore, PullPolicy};

/// Images and container root filesystems on this host. Real: [`ImageStore`] (containerd);
/// fake: [`super::fake::FakeImages`].
#[async_trait]
pub trait ImageDriver: Send + Sync + std::fmt::Debug + 'static {
    /// Makes `reference` present and unpacked as `policy` says, and describes it.
    async fn ensure(&self, reference: &str, policy: PullPolicy) -> Result<Image, ImageError>;

    /// Prepares the rootfs `key` on `image` and mounts it on `target`, its writes going to
    /// `writable` (a directory of the capsule's writable layer) when given, else to the
    /// snapshot. Idempotent.
    async fn prepare_rootfs(
        &self,
        key: &str,
        image: &Image,
        target: &Path,
        writable: Option<&Path>,
    ) -> Result<(), ImageError>;

    /// Unmounts `target` and removes the rootfs `key`. Idempotent: what is gone is fine.
    async fn release_rootfs(&self, key: &str, target: &Path) -> Result<(), ImageError>;
}

#[async_trait]
impl ImageDriver for ImageStore {
    async fn ensure(&self, reference: &str, policy: PullPolicy) -> Result<Image, ImageError> {
        ImageStore::ensure(self, reference, policy).await
    }

    async fn prepare_rootfs(
        &self,
        key: &str,
        image: &Image,
        target: &Path,
        writable: Option<&Path>,
    ) -> Result<(), ImageError> {
        ImageStore::prepare_rootfs_on(self, key, image, target, writable).await
    }

    async fn release_rootfs(&self, key: &str, target: &Path) -> Result<(), ImageError> {
        ImageStore::release_rootfs(self, key, target).await
    }
}
