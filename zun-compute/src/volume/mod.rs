//! Cinder-like block volumes on the compute host: each volume is a sparse file formatted ext4,
//! mounted through a loop device while attached, and its mount point bound into containers.
//!
//! [`VolumeDriver`] is what the rest of the agent sees, chosen from `[volume] driver` at start
//! ([`from_config`]): [`LoopVolumes`] is the real driver, [`NoVolumes`] refuses every volume
//! (a host without them), [`MarkerVolumes`] are the fake runtime's (marker files),
//! [`fake::FakeVolumes`] is a recording fake for unit tests. A
//! volume `id` lives in `<dir>/<id>.img` and is mounted at `<dir>/mnt/<id>`. Every operation is
//! idempotent and operations on one volume are serialized; the kernel's mount table
//! (`/proc/self/mountinfo`) is the truth about what is attached. The tools (mkfs.ext4, mount,
//! umount, losetup) run as child processes.

mod error;
pub mod fake;
mod loopfs;
mod marker;
mod none;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use uuid::Uuid;

pub use error::VolumeError;
pub use loopfs::LoopVolumes;
pub use marker::MarkerVolumes;
pub use none::NoVolumes;

/// The smallest volume [`VolumeDriver::create`] makes: 8 MiB.
pub const MIN_VOLUME_BYTES: u64 = 8 << 20;

/// `[volume]` in `zun-compute.toml`: where and with which tools volumes are made.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeConfig {
    /// Which driver keeps volumes: `loop` (the default) or `none` (capsules with volumes and
    /// volume requests are refused).
    pub driver: VolumeDriverKind,
    /// Where volume files (`<id>.img`) and their mount points (`mnt/<id>`) live. Empty (the
    /// default) means `<state_dir>/volumes`; a relative path is relative to the state
    /// directory (see [`VolumeConfig::dir_under`]).
    pub dir: PathBuf,
    /// The mkfs.ext4 binary (looked up in `PATH`, with `/usr/sbin` and `/sbin` added).
    pub mkfs: PathBuf,
    /// The mount binary (util-linux; `-o loop` sets up the loop device).
    pub mount: PathBuf,
    /// The umount binary.
    pub umount: PathBuf,
    /// The losetup binary (util-linux).
    pub losetup: PathBuf,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        Self {
            driver: VolumeDriverKind::Loop,
            dir: PathBuf::new(),
            mkfs: PathBuf::from("mkfs.ext4"),
            mount: PathBuf::from("mount"),
            umount: PathBuf::from("umount"),
            losetup: PathBuf::from("losetup"),
        }
    }
}

impl VolumeConfig {
    /// The volume directory for an agent whose state directory is `state_dir`.
    pub fn dir_under(&self, state_dir: &Path) -> PathBuf {
        if self.dir.as_os_str().is_empty() {
            state_dir.join("volumes")
        } else {
            // `join` keeps an absolute `dir` as it is.
            state_dir.join(&self.dir)
        }
    }
}

/// `[volume] driver`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeDriverKind {
    /// [`LoopVolumes`].
    #[default]
    Loop,
    /// [`NoVolumes`].
    None,
}

/// The driver `cfg` asks for, keeping its volumes under `state_dir` (see
/// [`VolumeConfig::dir_under`]).
pub fn from_config(
    cfg: &VolumeConfig,
    state_dir: &Path,
) -> Result<Arc<dyn VolumeDriver>, VolumeError> {
    Ok(match cfg.driver {
        VolumeDriverKind::Loop => Arc::new(LoopVolumes::new(cfg.clone(), state_dir)?),
        VolumeDriverKind::None => Arc::new(NoVolumes),
    })
}

