//! Copying files out of and into a container (`docker cp`'s archives). Every path is resolved
//! inside the container's root as the container sees it: `/proc/<pid>/root` while it runs
//! (its root filesystem and its volume mounts; held by a pidfd and checked to be in the
//! container's cgroup, so a pid reused by another process is never followed), else its root
//! filesystem on the host; through
//! `openat2(RESOLVE_IN_ROOT)` (the `pathrs` crate), so `..` and symlinks, absolute or not,
//! never reach the host. An archive to extract is read whole and checked before anything is
//! written: an entry that climbs out (`..`, an absolute name, a path through a symlink of the
//! same archive) or is not a file, directory or symlink refuses the whole archive.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use capsule_types::rpc::{ArchiveStat, ContainerReply};
use pathrs::flags::OpenFlags;
use pathrs::{InodeType, Root};

use super::operate::Target;

fn invalid(message: impl Into<String>) -> ContainerReply {
    ContainerReply::Invalid {
        message: message.into(),
    }
}

fn too_large(max: u64) -> ContainerReply {
    ContainerReply::TooLarge {
        message: format!("The archive is larger than this host's limit of {max} bytes."),
    }
}

/// The root of running process `pid` of the container (in `cgroup`), if `pid` is still that
/// process: a
/// pidfd pins the process first; its root is opened and its cgroup read; then, if the pinned
/// process is still alive, `/proc/<pid>` was it all along (a pid is reused only after its
/// process is gone), and its cgroup says it is the container's.
fn running_root(pid: i32, cgroup: &str) -> Result<std::fs::File, ContainerReply> {
    let changed = || ContainerReply::Unavailable {
        message: "The container's process changed while its files were opened; try again.".into(),
    };
    let unix_pid = rustix::process::Pid::from_raw(pid).ok_or_else(changed)?;
    let pidfd = rustix::process::pidfd_open(unix_pid, rustix::process::PidfdFlags::empty())
        .map_err(|_| changed())?;
    let root = open_dir(Path::new(&format!("/proc/{pid}/root")))?;
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut poll = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let exited = nix::poll::poll(&mut poll, nix::poll::PollTimeout::ZERO).map_err(|_| changed())?;
    if exited != 0 || !in_cgroup(&cgroups, cgroup) {
        return Err(changed());
    }
    Ok(root)
}

/// Whether `/proc/<pid>/cgroup` text places the process in cgroup `cg` (or below it), in
/// any hierarchy.
fn in_cgroup(text: &str, cg: &str) -> bool {
    let cg = cg.trim_end_matches('/');
    text.lines().any(|l| {
        l.splitn(3, ':').nth(2).is_some_and(|path| {
            path == cg || path.strip_prefix(cg).is_some_and(|r| r.starts_with('/'))
        })
    })
}

/// A directory opened as a path (`O_PATH`), following a magic link such as `/proc/<pid>/root`
/// once, on the host's own path.
fn open_dir(path: &Path) -> Result<std::fs::File, ContainerReply> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(path)
        .map_err(|e| ContainerReply::Unavailable {
            message: format!("Cannot open the container's root: {e}"),
        })
}

/// The container's root.
fn root(target: &Target) -> Result<Root, ContainerReply> {
    let path = match target.pid {
        Some(pid) => {
            let dir = running_root(pid, &target.plan.cgroup_of(&target.name))?;
            return Ok(Root::from_fd(std::os::fd::OwnedFd::from(dir)));
        }
        None => target
            .plan
            .containers
            .iter()
            .chain(&target.plan.init_containers)
            .find(|c| c.name == target.name)
            .map(|c| c.rootfs.clone())
            .ok_or_else(|| ContainerReply::NotFound {
                message: "The container has no root filesystem.".into(),
            })?,
    };
    // Opened here (`Root::open` would refuse `/proc/<pid>/root`, a magic link, and treats
    // both the same); everything below it is resolved in it.
    let dir = open_dir(&path)?;
    Ok(Root::from_fd(std::os::fd::OwnedFd::from(dir)))
}

