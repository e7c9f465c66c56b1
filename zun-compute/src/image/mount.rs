//! A container's rootfs: an active snapshot on the image's top chain id, mounted where the
//! agent says (overlay, or a bind mount for a single-layer image), and its undoing. Both
//! directions are idempotent, so a create or delete interrupted half-way can simply be redone.
//! With a writable directory (on the capsule's writable layer), the overlay's upper and work
//! directories are made there instead of in the snapshot, so the container's writes land on
//! the layer's bounded file system.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_client::tonic::Code;
use containerd_client::types::Mount;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use super::ctd::Ctd;
use super::error::{ctd as ctd_err, io, ImageError};
use super::oci;
use super::Image;

/// Prepares (or reuses) the snapshot `key` on `image` and mounts it on `target`.
pub(crate) async fn prepare_rootfs(
    ctd: &Ctd,
    key: &str,
    image: &Image,
    target: &Path,
    writable: Option<&Path>,
) -> Result<(), ImageError> {
    let started = std::time::Instant::now();
    if let Some(info) = ctd.snapshot(key).await? {
        if info.parent != image.chain_id {
            // A leftover of another image under this key.
            if is_mountpoint(target)? {
                return Err(ImageError::SnapshotConflict {
                    key: key.to_owned(),
                    found: info.parent,
                    wanted: image.chain_id.clone(),
                    target: target.to_owned(),
                });
            }
            tracing::warn!(key, parent = %info.parent, "replacing a snapshot of another image");
            ctd.remove_snapshot(key).await?;
        }
    }
    let labels = HashMap::from([(
        oci::LABEL_GC_ROOT.to_owned(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )]);
    let mounts = match ctd.prepare(key, &image.chain_id, labels).await {
        Ok(m) => m,
        Err(s) if s.code() == Code::AlreadyExists => ctd.mounts(key).await?,
        Err(s) if s.code() == Code::NotFound => {
            return Err(ImageError::Invalid {
                reference: image.name.clone(),
                reason: format!(
                    "its snapshot {} is missing: ensure the image again",
                    image.chain_id
                ),
            })
        }
        Err(s) => {
            return Err(ctd_err(format!(
                "prepare snapshot {key} on {}",
                image.chain_id
            ))(s))
        }
    };
    if is_mountpoint(target)? {
        tracing::debug!(target = %target.display(), "rootfs already mounted");
        return Ok(());
    }
    std::fs::create_dir_all(target).map_err(io("create", target))?;
    let mounts = match writable {
        Some(w) => {
            for d in [w.join("upper"), w.join("work")] {
                std::fs::create_dir_all(&d).map_err(io("create", &d))?;
            }
            on_layer(mounts, w)
        }
        None => mounts,
    };
    let (key_owned, target_owned) = (key.to_owned(), target.to_owned());
    tokio::task::spawn_blocking(move || mount_all(&key_owned, &mounts, &target_owned))
        .await
        .map_err(|e| ImageError::Io {
            action: "mount",
            path: target.to_owned(),
            source: std::io::Error::other(e),
        })??;
    tracing::info!(
        target = %target.display(),
        ms = started.elapsed().as_millis() as u64,
        "rootfs mounted"
    );
    Ok(())
}

/// Unmounts `target`, removes the snapshot `key` and the directory.
pub(crate) async fn release_rootfs(ctd: &Ctd, key: &str, target: &Path) -> Result<(), ImageError> {
    let t = target.to_owned();
    tokio::task::spawn_blocking(move || unmount_all(&t))
        .await
        .map_err(|e| ImageError::Io {
            action: "unmount",
            path: target.to_owned(),
            source: std::io::Error::other(e),
        })??;
    ctd.remove_snapshot(key).await?;
    match std::fs::remove_dir(target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", target)(e)),
    }
}

/// `mounts` with their writes going to `writable`'s `upper/` and `work/`: an overlay's
/// `upperdir` and `workdir` replaced; a bind mount of a snapshot without parents becomes an
/// overlay on it, read-only below.
fn on_layer(mounts: Vec<Mount>, writable: &Path) -> Vec<Mount> {
    let upper = format!("upperdir={}", writable.join("upper").display());
    let work = format!("workdir={}", writable.join("work").display());
    mounts
        .into_iter()
        .map(|m| {
            if m.r#type == "overlay" {
                let mut options: Vec<String> = m
                    .options
                    .iter()
                    .filter(|o| !o.starts_with("upperdir=") && !o.starts_with("workdir="))
                    .cloned()
                    .collect();
                options.extend([upper.clone(), work.clone()]);
                Mount { options, ..m }
            } else if m.r#type == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind") {
                let lower = format!("lowerdir={}", m.source);
                Mount {
                    r#type: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![lower, upper.clone(), work.clone()],
                    ..m
                }
            } else {
                m
            }
        })
        .collect()
}

