//! The volume module's error type: each variant names the volume and/or the path it was about,
//! and a failed command carries its command line, exit status and stderr.

use std::io;
use std::path::PathBuf;

use uuid::Uuid;

use crate::notes::{exit_note, stderr_note};

/// Why a volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A volume attached to a capsule of this host cannot be deleted.
    #[error("volume {id} is attached on this host; it is removed once its capsule is deleted")]
    Attached {
        /// The volume.
        id: Uuid,
    },
    /// This host keeps no volumes (`[volume] driver = "none"`).
    #[error("Volumes are not available on this host: no volume driver is configured.")]
    NotConfigured,
    /// `[volume]` is unusable (a binary it names cannot be found, ...).
    #[error("invalid volume configuration for {}: {reason}", path.display())]
    Config {
        /// The path configured (a binary, the volume directory).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A create asked for less than the smallest volume this driver makes.
    #[error(
        "volume {id}: {size_bytes} bytes is below the minimum volume size of {min_bytes} bytes"
    )]
    TooSmall {
        /// The volume.
        id: Uuid,
        /// The size asked for.
        size_bytes: u64,
        /// The smallest size allowed.
        min_bytes: u64,
    },
    /// The volume does not exist on this host.
    #[error("volume {id} does not exist on this host (no {})", path.display())]
    NotFound {
        /// The volume.
        id: Uuid,
        /// Its file, which is missing.
        path: PathBuf,
    },
    /// A file-system operation on the volume directory failed.
    #[error("cannot {action} {}{}", path.display(), volume_note(*id))]
    Io {
        /// The volume (`None`: the volume directory as a whole).
        id: Option<Uuid>,
        /// What was being done (`create`, `rename`, `remove`, ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A command (mkfs, mount, umount, losetup) could not be started or waited for.
    #[error("cannot run `{command}` for volume {id}")]
    Spawn {
        /// The volume.
        id: Uuid,
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A command exited non-zero.
    #[error("`{command}` failed to {action} volume {id} ({}){}", exit_note(*code), stderr_note(stderr))]
    Command {
        /// The volume.
        id: Uuid,
        /// What it was meant to do (`format`, `mount`, `unmount`, `release the loop device of`).
        action: &'static str,
        /// The command line.
        command: String,
        /// Its exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// Its stderr, trimmed.
        stderr: String,
    },
    /// umount refused because the file system is in use (EBUSY): a process or a container
    /// still has a file open, a working directory or a mount inside it.
    #[error("volume {id} is in use at {}: `{command}` refused to unmount it ({}){}", path.display(), exit_note(*code), stderr_note(stderr))]
    Busy {
        /// The volume.
        id: Uuid,
        /// Its mount point.
        path: PathBuf,
        /// The command line.
        command: String,
        /// Its exit code.
        code: Option<i32>,
        /// Its stderr, trimmed.
        stderr: String,
    },
    /// After unmounting, a loop device still backs the volume's file and cannot be released:
    /// the file system is still mounted elsewhere (e.g. in a container's mount namespace).
    #[error("volume {id}: loop device {} still backs {} after unmounting (mounted in another mount namespace?)", devices.join(", "), path.display())]
    LoopInUse {
        /// The volume.
        id: Uuid,
        /// Its file.
        path: PathBuf,
        /// The loop devices backed by it (`/dev/loopN`).
        devices: Vec<String>,
    },
}

fn volume_note(id: Option<Uuid>) -> String {
    id.map_or_else(String::new, |id| format!(" (volume {id})"))
}