/// Makes, attaches, detaches and deletes the host's block volumes.
#[async_trait]
pub trait VolumeDriver: Send + Sync + std::fmt::Debug + 'static {
    /// Ok if this driver can keep volumes at all (checked before a capsule with volumes
    /// makes anything); [`VolumeError::NotConfigured`] if not.
    fn available(&self) -> Result<(), VolumeError> {
        Ok(())
    }

    /// Makes volume `id` of `size_bytes` (a sparse file formatted ext4), not attached.
    /// Idempotent: if a finished volume `id` exists, Ok without touching it (its data is
    /// kept); a half-made one (the temp file of an interrupted create) is removed and made
    /// again. The file only gets its final name once formatted, so a crash never leaves a
    /// half-formatted volume. Sizes below [`MIN_VOLUME_BYTES`] are refused.
    async fn create(&self, id: Uuid, size_bytes: u64) -> Result<(), VolumeError>;

    /// Mounts volume `id` (read-write, nodev, nosuid) at its mount point and returns the mount
    /// point (the directory to bind into containers). Idempotent: already mounted returns the
    /// path. A volume that does not exist is [`VolumeError::NotFound`].
    async fn attach(&self, id: Uuid) -> Result<PathBuf, VolumeError>;

    /// Unmounts volume `id`, releases its loop device and removes its empty mount point.
    /// Idempotent: not mounted or unknown is Ok. A file system still in use is
    /// [`VolumeError::Busy`] (it stays attached).
    async fn detach(&self, id: Uuid) -> Result<(), VolumeError>;

    /// Detaches volume `id` if attached and removes its file (its data is gone). Idempotent:
    /// unknown is Ok.
    async fn delete(&self, id: Uuid) -> Result<(), VolumeError>;

    /// The volumes that exist on this host (finished volume files), sorted.
    fn list(&self) -> Result<Vec<Uuid>, VolumeError>;

    /// Whether volume `id` is mounted now.
    fn is_attached(&self, id: Uuid) -> Result<bool, VolumeError>;

    /// Bytes of the file system holding the volume directory: (total, available to the
    /// agent), from statvfs. Volumes are sparse, so this is what they can still grow into.
    fn capacity(&self) -> Result<(u64, u64), VolumeError>;
}

/// `PATH` for the tools: Debian keeps mkfs.ext4 and losetup in `/usr/sbin` (`/sbin`), which a
/// service's `PATH` may lack.
fn path_env() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for extra in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(PathBuf::from(extra));
        }
    }
    std::env::join_paths(dirs).unwrap_or(path)
}

/// Finds `program` as a child with `PATH` = `path` would: a name with a `/` as it is, a bare
/// name in the first directory of `path` holding a file of that name.
fn find_program(program: &Path, path: &OsStr) -> Option<PathBuf> {
    if program.as_os_str().is_empty() {
        return None;
    }
    if program.components().count() > 1 || program.is_absolute() {
        return program.is_file().then(|| program.to_owned());
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// One line of `/proc/self/mountinfo`, the fields the driver needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    /// Where it is mounted (escapes decoded).
    mount_point: PathBuf,
    /// The file-system type (`ext4`).
    fstype: String,
    /// The mount source (`/dev/loop3`).
    source: String,
}

/// Parses `/proc/<pid>/mountinfo`: `id parent major:minor root mount-point options
/// [optional fields...] - fstype source super-options` per line, with space, tab, newline and
/// backslash in paths written as octal escapes (`\040`). Lines it cannot read are skipped.
fn parse_mountinfo(data: &[u8]) -> Vec<Mount> {
    data.split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let mount_point = fields.get(4)?;
            let dash = fields.iter().skip(6).position(|f| *f == b"-")? + 6;
            let text = |i: usize| -> Option<String> {
                fields
                    .get(i)
                    .map(|f| String::from_utf8_lossy(&unescape(f)).into_owned())
            };
            Some(Mount {
                mount_point: PathBuf::from(OsStr::from_bytes(&unescape(mount_point))),
                fstype: text(dash + 1)?,
                source: text(dash + 2)?,
            })
        })
        .collect()
}

/// Decodes the kernel's `\ooo` octal escapes (`\040` is a space); anything else is kept as is.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).filter(|d| {
            field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, c| n * 8 + (c - b'0')));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// The mounts of this process's mount namespace.
