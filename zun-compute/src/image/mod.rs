//! Images: resolves, pulls, stores and unpacks images through containerd, and mounts a
//! container's rootfs (see docs/runtime.md).
//!
//! Blobs live in containerd's content store, each image as a record of its images service
//! (named by its normalized reference) whose manifest carries containerd's GC labels, and each
//! layer chain as committed snapshots named by chain id. A container's rootfs is an active
//! snapshot on the image's top chain id, mounted by the agent. Registries are reached with
//! `oci-client` through the hosts `hosts.toml` files name (mirrors first).
//!
//! The pod runtime sees this part through [`ImageDriver`]: [`ImageStore`] is the real driver,
//! [`fake::FakeImages`] a recording fake.

mod archive;
mod ctd;
mod driver;
mod error;
pub mod fake;
mod hosts;
mod mount;
mod oci;
mod pull;
mod reference;
mod types;
mod unpack;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use tracing::Instrument;

pub use driver::ImageDriver;
pub use error::{AttemptFailure, ImageError, PullAttempt};
pub use reference::{normalize, ImageRef};
pub use types::{signal_number, Image, ImageConfig, PullPolicy, RunConfig};

use ctd::Ctd;
use oci::{ConfigFile, Descriptor, Kind, Manifest};

/// The images of this host, in containerd. Cheap to clone.
#[derive(Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    cfg: ImageConfig,
    ctd: Ctd,
    /// One lock per image name: ensures of the same image run one at a time.
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Registry clients per host (they cache tokens).
    clients: Mutex<HashMap<String, oci_client::Client>>,
}

/// An image as recorded in containerd: everything needed to unpack it and to describe it.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The record's name.
    pub name: String,
    /// The record's target (an index or a manifest).
    pub target: Descriptor,
    /// The platform manifest's digest.
    pub manifest_digest: String,
    /// The platform manifest.
    pub manifest: Manifest,
    /// The config.
    pub config: ConfigFile,
}

impl Resolved {
    fn chain_ids(&self) -> Vec<String> {
        oci::chain_ids(&self.config.rootfs.diff_ids)
    }

    fn image(&self) -> Image {
        Image {
            name: self.name.clone(),
            manifest_digest: self.manifest_digest.clone(),
            chain_id: self.chain_ids().pop().unwrap_or_default(),
            config: self.config.run_config(&self.name),
        }
    }

    /// Checks that the manifest and config agree and describe a linux image with layers.
    fn check(&self) -> Result<(), ImageError> {
        let invalid = |reason: String| ImageError::Invalid {
            reference: self.name.clone(),
            reason,
        };
        let (layers, diffs) = (
            self.manifest.layers.len(),
            self.config.rootfs.diff_ids.len(),
        );
        if layers == 0 {
            return Err(invalid("it has no layers".into()));
        }
        if layers != diffs {
            return Err(invalid(format!(
                "its manifest has {layers} layers but its config {diffs} diff ids"
            )));
        }
        if !self.config.os.is_empty() && self.config.os != "linux" {
            return Err(invalid(format!("it is a {} image", self.config.os)));
        }
        let arch = &self.config.architecture;
        if !arch.is_empty() && arch != oci::host_arch() {
            tracing::warn!(image = %self.name, arch = %arch, "image built for another architecture");
        }
        Ok(())
    }
}

