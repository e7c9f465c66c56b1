//! [`LoopVolumes`]: volumes as sparse ext4 image files, mounted with `mount -o loop`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::OwnedMutexGuard;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{
    find_program, path_env, read_mounts, Mount, VolumeConfig, VolumeDriver, VolumeError,
    MIN_VOLUME_BYTES,
};

/// Mount options of an attached volume; `loop` makes mount(8) set up an autoclear loop
/// device, which the kernel releases when the file system is unmounted.
const MOUNT_OPTIONS: &str = "loop,nodev,nosuid,noatime";
/// How long detach waits for the loop device of an unmounted volume to go away.
const LOOP_SETTLE: Duration = Duration::from_secs(1);
/// How many mounts stacked on one mount point detach takes off before giving up.
const MAX_STACKED: usize = 8;

/// The real volume driver: `<dir>/<id>.img` files formatted ext4, mounted at `<dir>/mnt/<id>`
/// through loop devices. Cheap to clone; clones share the per-volume locks.
#[derive(Clone, Debug)]
pub struct LoopVolumes(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// The volume directory, canonical (so mount points compare with the kernel's table).
    dir: PathBuf,
    /// `<dir>/mnt`.
    mnt: PathBuf,
    /// The tools, resolved.
    mkfs: PathBuf,
    mount: PathBuf,
    umount: PathBuf,
    losetup: PathBuf,
    /// `PATH` for the tools' children (mount runs helpers).
    path: OsString,
    /// One lock per volume with an operation running or waiting; an entry is dropped when
    /// its last holder lets go.
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds volume `id`'s lock; on drop, forgets the lock if nobody else wants it.
struct IdLock<'a> {
    locks: &'a Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    id: Uuid,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for IdLock<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // Clones are only made under the map's lock: a count of 1 is the map's own.
        if locks
            .get(&self.id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.id);
        }
    }
}

