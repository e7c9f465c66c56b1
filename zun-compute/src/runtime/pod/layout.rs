//! Where the pod runtime keeps a capsule on the host: `<state_dir>/capsules/<uuid>/` and the
//! files of it that the agent writes (the shim's are in `shim`); see docs/runtime.md.

use std::path::{Path, PathBuf};

use uuid::Uuid;

/// The capsule's volumes, as its create recorded them before making any (what a teardown
/// must unmount or remove).
pub const VOLUMES_FILE: &str = "volumes.json";
/// The capsule's network record (written by the network part).
pub const NETWORK_FILE: &str = "network.json";
/// The cgroup under which every capsule has its own (`/capsule/<uuid>`, in every hierarchy):
/// the agent limits its memory to what capsules may take of the host.
pub const CAPSULES_CGROUP: &str = "/capsule";
/// The directory of the capsule's containers' root filesystems, one per container.
pub const ROOTFS_DIR: &str = "rootfs";

/// The capsules' directories of one host.
#[derive(Clone, Debug)]
pub struct CapsuleDirs {
    root: PathBuf,
}

impl CapsuleDirs {
    /// The capsules of the agent whose state directory is `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("capsules"),
        }
    }

    /// `<state_dir>/capsules`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Capsule `id`'s directory.
    pub fn dir(&self, id: Uuid) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// Capsule `id`'s record of its volumes; it exists while the host may hold them.
    pub fn volumes_record(&self, id: Uuid) -> PathBuf {
        self.dir(id).join(VOLUMES_FILE)
    }

    /// The capsules that have a directory, with it.
    pub fn list(&self) -> std::io::Result<Vec<(Uuid, PathBuf)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let Ok(entry) = entry else { continue };
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                out.push((id, entry.path()));
            }
        }
        Ok(out)
    }
}