/// A path inside the container: absolute, without NUL.
fn container_path(path: &str) -> Result<PathBuf, ContainerReply> {
    if !path.starts_with('/') || path.contains('\0') || path.len() > 4096 {
        return Err(invalid(format!("{path:?} is not an absolute path.")));
    }
    Ok(PathBuf::from(path))
}

/// Go's `os.FileMode` of `st` (what Docker's path stat carries).
fn go_mode(st: &nix::sys::stat::FileStat) -> u32 {
    let perm = st.st_mode & 0o777;
    let kind = st.st_mode & libc::S_IFMT;
    let mut m = perm;
    if kind == libc::S_IFDIR {
        m |= 1 << 31;
    } else if kind == libc::S_IFLNK {
        m |= 1 << 27;
    }
    if st.st_mode & libc::S_ISUID != 0 {
        m |= 1 << 23;
    }
    if st.st_mode & libc::S_ISGID != 0 {
        m |= 1 << 22;
    }
    if st.st_mode & libc::S_ISVTX != 0 {
        m |= 1 << 20;
    }
    m
}

pub(super) fn get(target: &Target, path: &str, max: u64) -> ContainerReply {
    match get_inner(target, path, max) {
        Ok(r) | Err(r) => r,
    }
}

fn get_inner(target: &Target, path: &str, max: u64) -> Result<ContainerReply, ContainerReply> {
    let path = container_path(path)?;
    let root = root(target)?;
    let not_found = |_| ContainerReply::NotFound {
        message: format!(
            "Could not find the file {} in the container.",
            path.display()
        ),
    };
    let handle = root.resolve_nofollow(&path).map_err(not_found)?;
    let st = nix::sys::stat::fstat(handle.as_fd().as_raw_fd()).map_err(|e| {
        ContainerReply::Unavailable {
            message: format!("Cannot stat {}: {e}", path.display()),
        }
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        root.readlink(&path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let stat = ArchiveStat {
        name: name.clone(),
        size: u64::try_from(st.st_size).unwrap_or(0),
        mode: go_mode(&st),
        mtime: chrono::DateTime::from_timestamp(st.st_mtime, 0)
            .unwrap_or_default()
            .to_rfc3339(),
        link_target,
    };
    let mut tar = tar::Builder::new(Bounded {
        data: Vec::new(),
        max,
    });
    tar.follow_symlinks(false);
    let arch_name = if name == "/" { ".".to_owned() } else { name };
    add(&root, &path, Path::new(&arch_name), &mut tar, 0).map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            too_large(max)
        } else {
            ContainerReply::Unavailable {
                message: format!("Cannot archive {}: {e}", path.display()),
            }
        }
    })?;
    let data = tar
        .into_inner()
        .map_err(|e| ContainerReply::Unavailable {
            message: format!("Cannot archive {}: {e}", path.display()),
        })?
        .data;
    Ok(ContainerReply::Archive {
        data: base64::engine::general_purpose::STANDARD.encode(data),
        stat,
    })
}

