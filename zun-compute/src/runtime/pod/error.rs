//! The pod runtime's errors: why a step of a create failed (its words become the capsule's
//! `status_reason`, with their causes), why an undo failed, and a teardown's list of them.

use std::io;
use std::path::PathBuf;

use uuid::Uuid;

use super::steps::Step;
use crate::chain::chain;
use crate::firewall::SecurityGroupsError;
use crate::image::ImageError;
use crate::network::NetworkError;
use crate::shim::ShimError;
use crate::volume::VolumeError;

/// Why a step of a create failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A host port, or the network setup.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// An image, or a container's root filesystem.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The shim, or the containers it started.
    #[error(transparent)]
    Shim(#[from] ShimError),
    /// The host keeps no volumes.
    #[error(transparent)]
    Volumes(#[from] VolumeError),
    /// One of the capsule's volumes.
    #[error("volume {name} ({id})")]
    Volume {
        /// Its name in the template.
        name: String,
        /// The volume.
        id: Uuid,
        /// Why (boxed: the other steps' errors are smaller).
        #[source]
        source: Box<VolumeError>,
    },
    /// The capsule's writable layer.
    #[error("writable layer")]
    Layer(#[source] VolumeError),
    /// The security groups could not take the capsule in.
    #[error(transparent)]
    SecurityGroups(#[from] SecurityGroupsError),
    /// The capsule's directory.
    #[error("cannot create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file of the capsule's directory.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The shim's plan.
    #[error("cannot write the plan in {}", dir.display())]
    WritePlan {
        /// The capsule's directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The spec names fewer containers than its template has.
    #[error("capsule {capsule} lists too few containers")]
    TooFewContainers {
        /// The capsule.
        capsule: Uuid,
    },
    /// A container's working directory cannot be made in its root filesystem.
    #[error("cannot create working directory {cwd} of {container}")]
    WorkDir {
        /// The working directory.
        cwd: String,
        /// The container (its shim name).
        container: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The image runs as a user by name.
    #[error("image {image} runs as user {user:?}: only numeric uid[:gid] users are supported")]
    User {
        /// The image.
        image: String,
        /// Its user.
        user: String,
    },
    /// A container mounts a volume the capsule does not have.
    #[error("container {container} mounts volume {volume:?}, which the capsule does not have")]
    MissingVolume {
        /// The container (its shim name).
        container: String,
        /// The volume's name.
        volume: String,
    },
}

/// Why an undo (of a create's step, or in a teardown) failed.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// The capsule's containers and shim could not all be stopped.
    #[error("containers")]
    Containers(#[source] ShimError),
    /// The capsule's network could not all be torn down.
    #[error("network")]
    Network(#[source] NetworkError),
    /// The security groups could not be applied without the capsule.
    #[error(transparent)]
    SecurityGroups(SecurityGroupsError),
    /// One of the capsule's volumes could not be released.
    #[error("volume {name} ({id})")]
    Volume {
        /// Its name in the template.
        name: String,
        /// The volume.
        id: Uuid,
        /// Why.
        #[source]
        source: VolumeError,
    },
    /// The record of the capsule's volumes is unreadable.
    #[error("cannot read {}", path.display())]
    VolumesRecord {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The capsule's writable layer could not be removed.
    #[error("writable layer")]
    Layer(#[source] VolumeError),
    /// A container's root filesystem could not be released.
    #[error("rootfs of {container}")]
    Rootfs {
        /// The container (its shim name).
        container: String,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// The capsule's directory could not be removed.
    #[error("cannot remove {}", path.display())]
    RemoveDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A create that failed at `step`, after undoing the steps done before it. Shows as the
/// step's error (that is what the user gets to act on); the undo's errors were logged.
#[derive(Debug)]
pub struct CreateFailed {
    /// The capsule.
    pub capsule: Uuid,
    /// The step that failed.
    pub step: Step,
    /// Why.
    pub error: StepError,
    /// The steps undone, in the order they were undone.
    pub undone: Vec<Step>,
    /// What the undo could not do, step by step.
    pub undo_errors: Vec<(Step, UndoError)>,
}

impl std::fmt::Display for CreateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for CreateFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// A teardown that met errors; it carried on past each of them.
#[derive(Debug, thiserror::Error)]
#[error("teardown of capsule {capsule} incomplete: {}", joined(errors))]
pub struct TeardownError {
    /// The capsule.
    pub capsule: Uuid,
    /// Every error, each with its causes, in the order met.
    pub errors: Vec<UndoError>,
}

fn joined(errors: &[UndoError]) -> String {
    errors
        .iter()
        .map(|e| chain(e))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The capsules directory cannot be used (the pod runtime cannot start).
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct CapsulesDirError {
    /// `create` or `list`.
    pub action: &'static str,
    /// The directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}
