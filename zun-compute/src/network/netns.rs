//! Named network namespaces the way `ip netns` keeps them: a file in a shared-mount directory
//! with the namespace bind-mounted onto it. Creating one unshares on a dedicated thread that
//! then exits, so no thread of the caller's (tokio) pool ever changes namespace. Blocking.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

/// Which step failed, and why.
#[derive(Debug)]
pub(crate) struct NetnsFailure {
    /// What was being done (`"create"`, `"mount"`, ...).
    pub action: &'static str,
    /// Why.
    pub source: io::Error,
}

fn fail(action: &'static str) -> impl FnOnce(io::Error) -> NetnsFailure {
    move |source| NetnsFailure { action, source }
}

fn fail_errno(action: &'static str) -> impl FnOnce(Errno) -> NetnsFailure {
    move |errno| NetnsFailure {
        action,
        source: errno.into(),
    }
}

/// Serializes `ensure_shared_dir`, so two threads never both bind-mount a directory onto itself.
static SHARED_DIR_LOCK: Mutex<()> = Mutex::new(());

/// Makes `dir` exist and be a shared mount point (as `ip netns add` does: if it is not a mount
/// point, bind-mount it onto itself first), so namespace mounts made in it propagate to mount
/// namespaces created later (containers) and their unmounts propagate too.
fn ensure_shared_dir(dir: &Path) -> Result<(), NetnsFailure> {
    let _serial = SHARED_DIR_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    fs::create_dir_all(dir).map_err(fail("create the directory of"))?;
    let shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => {}
        Err(Errno::EINVAL) => {
            // Not a mount point yet.
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(fail_errno("bind-mount the directory of"))?;
            shared().map_err(fail_errno("make shared the directory of"))?;
        }
        Err(e) => return Err(fail_errno("make shared the directory of")(e)),
    }
    Ok(())
}

/// Whether `path` is a mounted namespace file (nsfs).
pub(crate) fn is_netns(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Creates the named namespace `path` (in its parent directory). An existing namespace there is
/// kept as is.
pub(crate) fn create(path: &Path) -> Result<(), NetnsFailure> {
    if is_netns(path) {
        return Ok(());
    }
    let dir = path.parent().ok_or_else(|| NetnsFailure {
        action: "find the directory of",
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    ensure_shared_dir(dir)?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(fail("create the file of"))?;
    let target = path.to_owned();
    let joined = std::thread::Builder::new()
        .name("netns-create".into())
        .spawn(move || -> Result<(), NetnsFailure> {
            // This thread alone moves to the new namespace; it ends right after, and the bind
            // mount keeps the namespace alive.
            unshare(CloneFlags::CLONE_NEWNET).map_err(fail_errno("unshare"))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(fail_errno("bind-mount"))
        })
        .map_err(fail("start a thread to create"))?
        .join();
    let result = joined.unwrap_or_else(|_| {
        Err(NetnsFailure {
            action: "create (thread panicked)",
            source: io::Error::other("panic"),
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Deletes the named namespace `path`: detaches its mount and removes the file. Absent is fine.
pub(crate) fn delete(path: &Path) -> Result<(), NetnsFailure> {
    match umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a file left by a failed create); ENOENT: already gone.
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(fail_errno("unmount")(e)),
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(fail("remove the file of")(e)),
        _ => Ok(()),
    }
}

/// The names of the network interfaces inside namespace `path` (read from
/// `/proc/thread-self/net/dev` on a thread that joined it and then exits).
pub(crate) fn interfaces(path: &Path) -> Result<Vec<String>, NetnsFailure> {
    let ns = File::open(path).map_err(fail("open"))?;
    std::thread::Builder::new()
        .name("netns-inspect".into())
        .spawn(move || -> Result<Vec<String>, NetnsFailure> {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(fail_errno("enter"))?;
            let dev = fs::read_to_string("/proc/thread-self/net/dev")
                .map_err(fail("list the interfaces of"))?;
            Ok(parse_net_dev(&dev))
        })
        .map_err(fail("start a thread to inspect"))?
        .join()
        .unwrap_or_else(|_| {
            Err(NetnsFailure {
                action: "inspect (thread panicked)",
                source: io::Error::other("panic"),
            })
        })
}

/// Puts a placeholder interface `name` (one end of a veth pair whose other end stays inside
/// too) in namespace `path`, for a teardown that deletes `name` by name: when a teardown cut
/// short already took the real one, the next can then run to its end. Uses `nsenter` and `ip`.
pub(crate) fn add_placeholder(path: &Path, name: &str) -> Result<(), NetnsFailure> {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", path.display()))
        .args(["ip", "link", "add", name, "type", "veth", "peer", "name"])
        .arg(PLACEHOLDER_PEER)
        .output()
        .map_err(fail("run nsenter ip link add in"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetnsFailure {
            action: "add a placeholder interface in",
            source: io::Error::other(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        })
    }
}

/// The name of the placeholder's other end (at most 15 bytes, as every interface name).
const PLACEHOLDER_PEER: &str = "zun-placeholder";

/// Interface names from the text of `/proc/net/dev` (two header lines, then `name: counters`).
fn parse_net_dev(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_dev() {
        let text = "Inter-|   Receive    |  Transmit\n face |bytes    packets|bytes\n    lo: 0 0 0\n  eth0: 1 2 3\n";
        assert_eq!(parse_net_dev(text), vec!["lo", "eth0"]);
    }

    #[test]
    fn a_plain_file_is_not_a_netns() {
        assert!(!is_netns(Path::new("/proc/self/status")));
        assert!(!is_netns(Path::new("/nonexistent/netns")));
    }
}