fn read_mounts() -> Result<Vec<Mount>, VolumeError> {
    const MOUNTINFO: &str = "/proc/self/mountinfo";
    std::fs::read(MOUNTINFO)
        .map(|data| parse_mountinfo(&data))
        .map_err(|source| VolumeError::Io {
            id: None,
            action: "read",
            path: PathBuf::from(MOUNTINFO),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"\
22 27 0:21 / /proc rw,relatime - proc proc rw
58 27 7:0 / /tmp/vols/mnt/a rw,nosuid,nodev,noatime shared:1 - ext4 /dev/loop0 rw
59 27 7:1 / /tmp/my\\040vols/mnt\\011tab\\134back\\012nl rw master:2 propagate_from:1 - ext4 /dev/loop1 rw
60 27 0:50 / /tmp/odd\\x rw - tmpfs some\\040thing rw
garbage line
61 27 0:51 / /no/separator rw tmpfs
";

    #[test]
    fn mountinfo_fields_and_escapes() {
        let mounts = parse_mountinfo(SAMPLE);
        let points: Vec<&Path> = mounts.iter().map(|m| m.mount_point.as_path()).collect();
        assert_eq!(
            points,
            [
                Path::new("/proc"),
                Path::new("/tmp/vols/mnt/a"),
                Path::new("/tmp/my vols/mnt\ttab\\back\nnl"),
                Path::new("/tmp/odd\\x"),
            ]
        );
        assert_eq!(
            mounts[1],
            Mount {
                mount_point: PathBuf::from("/tmp/vols/mnt/a"),
                fstype: "ext4".into(),
                source: "/dev/loop0".into(),
            }
        );
        // Optional fields (shared:, master:, propagate_from:) come before the separator.
        assert_eq!(mounts[2].fstype, "ext4");
        assert_eq!(mounts[2].source, "/dev/loop1");
        assert_eq!(mounts[3].source, "some thing");
    }

    #[test]
    fn unescape_keeps_what_is_not_an_escape() {
        assert_eq!(unescape(b"a\\040b"), b"a b");
        assert_eq!(unescape(b"\\134"), b"\\");
        assert_eq!(unescape(b"end\\04"), b"end\\04");
        assert_eq!(unescape(b"\\999"), b"\\999");
        assert_eq!(unescape(b"\\"), b"\\");
        assert_eq!(unescape(b"\xff\\040"), b"\xff ");
    }

    #[test]
    fn mountinfo_of_this_process_has_root() {
        let mounts = read_mounts().expect("read /proc/self/mountinfo");
        assert!(mounts.iter().any(|m| m.mount_point == Path::new("/")));
    }

    #[test]
    fn dir_defaults_under_the_state_dir() {
        let state = Path::new("/var/lib/zun");
        let mut cfg = VolumeConfig::default();
        assert_eq!(cfg.dir_under(state), Path::new("/var/lib/zun/volumes"));
        cfg.dir = PathBuf::from("vols");
        assert_eq!(cfg.dir_under(state), Path::new("/var/lib/zun/vols"));
        cfg.dir = PathBuf::from("/srv/volumes");
        assert_eq!(cfg.dir_under(state), Path::new("/srv/volumes"));
    }

    #[test]
    fn config_from_toml() {
        let cfg: VolumeConfig =
            toml::from_str("dir = \"/srv/v\"\nmkfs = \"/opt/mkfs\"\n").expect("parse [volume]");
        assert_eq!(cfg.dir, Path::new("/srv/v"));
        assert_eq!(cfg.mkfs, Path::new("/opt/mkfs"));
        assert_eq!(cfg.mount, Path::new("mount"));
        assert!(toml::from_str::<VolumeConfig>("size = 1\n").is_err());
    }

    #[test]
    fn errors_name_the_volume_and_the_command() {
        let id = Uuid::nil();
        let busy = VolumeError::Busy {
            id,
            path: PathBuf::from("/v/mnt/x"),
            command: "umount /v/mnt/x".into(),
            code: Some(32),
            stderr: "umount: /v/mnt/x: target is busy.".into(),
        };
        assert_eq!(
            busy.to_string(),
            format!(
                "volume {id} is in use at /v/mnt/x: `umount /v/mnt/x` refused to unmount it \
                 (exit code 32): umount: /v/mnt/x: target is busy."
            )
        );
        let failed = VolumeError::Command {
            id,
            action: "format",
            command: "mkfs.ext4 -q f".into(),
            code: None,
            stderr: String::new(),
        };
        assert_eq!(
            failed.to_string(),
            format!("`mkfs.ext4 -q f` failed to format volume {id} (killed by a signal)")
        );
        let io = VolumeError::Io {
            id: Some(id),
            action: "remove",
            path: PathBuf::from("/v/x.img"),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            io.to_string(),
            format!("cannot remove /v/x.img (volume {id})")
        );
    }

    #[test]
    fn programs_are_found_in_the_path() {
        let path = std::env::join_paths(["/nonexistent", "/bin", "/usr/bin"]).unwrap();
        assert!(find_program(Path::new("sh"), &path).is_some());
        assert_eq!(find_program(Path::new("no-such-tool-x"), &path), None);
        assert_eq!(find_program(Path::new(""), &path), None);
        assert_eq!(
            find_program(Path::new("/bin/sh"), &path).as_deref(),
            Some(Path::new("/bin/sh"))
        );
        assert_eq!(find_program(Path::new("/nonexistent/sh"), &path), None);
    }
}