/// A buffer that refuses to grow past `max`.
struct Bounded {
    data: Vec<u8>,
    max: u64,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.data.len() + buf.len()) as u64 > self.max {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Adds `path` (in the container) as `name` (in the archive), directories recursively; never
/// follows a symlink.
fn add(
    root: &Root,
    path: &Path,
    name: &Path,
    tar: &mut tar::Builder<Bounded>,
    depth: usize,
) -> std::io::Result<()> {
    if depth > 64 {
        return Err(std::io::Error::other("directories nested too deep"));
    }
    let handle = root.resolve_nofollow(path).map_err(std::io::Error::other)?;
    let st = nix::sys::stat::fstat(handle.as_fd().as_raw_fd())?;
    let mut header = tar::Header::new_gnu();
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(u64::from(st.st_uid));
    header.set_gid(u64::from(st.st_gid));
    header.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, name, std::io::empty())?;
            let dir = handle
                .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
                .map_err(std::io::Error::other)?;
            let mut names: Vec<std::ffi::OsString> =
                std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()))?
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect();
            names.sort();
            for n in names {
                add(root, &path.join(&n), &name.join(&n), tar, depth + 1)?;
            }
        }
        libc::S_IFREG => {
            let file = handle
                .reopen(OpenFlags::O_RDONLY)
                .map_err(std::io::Error::other)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(u64::try_from(st.st_size).unwrap_or(0));
            tar.append_data(&mut header, name, file.take(st.st_size as u64))?;
        }
        libc::S_IFLNK => {
            let target = root.readlink(path).map_err(std::io::Error::other)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, name, target)?;
        }
        // Devices, fifos, sockets: not copied.
        _ => {}
    }
    Ok(())
}

/// One checked entry of an archive to extract.
#[derive(Debug)]
enum Item {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        data: Vec<u8>,
    },
    Symlink {
        target: PathBuf,
    },
}

/// The archive's entries, every one checked, or why it is refused.
fn check(bytes: &[u8]) -> Result<Vec<(PathBuf, Item)>, String> {
    let mut archive = tar::Archive::new(bytes);
    let mut items = Vec::new();
    let mut links: HashSet<PathBuf> = HashSet::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a tar archive: {e}"))?;
        let raw = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let mut rel = PathBuf::new();
        for c in raw.components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                        "entry {} leaves the destination directory",
                        raw.display()
                    ))
                }
            }
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        if rel.ancestors().skip(1).any(|a| links.contains(a)) {
            return Err(format!(
                "entry {} goes through a symbolic link of the same archive",
                raw.display()
            ));
        }
        let h = entry.header();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let item = match h.entry_type() {
            tar::EntryType::Directory => Item::Dir { mode },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let uid = h
                    .uid()
                    .ok()
                    .and_then(|u| u32::try_from(u).ok())
                    .unwrap_or(0);
                let gid = h
                    .gid()
                    .ok()
                    .and_then(|g| u32::try_from(g).ok())
                    .unwrap_or(0);
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| format!("cannot read entry {}: {e}", raw.display()))?;
                Item::File {
                    mode,
                    uid,
                    gid,
                    data,
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("bad link in entry {}: {e}", raw.display()))?
                    .ok_or_else(|| format!("entry {} is a link to nothing", raw.display()))?
                    .into_owned();
                links.insert(rel.clone());
                Item::Symlink { target }
            }
            other => {
                return Err(format!(
                    "entry {} is of a type that is not copied ({other:?})",
                    raw.display()
                ))
            }
        };
        items.push((rel, item));
    }
    Ok(items)
}

pub(super) fn put(target: &Target, path: &str, data: &str, max: u64) -> ContainerReply {
    if (data.len() as u64) / 4 * 3 > max {
        return too_large(max);
    }
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
        Ok(b) => b,
        Err(e) => return invalid(format!("The archive is not base64: {e}")),
    };
    if bytes.len() as u64 > max {
        return too_large(max);
    }
    let dest = match container_path(path) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items = match check(&bytes) {
        Ok(i) => i,
        Err(why) => return invalid(format!("Refused archive: {why}.")),
    };
    let root = match root(target) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match root.resolve(&dest) {
        Ok(h) => match nix::sys::stat::fstat(h.as_fd().as_raw_fd()) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
            _ => return invalid(format!("{path} is not a directory in the container.")),
        },
        Err(_) => {
            return ContainerReply::NotFound {
                message: format!("Could not find the directory {path} in the container."),
            }
        }
    }
    for (rel, item) in items {
        let full = dest.join(&rel);
        if let Err(e) = write_item(&root, &full, item) {
            return ContainerReply::Invalid {
                message: format!("Cannot write {}: {e}", full.display()),
            };
        }
    }
    ContainerReply::Done
}