/// Mount flags and filesystem data of containerd mount options.
fn parse_options(options: &[String]) -> (MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            _ => {
                data.push(o.clone());
                continue;
            }
        };
        flags |= set;
        flags &= !clear;
    }
    (flags, data)
}

fn mount_all(key: &str, mounts: &[Mount], target: &Path) -> Result<(), ImageError> {
    for m in mounts {
        let (flags, data) = parse_options(&m.options);
        let err = |source| ImageError::Mount {
            key: key.to_owned(),
            target: target.to_owned(),
            fstype: m.r#type.clone(),
            source,
        };
        if m.r#type == "bind" || flags.contains(MsFlags::MS_BIND) {
            let base = flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
            nix::mount::mount(
                Some(m.source.as_str()),
                target,
                None::<&str>,
                base | MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(err)?;
            let rest = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
            if !rest.is_empty() {
                nix::mount::mount(
                    None::<&str>,
                    target,
                    None::<&str>,
                    rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    None::<&str>,
                )
                .map_err(err)?;
            }
        } else {
            let data = data.join(",");
            nix::mount::mount(
                Some(m.source.as_str()),
                target,
                Some(m.r#type.as_str()),
                flags,
                (!data.is_empty()).then_some(data.as_str()),
            )
            .map_err(err)?;
        }
    }
    Ok(())
}

/// Unmounts everything mounted on `target` (lazily when busy).
fn unmount_all(target: &Path) -> Result<(), ImageError> {
    for _ in 0..32 {
        if !is_mountpoint(target)? {
            return Ok(());
        }
        match nix::mount::umount2(target, MntFlags::empty()) {
            Ok(()) => {}
            Err(Errno::EBUSY) => {
                tracing::warn!(target = %target.display(), "rootfs busy: detaching it lazily");
                nix::mount::umount2(target, MntFlags::MNT_DETACH).map_err(|source| {
                    ImageError::Unmount {
                        target: target.to_owned(),
                        source,
                    }
                })?;
            }
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(source) => {
                return Err(ImageError::Unmount {
                    target: target.to_owned(),
                    source,
                })
            }
        }
    }
    Err(ImageError::Unmount {
        target: target.to_owned(),
        source: Errno::EBUSY,
    })
}

/// Whether `path` is a mount point (per `/proc/self/mountinfo`). A missing path is not.
pub(crate) fn is_mountpoint(path: &Path) -> Result<bool, ImageError> {
    let path = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("resolve", path)(e)),
    };
    let info = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(info).map_err(io("read", info))?;
    let found = mount_points(&text).any(|p| p == path);
    Ok(found)
}

/// The mount points listed in a mountinfo text.
fn mount_points(mountinfo: &str) -> impl Iterator<Item = PathBuf> + '_ {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let (f, d) = parse_options(&s(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l1:/l2",
        ]));
        assert!(f.is_empty());
        assert_eq!(
            d.join(","),
            "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2"
        );
        let (f, d) = parse_options(&s(&["ro", "rbind"]));
        assert_eq!(f, MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(d.is_empty());
        let (f, _) = parse_options(&s(&["ro", "rw", "nosuid"]));
        assert_eq!(f, MsFlags::MS_NOSUID);
    }

    #[test]
    fn on_a_layer_the_writes_go_to_the_layer() {
        let overlay = Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            options: s(&[
                "index=off",
                "workdir=/s/2/work",
                "upperdir=/s/2/fs",
                "lowerdir=/s/1/fs",
            ]),
            ..Default::default()
        };
        let got = on_layer(vec![overlay], Path::new("/l/c1"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].r#type, "overlay");
        assert_eq!(
            got[0].options,
            s(&[
                "index=off",
                "lowerdir=/s/1/fs",
                "upperdir=/l/c1/upper",
                "workdir=/l/c1/work"
            ])
        );
        let bind = Mount {
            r#type: "bind".into(),
            source: "/s/3/fs".into(),
            options: s(&["rbind", "rw"]),
            ..Default::default()
        };
        let got = on_layer(vec![bind], Path::new("/l/c2"));
        assert_eq!(got[0].r#type, "overlay");
        assert_eq!(
            got[0].options,
            s(&[
                "lowerdir=/s/3/fs",
                "upperdir=/l/c2/upper",
                "workdir=/l/c2/work"
            ])
        );
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        let text = "36 35 98:0 / /mnt/a\\040b rw,noatime shared:1 - ext4 /dev/root rw\n\
                    37 35 0:5 / /proc rw - proc proc rw\n";
        let v: Vec<PathBuf> = mount_points(text).collect();
        assert_eq!(v, [PathBuf::from("/mnt/a b"), PathBuf::from("/proc")]);
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn root_is_a_mountpoint_and_a_missing_path_is_not() {
        assert!(is_mountpoint(Path::new("/")).unwrap());
        assert!(!is_mountpoint(Path::new("/nonexistent/zun-image-test")).unwrap());
    }
}