impl LoopVolumes {
    /// Resolves `cfg`'s directory under `state_dir`, creates it and its `mnt` directory, and
    /// checks that the tools exist ([`VolumeError::Config`] names a missing one).
    pub fn new(cfg: VolumeConfig, state_dir: &Path) -> Result<Self, VolumeError> {
        let path = path_env();
        let tool = |program: &Path, what: &str| {
            find_program(program, &path).ok_or_else(|| VolumeError::Config {
                path: program.to_owned(),
                reason: format!("{what} not found (searched PATH with /usr/sbin and /sbin)"),
            })
        };
        let mkfs = tool(&cfg.mkfs, "the mkfs.ext4 binary (mkfs)")?;
        let mount = tool(&cfg.mount, "the mount binary (mount)")?;
        let umount = tool(&cfg.umount, "the umount binary (umount)")?;
        let losetup = tool(&cfg.losetup, "the losetup binary (losetup)")?;
        let dir = cfg.dir_under(state_dir);
        let mnt = dir.join("mnt");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&mnt)
            .map_err(|source| io_error(None, "create", &mnt, source))?;
        let dir = std::fs::canonicalize(&dir)
            .map_err(|source| io_error(None, "resolve", &dir, source))?;
        Ok(Self(Arc::new(Inner {
            mnt: dir.join("mnt"),
            dir,
            mkfs,
            mount,
            umount,
            losetup,
            path,
            locks: Mutex::default(),
        })))
    }

    /// The directory holding the volumes.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// The mount point volume `id` gets (whether or not it is mounted now).
    pub fn mount_point(&self, id: Uuid) -> PathBuf {
        self.0.mnt.join(id.to_string())
    }

    /// The file of volume `id`.
    pub fn file(&self, id: Uuid) -> PathBuf {
        self.0.dir.join(format!("{id}.img"))
    }

    /// Where a create of volume `id` formats it before giving it its name.
    fn temp_file(&self, id: Uuid) -> PathBuf {
        self.0.dir.join(format!(".{id}.img.tmp"))
    }

    /// Waits for volume `id`'s lock.
    async fn lock(&self, id: Uuid) -> IdLock<'_> {
        let lock = {
            let mut locks = self.0.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(id).or_default())
        };
        IdLock {
            locks: &self.0.locks,
            id,
            guard: Some(lock.lock_owned().await),
        }
    }

    /// Whether something is mounted at `mount_point`.
    fn mounted(&self, mount_point: &Path) -> Result<bool, VolumeError> {
        Ok(self.mount_at(mount_point)?.is_some())
    }

    /// The mount on top at `mount_point`, if any.
    fn mount_at(&self, mount_point: &Path) -> Result<Option<Mount>, VolumeError> {
        Ok(read_mounts()?
            .into_iter()
            .rev()
            .find(|m| m.mount_point == mount_point))
    }

    /// Runs `program args` for volume `id` and returns its stdout; a non-zero exit is
    /// [`VolumeError::Command`] with the command's stderr.
    async fn run(
        &self,
        id: Uuid,
        action: &'static str,
        program: &Path,
        args: &[&OsStr],
    ) -> Result<String, VolumeError> {
        let command = std::iter::once(program.as_os_str())
            .chain(args.iter().copied())
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        debug!(volume = %id, %command, "running");
        let out = tokio::process::Command::new(program)
            .args(args)
            .env("PATH", &self.0.path)
            // Messages in English, so "busy" can be recognized.
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| VolumeError::Spawn {
                id,
                command: command.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(VolumeError::Command {
            id,
            action,
            command,
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    /// Formats `tmp` as volume `id` of `size_bytes` and flushes it to disk.
    async fn make(&self, id: Uuid, size_bytes: u64, tmp: &Path) -> Result<(), VolumeError> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
            .await
            .map_err(|source| io_error(Some(id), "create", tmp, source))?;
        file.set_len(size_bytes)
            .await
            .map_err(|source| io_error(Some(id), "size", tmp, source))?;
        drop(file);
        let label = id.simple().to_string()[..16].to_owned();
        let args = [
            "-q",
            "-F",
            "-m",
            "0",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
            "-L",
            &label,
        ];
        let args: Vec<&OsStr> = args
            .iter()
            .map(OsStr::new)
            .chain([tmp.as_os_str()])
            .collect();
        self.run(id, "format", &self.0.mkfs, &args).await?;
        let file = tokio::fs::File::open(tmp)
            .await
            .map_err(|source| io_error(Some(id), "open", tmp, source))?;
        file.sync_all()
            .await
            .map_err(|source| io_error(Some(id), "sync", tmp, source))
    }

    /// Takes volume `id` off its mount point, releases its loop device and removes the mount
    /// point. Returns whether anything was attached. The caller holds the volume's lock.
    async fn detach_locked(&self, id: Uuid) -> Result<bool, VolumeError> {
        let mount_point = self.mount_point(id);
        let mut attached = false;
        for _ in 0..MAX_STACKED {
            if !self.mounted(&mount_point)? {
                break;
            }
            attached = true;
            let args = [mount_point.as_os_str()];
            match self.run(id, "unmount", &self.0.umount, &args).await {
                Ok(_) => {}
                Err(VolumeError::Command {
                    command,
                    code,
                    stderr,
                    ..
                }) if stderr.to_ascii_lowercase().contains("busy") => {
                    return Err(VolumeError::Busy {
                        id,
                        path: mount_point,
                        command,
                        code,
                        stderr,
                    });
                }
                // Unmounted by someone else meanwhile: what was wanted.
                Err(_) if !self.mounted(&mount_point)? => {}
                Err(e) => return Err(e),
            }
        }
        let file = self.file(id);
        if exists(&file)
            .await
            .map_err(|source| io_error(Some(id), "inspect", &file, source))?
        {
            attached |= self.release_loops(id, &file).await?;
        }
        match tokio::fs::remove_dir(&mount_point).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {
                // Not the volume's data (it is unmounted): something wrote into the bare
                // directory. Leave it for an operator; the next attach mounts over it.
                warn!(volume = %id, mount_point = %mount_point.display(), "mount point not empty after unmounting; left in place");
            }
            Err(source) => return Err(io_error(Some(id), "remove", &mount_point, source)),
        }
        Ok(attached)
    }

    /// The loop devices backed by `file` (`losetup -j`).
    async fn loop_devices(&self, id: Uuid, file: &Path) -> Result<Vec<String>, VolumeError> {
        let out = self
            .run(
                id,
                "list the loop devices of",
                &self.0.losetup,
                &[OsStr::new("-j"), file.as_os_str()],
            )
            .await?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once(':').map(|(dev, _)| dev.trim().to_owned()))
            .filter(|dev| !dev.is_empty())
            .collect())
    }

    /// Makes sure no loop device backs volume `id`'s `file` any more: detaches the ones left
    /// (the kernel normally clears them when the file system is unmounted). Returns whether
    /// there were any.
    async fn release_loops(&self, id: Uuid, file: &Path) -> Result<bool, VolumeError> {
        let mut devices = self.loop_devices(id, file).await?;
        if devices.is_empty() {
            return Ok(false);
        }
        for dev in &devices {
            let args = [OsStr::new("-d"), OsStr::new(dev)];
            // It may have been cleared between the two commands; the check below decides.
            if let Err(e) = self
                .run(id, "release the loop device of", &self.0.losetup, &args)
                .await
            {
                debug!(volume = %id, device = %dev, error = %e, "losetup -d failed");
            }
        }
        let deadline = Instant::now() + LOOP_SETTLE;
        loop {
            devices = self.loop_devices(id, file).await?;
            if devices.is_empty() {
                warn!(volume = %id, file = %file.display(), "released a loop device left after unmounting");
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Err(VolumeError::LoopInUse {
                    id,
                    path: file.to_owned(),
                    devices,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[async_trait]
impl VolumeDriver for LoopVolumes {
    async fn create(&self, id: Uuid, size_bytes: u64) -> Result<(), VolumeError> {
        if size_bytes < MIN_VOLUME_BYTES {
            return Err(VolumeError::TooSmall {
                id,
                size_bytes,
                min_bytes: MIN_VOLUME_BYTES,
            });
        }
        let _lock = self.lock(id).await;
        let started = Instant::now();
        let file = self.file(id);
        if exists(&file)
            .await
            .map_err(|source| io_error(Some(id), "inspect", &file, source))?
        {
            debug!(volume = %id, "volume exists already");
            return Ok(());
        }
        let tmp = self.temp_file(id);
        if remove_file(&tmp)
            .await
            .map_err(|source| io_error(Some(id), "remove", &tmp, source))?
        {
            warn!(volume = %id, file = %tmp.display(), "removed the leftover of an interrupted create");
        }
        if let Err(e) = self.make(id, size_bytes, &tmp).await {
            if let Err(rm) = remove_file(&tmp).await {
                warn!(volume = %id, file = %tmp.display(), error = %rm, "cannot remove the temp file of a failed create");
            }
            return Err(e);
        }
        tokio::fs::rename(&tmp, &file)
            .await
            .map_err(|source| io_error(Some(id), "rename", &tmp, source))?;
        sync_dir(id, &self.0.dir).await?;
        info!(volume = %id, bytes = size_bytes, ms = started.elapsed().as_millis() as u64, "volume created");
        Ok(())
    }

    async fn attach(&self, id: Uuid) -> Result<PathBuf, VolumeError> {
        let _lock = self.lock(id).await;
        let started = Instant::now();
        let file = self.file(id);
        if !exists(&file)
            .await
            .map_err(|source| io_error(Some(id), "inspect", &file, source))?
        {
            return Err(VolumeError::NotFound { id, path: file });
        }
        let mount_point = self.mount_point(id);
        if let Some(mount) = self.mount_at(&mount_point)? {
            debug!(volume = %id, source = %mount.source, fstype = %mount.fstype, "volume attached already");
            return Ok(mount_point);
        }
        tokio::fs::create_dir_all(&mount_point)
            .await
            .map_err(|source| io_error(Some(id), "create", &mount_point, source))?;
        let args = [
            OsStr::new("-t"),
            OsStr::new("ext4"),
            OsStr::new("-o"),
            OsStr::new(MOUNT_OPTIONS),
            file.as_os_str(),
            mount_point.as_os_str(),
        ];
        if let Err(e) = self.run(id, "mount", &self.0.mount, &args).await {
            let _ = tokio::fs::remove_dir(&mount_point).await;
            return Err(e);
        }
        info!(volume = %id, mount_point = %mount_point.display(), ms = started.elapsed().as_millis() as u64, "volume attached");
        Ok(mount_point)
    }

    async fn detach(&self, id: Uuid) -> Result<(), VolumeError> {
        let _lock = self.lock(id).await;
        let started = Instant::now();
        if self.detach_locked(id).await? {
            info!(volume = %id, ms = started.elapsed().as_millis() as u64, "volume detached");
        } else {
            debug!(volume = %id, "volume not attached");
        }
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> Result<(), VolumeError> {
        let _lock = self.lock(id).await;
        let started = Instant::now();
        let detached = self.detach_locked(id).await?;
        let file = self.file(id);
        let removed = remove_file(&file)
            .await
            .map_err(|source| io_error(Some(id), "remove", &file, source))?;
        let tmp = self.temp_file(id);
        let removed_tmp = remove_file(&tmp)
            .await
            .map_err(|source| io_error(Some(id), "remove", &tmp, source))?;
        if removed || removed_tmp {
            sync_dir(id, &self.0.dir).await?;
        }
        if removed || detached {
            info!(volume = %id, detached, ms = started.elapsed().as_millis() as u64, "volume deleted");
        } else {
            debug!(volume = %id, "volume does not exist; nothing to delete");
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<Uuid>, VolumeError> {
        let dir = &self.0.dir;
        let read_error = |source| io_error(None, "read", dir, source);
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".img")) else {
                continue;
            };
            // Only the names this driver writes (lower-case, hyphenated).
            let Some(id) = Uuid::parse_str(stem)
                .ok()
                .filter(|id| id.to_string() == stem)
            else {
                continue;
            };
            if entry.file_type().map_err(read_error)?.is_file() {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn is_attached(&self, id: Uuid) -> Result<bool, VolumeError> {
        self.mounted(&self.mount_point(id))
    }

    fn capacity(&self) -> Result<(u64, u64), VolumeError> {
        let dir = &self.0.dir;
        let st = nix::sys::statvfs::statvfs(dir)
            .map_err(|errno| io_error(None, "statvfs", dir, errno.into()))?;
        // All three are u64 on 64-bit Linux.
        let unit = st.fragment_size();
        Ok((
            st.blocks().saturating_mul(unit),
            st.blocks_available().saturating_mul(unit),
        ))
    }
}

fn io_error(
    id: Option<Uuid>,
    action: &'static str,
    path: &Path,
    source: std::io::Error,
) -> VolumeError {
    VolumeError::Io {
        id,
        action,
        path: path.to_owned(),
        source,
    }
}

/// Whether `path` exists (without following a final symlink).
async fn exists(path: &Path) -> std::io::Result<bool> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes file `path`; returns whether it was there.
async fn remove_file(path: &Path) -> std::io::Result<bool> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Flushes directory `dir`'s entries (a rename or removal in it) to disk.
async fn sync_dir(id: Uuid, dir: &Path) -> Result<(), VolumeError> {
    let handle = tokio::fs::File::open(dir)
        .await
        .map_err(|source| io_error(Some(id), "open", dir, source))?;
    handle
        .sync_all()
        .await
        .map_err(|source| io_error(Some(id), "sync", dir, source))
}