fn write_item(root: &Root, full: &Path, item: Item) -> Result<(), String> {
    let parent = full.parent().unwrap_or(Path::new("/"));
    root.mkdir_all(parent, &std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    match item {
        Item::Dir { mode } => {
            root.mkdir_all(full, &std::fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string())?;
        }
        Item::File {
            mode,
            uid,
            gid,
            data,
        } => {
            // Whatever is there (a symlink included) is replaced, never followed.
            if let Ok(h) = root.resolve_nofollow(full) {
                let is_dir = nix::sys::stat::fstat(h.as_fd().as_raw_fd())
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
                if is_dir {
                    return Err("a directory is in the way".into());
                }
                root.remove_file(full).map_err(|e| e.to_string())?;
            }
            let mut f = root
                .create_file(
                    full,
                    OpenFlags::O_WRONLY | OpenFlags::O_EXCL | OpenFlags::O_NOFOLLOW,
                    &std::fs::Permissions::from_mode(mode),
                )
                .map_err(|e| e.to_string())?;
            f.write_all(&data).map_err(|e| e.to_string())?;
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string())?;
            let _ = nix::unistd::fchown(
                f.as_raw_fd(),
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            );
        }
        Item::Symlink { target } => {
            if root.resolve_nofollow(full).is_ok() {
                root.remove_file(full).map_err(|e| e.to_string())?;
            }
            root.create(full, &InodeType::Symlink(target))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Written raw: `append_data` itself refuses `..`, which is what we test.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    #[test]
    fn climbing_entries_refuse_the_archive() {
        for name in ["../evil", "a/../../evil", "/etc/evil"] {
            let a = archive(|b| file(b, name, b"x"));
            let e = check(&a).err().unwrap_or_else(|| panic!("{name} passed"));
            assert!(e.contains("leaves"), "{e}");
        }
        let a = archive(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "up", "/").unwrap();
            file(b, "up/etc/evil", b"x");
        });
        assert!(check(&a).unwrap_err().contains("symbolic link"));
        assert!(check(&[b'x'; 1024]).unwrap_err().contains("not a tar"));
    }

    #[test]
    fn cgroup_lines_place_a_process() {
        let text = "12:memory:/capsule/c1/web\n11:pids:/capsule/c1/web/exec-2\n0::/\n";
        assert!(in_cgroup(text, "/capsule/c1/web"));
        assert!(in_cgroup(
            "11:pids:/capsule/c1/web/exec-2\n",
            "/capsule/c1/web/"
        ));
        assert!(!in_cgroup(text, "/capsule/c1/we"));
        assert!(!in_cgroup(text, "/capsule/c2/web"));
        assert!(!in_cgroup("", "/capsule/c1/web"));
    }

    #[test]
    fn a_pid_outside_the_cgroup_or_gone_opens_no_root() {
        let me = i32::try_from(std::process::id()).unwrap();
        let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let my_cgroup = mine.lines().next().unwrap().splitn(3, ':').nth(2).unwrap();
        assert!(running_root(me, my_cgroup).is_ok());
        let refused = running_root(me, "/capsule/not-this-one/web").unwrap_err();
        assert!(
            matches!(&refused, ContainerReply::Unavailable { message } if message.contains("changed")),
            "{refused:?}"
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = i32::try_from(child.id()).unwrap();
        child.wait().unwrap();
        assert!(running_root(gone, my_cgroup).is_err());
    }

    #[test]
    fn plain_entries_pass() {
        let a = archive(|b| {
            file(b, "./dir/a.txt", b"hello");
            file(b, "b.txt", b"");
        });
        let items = check(&a).unwrap();
        let names: Vec<_> = items.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(names, ["dir/a.txt", "b.txt"]);
    }
}
