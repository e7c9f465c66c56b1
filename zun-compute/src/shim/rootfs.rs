//! The sandbox's root filesystem: the pause program and the empty mount points, laid out once per
//! host and shared read-only by every sandbox.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The pause program (`pause/pause.c`, built static by `build.rs`).
pub const PAUSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/capsule-pause"));

const DIRS: [&str; 5] = ["proc", "sys", "dev", "etc", "tmp"];

/// Whether `dir` already holds this build's sandbox rootfs.
fn is_current(dir: &Path) -> bool {
    let pause = dir.join("pause");
    let Ok(meta) = fs::symlink_metadata(&pause) else {
        return false;
    };
    meta.is_file()
        && meta.permissions().mode() & 0o777 == 0o755
        && meta.len() == PAUSE.len() as u64
        && fs::read(&pause).is_ok_and(|b| b == PAUSE)
        && DIRS.iter().all(|d| dir.join(d).is_dir())
}

fn unique(parent: &Path, name: &str, what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    parent.join(format!(".{name}.{what}-{}-{nanos}", std::process::id()))
}

fn lay_out(tmp: &Path) -> io::Result<()> {
    fs::create_dir(tmp)?;
    fs::set_permissions(tmp, fs::Permissions::from_mode(0o755))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(tmp.join("pause"))?;
    f.write_all(PAUSE)?;
    f.sync_all()?;
    // The mode given at creation is filtered by the umask.
    fs::set_permissions(tmp.join("pause"), fs::Permissions::from_mode(0o755))?;
    for d in DIRS {
        fs::create_dir(tmp.join(d))?;
        fs::set_permissions(tmp.join(d), fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Makes `dir` the sandbox rootfs: `/pause` (mode 0755) and empty `proc`, `sys`, `dev`, `etc`,
/// `tmp`. Idempotent and safe against concurrent callers: the tree is built beside `dir` and
/// renamed into place; an outdated tree (another build's pause) is replaced the same way.
pub fn ensure_sandbox_rootfs(dir: &Path) -> io::Result<()> {
    if is_current(dir) {
        return Ok(());
    }
    let parent = dir
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "rootfs dir has no parent"))?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "rootfs dir has no name"))?;
    fs::create_dir_all(parent)?;
    let tmp = unique(parent, name, "tmp");
    if let Err(e) = lay_out(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match fs::rename(&tmp, dir) {
        Ok(()) => Ok(()),
        Err(_) if is_current(dir) => {
            // Another caller won the race with the same content.
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) if dir.exists() => {
            // An outdated tree: move it aside (running sandboxes keep their mount of it), then
            // put ours in place.
            let old = unique(parent, name, "old");
            let swapped = fs::rename(dir, &old).and_then(|()| fs::rename(&tmp, dir));
            let _ = fs::remove_dir_all(&old);
            match swapped {
                Ok(()) => Ok(()),
                Err(_) if is_current(dir) => {
                    let _ = fs::remove_dir_all(&tmp);
                    Ok(())
                }
                Err(_) => {
                    let _ = fs::remove_dir_all(&tmp);
                    Err(e)
                }
            }
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("shim-rootfs-test-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn pause_is_a_static_elf() {
        assert_eq!(&PAUSE[..4], b"\x7fELF");
    }

    #[test]
    fn rootfs_is_laid_out_once_and_repaired_when_outdated() {
        let base = tempdir();
        let dir = base.join("sandbox-rootfs");
        ensure_sandbox_rootfs(&dir).unwrap();
        assert!(is_current(&dir));
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let first = ino(&dir);
        ensure_sandbox_rootfs(&dir).unwrap();
        assert_eq!(ino(&dir), first, "an up-to-date tree is left alone");

        fs::write(dir.join("pause"), b"old").unwrap();
        ensure_sandbox_rootfs(&dir).unwrap();
        assert!(is_current(&dir));
        let leftovers: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("sandbox-rootfs")]);
        fs::remove_dir_all(&base).unwrap();
    }
}