impl ImageStore {
    /// Connects to containerd at `cfg.containerd_socket`.
    pub async fn connect(cfg: &ImageConfig) -> Result<Self, ImageError> {
        let channel = containerd_client::connect(&cfg.containerd_socket)
            .await
            .map_err(|source| ImageError::Connect {
                socket: cfg.containerd_socket.clone(),
                source,
            })?;
        let ctd = Ctd::new(channel, &cfg.namespace, &cfg.snapshotter)?;
        Ok(Self {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                ctd,
                locks: Mutex::default(),
                clients: Mutex::default(),
            }),
        })
    }

    /// The configuration it was connected with.
    pub fn config(&self) -> &ImageConfig {
        &self.inner.cfg
    }

    async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.inner.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, w| w.strong_count() > 0);
            match locks.get(name).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(name.to_owned(), Arc::downgrade(&m));
                    m
                }
            }
        };
        m.lock_owned().await
    }

    /// Makes `reference` present and unpacked as `policy` says: `Always` pulls; `IfNotPresent`
    /// pulls unless the host has it; `Never` fails unless the host has it. Concurrent ensures
    /// of one image wait for each other.
    pub async fn ensure(&self, reference: &str, policy: PullPolicy) -> Result<Image, ImageError> {
        let r = ImageRef::parse(reference)?;
        let name = r.name();
        let span = tracing::info_span!("image_ensure", image = %name, policy = %policy);
        async {
            let _guard = self.lock(&name).await;
            if policy == PullPolicy::Always {
                return pull::pull(&self.inner, &r).await;
            }
            match self.local(&name).await? {
                Some(res) => {
                    unpack::unpack(&self.inner.ctd, &res).await?;
                    Ok(res.image())
                }
                None if policy == PullPolicy::Never => Err(ImageError::NotPresent {
                    reference: name.clone(),
                }),
                None => pull::pull(&self.inner, &r).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Pulls `reference` from its registry (even if the host has it) and unpacks it.
    pub async fn pull(&self, reference: &str) -> Result<Image, ImageError> {
        let r = ImageRef::parse(reference)?;
        let name = r.name();
        let _guard = self.lock(&name).await;
        pull::pull(&self.inner, &r).await
    }

    /// The image `reference` if this host has it (never contacts a registry). It may not be
    /// unpacked yet (e.g. if its snapshots were removed); [`ImageStore::ensure`] unpacks.
    pub async fn get(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let name = ImageRef::parse(reference)?.name();
        Ok(self.local(&name).await?.map(|r| r.image()))
    }

    /// Imports the images of `archive`, an OCI layout tar or a `docker save` tar (gzipped or
    /// not), and unpacks them. Returns the images it names.
    pub async fn import(&self, archive: &Path) -> Result<Vec<Image>, ImageError> {
        let span = tracing::info_span!("image_import", archive = %archive.display());
        async {
            // The lease keeps the blobs until the image records point at them.
            let leased = self.inner.ctd.leased("import").await?;
            let result = async {
                let found = archive::import(&leased, archive).await?;
                let mut out = Vec::with_capacity(found.len());
                for res in found {
                    let _guard = self.lock(&res.name).await;
                    self.inner
                        .ctd
                        .put_image(&res.name, res.target.to_ctd())
                        .await?;
                    unpack::unpack(&leased, &res).await?;
                    tracing::info!(image = %res.name, "image imported");
                    out.push(res.image());
                }
                Ok(out)
            }
            .await;
            leased.release_lease().await;
            result
        }
        .instrument(span)
        .await
    }

    /// Prepares the rootfs snapshot `key` on `image` (reusing it if it exists) and mounts it
    /// on `target` (created if needed). Idempotent: a rootfs already mounted there is fine.
    pub async fn prepare_rootfs(
        &self,
        key: &str,
        image: &Image,
        target: &Path,
    ) -> Result<(), ImageError> {
        self.prepare_rootfs_on(key, image, target, None).await
    }

    /// As [`Self::prepare_rootfs`], with the overlay's upper and work directories made in
    /// `writable` (`upper/`, `work/`: a capsule's writable layer) instead of the snapshot's,
    /// when given.
    pub async fn prepare_rootfs_on(
        &self,
        key: &str,
        image: &Image,
        target: &Path,
        writable: Option<&Path>,
    ) -> Result<(), ImageError> {
        mount::prepare_rootfs(&self.inner.ctd, key, image, target, writable)
            .instrument(tracing::info_span!("prepare_rootfs", key, image = %image.name))
            .await
    }

    /// Unmounts `target` (lazily if busy), removes the snapshot `key` and the directory.
    /// Idempotent: what is already gone is fine.
    pub async fn release_rootfs(&self, key: &str, target: &Path) -> Result<(), ImageError> {
        mount::release_rootfs(&self.inner.ctd, key, target)
            .instrument(tracing::info_span!("release_rootfs", key))
            .await
    }

    /// Deletes the image record `reference` and lets containerd collect what only it used
    /// (absent is fine).
    pub async fn remove(&self, reference: &str) -> Result<(), ImageError> {
        let name = ImageRef::parse(reference)?.name();
        let _guard = self.lock(&name).await;
        self.inner.ctd.delete_image(&name, true).await
    }

    /// The record `name` with its manifest and config, if the host has them all.
    async fn local(&self, name: &str) -> Result<Option<Resolved>, ImageError> {
        let ctd = &self.inner.ctd;
        let Some(rec) = ctd.image(name).await? else {
            return Ok(None);
        };
        let Some(target) = rec.target.as_ref().map(Descriptor::from_ctd) else {
            return Ok(None);
        };
        let invalid = |reason: String| ImageError::Invalid {
            reference: name.to_owned(),
            reason,
        };
        let missing = |digest: &str| {
            tracing::warn!(
                image = name,
                digest,
                "image content missing: treating the image as absent"
            );
        };
        let Some(root) = ctd.read_small(&target.digest).await? else {
            missing(&target.digest);
            return Ok(None);
        };
        let (kind, _) = oci::kind_of(&root).map_err(invalid)?;
        let (manifest_digest, manifest_bytes) = match kind {
            Kind::Manifest => (target.digest.clone(), root),
            Kind::Index => {
                let ix: oci::Index = serde_json::from_slice(&root)
                    .map_err(|e| invalid(format!("bad index {}: {e}", target.digest)))?;
                let d = oci::pick_platform(&ix).map_err(invalid)?;
                let Some(b) = ctd.read_small(&d.digest).await? else {
                    missing(&d.digest);
                    return Ok(None);
                };
                (d.digest.clone(), b)
            }
        };
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| invalid(format!("bad manifest {manifest_digest}: {e}")))?;
        let Some(cb) = ctd.read_small(&manifest.config.digest).await? else {
            missing(&manifest.config.digest);
            return Ok(None);
        };
        let config: ConfigFile = serde_json::from_slice(&cb)
            .map_err(|e| invalid(format!("bad config {}: {e}", manifest.config.digest)))?;
        let res = Resolved {
            name: name.to_owned(),
            target,
            manifest_digest,
            manifest,
            config,
        };
        res.check()?;
        // Unpackable: unpacked already, or every layer is here.
        let top = res.chain_ids().pop().unwrap_or_default();
        if ctd.snapshot(&top).await?.is_none() {
            for l in &res.manifest.layers {
                if ctd.content_info(&l.digest).await?.is_none() {
                    missing(&l.digest);
                    return Ok(None);
                }
            }
        }
        Ok(Some(res))
    }
}
