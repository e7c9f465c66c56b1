//! The cgroup work libcontainer leaves to us: finding every hierarchy, telling an OOM kill,
//! the limits of a capsule's (and of every capsule's) parent cgroup, and removing a capsule's
//! whole subtree (libcontainer removes a container's leaf, never its parents).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// Where it is mounted (e.g. `/sys/fs/cgroup/memory`).
    pub mount: PathBuf,
    /// cgroup v2.
    pub unified: bool,
    /// Its super options: the v1 controllers (`memory`, `cpu`, `name=systemd`, ...).
    pub options: Vec<String>,
}

/// The cgroup hierarchies mounted under `/sys/fs/cgroup`, from `/proc/self/mountinfo`.
pub(crate) fn hierarchies() -> io::Result<Vec<Hierarchy>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("");
        let _source = r.next();
        let options = r.next().unwrap_or("");
        let unified = match fstype {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        let mount = PathBuf::from(mount.replace("\\040", " "));
        if !mount.starts_with("/sys/fs/cgroup") {
            continue;
        }
        // A later mount on the same point hides the earlier one.
        out.retain(|h| h.mount != mount);
        out.push(Hierarchy {
            mount,
            unified,
            options: options.split(',').map(str::to_owned).collect(),
        });
    }
    out
}

/// The hierarchies with controllers: every v1 one but named ones (`name=systemd`), and the v2
/// one when it is the only one (a hybrid host's `unified` has no controller).
pub(crate) fn controller_mounts(hierarchies: &[Hierarchy]) -> Vec<PathBuf> {
    let v1: Vec<PathBuf> = hierarchies
        .iter()
        .filter(|h| !h.unified && !h.options.iter().any(|o| o.starts_with("name=")))
        .map(|h| h.mount.clone())
        .collect();
    if !v1.is_empty() {
        return v1;
    }
    hierarchies
        .iter()
        .filter(|h| h.unified)
        .map(|h| h.mount.clone())
        .collect()
}

fn rel(cgroup: &str) -> &Path {
    Path::new(cgroup.trim_start_matches('/'))
}

/// The hierarchy of controller `name`: the v1 one that has it, else the v2 one if it offers
/// it (`cgroup.controllers`).
fn controller<'a>(hierarchies: &'a [Hierarchy], name: &str) -> Option<&'a Hierarchy> {
    hierarchies
        .iter()
        .find(|h| !h.unified && h.options.iter().any(|o| o == name))
        .or_else(|| {
            hierarchies.iter().find(|h| {
                h.unified
                    && std::fs::read_to_string(h.mount.join("cgroup.controllers"))
                        .is_ok_and(|c| c.split_whitespace().any(|c| c == name))
            })
        })
}

/// Makes `cgroup` in controller `name`'s hierarchy (on cgroup v2, with the controller enabled
/// for it in every parent) and writes `value` to its `file`.
fn set_limit(
    hierarchies: &[Hierarchy],
    name: &str,
    cgroup: &str,
    file: &str,
    value: &str,
) -> io::Result<PathBuf> {
    let h = controller(hierarchies, name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("no cgroup hierarchy has the {name} controller"),
        )
    })?;
    let r = rel(cgroup);
    if r.as_os_str().is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to limit the root cgroup ({cgroup:?})"),
        ));
    }
    if h.unified {
        let mut dir = h.mount.clone();
        for part in r.iter() {
            let control = dir.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&control)?;
            if !enabled.split_whitespace().any(|c| c == name) {
                std::fs::write(&control, format!("+{name}"))?;
            }
            dir.push(part);
            std::fs::create_dir_all(&dir)?;
        }
    }
    let dir = h.mount.join(r);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file);
    std::fs::write(&path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// Sets `pids.max` of `cgroup` (made if missing): every process and thread below it counts.
pub(crate) fn limit_pids(hierarchies: &[Hierarchy], cgroup: &str, max: u64) -> io::Result<()> {
    set_limit(hierarchies, "pids", cgroup, "pids.max", &max.to_string()).map(drop)
}

/// Sets the memory limit of `cgroup` (made if missing; `memory.limit_in_bytes` on v1,
/// `memory.max` on v2); returns the file written.
pub(crate) fn limit_memory(
    hierarchies: &[Hierarchy],
    cgroup: &str,
    bytes: u64,
) -> io::Result<PathBuf> {
    let file = match controller(hierarchies, "memory") {
        Some(h) if h.unified => "memory.max",
        _ => "memory.limit_in_bytes",
    };
    set_limit(hierarchies, "memory", cgroup, file, &bytes.to_string())
}

/// Whether the memory controller killed a process of `cgroup` for lack of memory.
pub(crate) fn oom_killed(hierarchies: &[Hierarchy], cgroup: &str) -> bool {
    let count = |path: PathBuf, key: &str| -> u64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == key).then(|| v.trim().parse().ok())?
                })
            })
            .unwrap_or(0)
    };
    hierarchies.iter().any(|h| {
        let dir = h.mount.join(rel(cgroup));
        if h.unified {
            count(dir.join("memory.events"), "oom_kill") > 0
        } else if h.options.iter().any(|o| o == "memory") {
            count(dir.join("memory.oom_control"), "oom_kill") > 0
        } else {
            false
        }
    })
}

/// Whether the memory controller of `hierarchies` can limit swap (`memory.memsw.*`).
pub(crate) fn has_memsw(hierarchies: &[Hierarchy]) -> bool {
    hierarchies
        .iter()
        .filter(|h| !h.unified && h.options.iter().any(|o| o == "memory"))
        .any(|h| h.mount.join("memory.memsw.limit_in_bytes").exists())
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Sends `signal` to every process of `cgroup` and of the cgroups below it, in every hierarchy;
/// returns how many processes there were.
pub(crate) fn signal_tree(hierarchies: &[Hierarchy], cgroup: &str, signal: Signal) -> usize {
    let mut pids = std::collections::BTreeSet::new();
    for h in hierarchies {
        collect_pids(&h.mount.join(rel(cgroup)), &mut pids);
    }
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), signal);
    }
    pids.len()
}

fn collect_pids(dir: &Path, pids: &mut std::collections::BTreeSet<i32>) {
    if !dir.is_dir() {
        return;
    }
    pids.extend(procs(dir));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), pids);
            }
        }
    }
}

/// Whether `cgroup` exists in any hierarchy.
pub(crate) fn exists(hierarchies: &[Hierarchy], cgroup: &str) -> bool {
    hierarchies
        .iter()
        .any(|h| h.mount.join(rel(cgroup)).is_dir())
}

/// The processes of `cgroup` and of the cgroups below it (the first hierarchy that has it).
pub(crate) fn tree_pids(hierarchies: &[Hierarchy], cgroup: &str) -> Vec<i32> {
    let mut pids = std::collections::BTreeSet::new();
    for h in hierarchies {
        let dir = h.mount.join(rel(cgroup));
        if dir.is_dir() {
            collect_pids(&dir, &mut pids);
            break;
        }
    }
    pids.into_iter().collect()
}

/// Removes `cgroup` and everything below it in every hierarchy, killing whatever still runs in
/// it; waits up to `patience` per directory for dying processes to leave. Collects every failure.
/// `cgroup` must not be a hierarchy's root (plans are validated for that).
pub(crate) fn remove_tree(
    hierarchies: &[Hierarchy],
    cgroup: &str,
    patience: Duration,
) -> Result<(), Vec<String>> {
    let r = rel(cgroup);
    if r.as_os_str().is_empty() {
        return Err(vec![format!(
            "refusing to remove the root cgroup ({cgroup:?})"
        )]);
    }
    let mut errors = Vec::new();
    for h in hierarchies {
        let dir = h.mount.join(r);
        if dir.is_dir() {
            remove_dir_tree(&dir, patience, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn remove_dir_tree(dir: &Path, patience: Duration, errors: &mut Vec<String>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_dir_tree(&e.path(), patience, errors);
            }
        }
    }
    let start = Instant::now();
    loop {
        for pid in procs(dir) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                errors.push(format!("cannot remove cgroup {}: {e}", dir.display()));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
24 1 0:22 / /sys rw,nosuid - sysfs sysfs rw
30 24 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
40 1 0:31 / /mnt/elsewhere rw - cgroup cgroup rw,pids
";

    #[test]
    fn mountinfo_gives_the_hierarchies_under_sys_fs_cgroup() {
        let h = parse_mountinfo(MOUNTINFO);
        let mounts: Vec<_> = h.iter().map(|h| h.mount.to_str().unwrap()).collect();
        assert_eq!(
            mounts,
            [
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified"
            ]
        );
        assert!(h[1].options.contains(&"memory".to_owned()));
        assert!(h[3].unified);
        let c = controller_mounts(&h);
        assert_eq!(
            c,
            [
                PathBuf::from("/sys/fs/cgroup/cpu"),
                PathBuf::from("/sys/fs/cgroup/memory")
            ]
        );
        let v2 = parse_mountinfo("30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(controller_mounts(&v2), [PathBuf::from("/sys/fs/cgroup")]);
    }

    #[test]
    fn limits_go_to_the_controllers_hierarchy_and_never_to_the_root() {
        let h = parse_mountinfo(MOUNTINFO);
        assert_eq!(
            controller(&h, "memory").map(|h| h.mount.clone()),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        // The pids hierarchy of MOUNTINFO is not under /sys/fs/cgroup.
        assert!(controller(&h, "pids").is_none());
        let err = limit_pids(&h, "/capsule/x", 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
        let err = limit_memory(&h, "/", 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    fn the_root_is_never_removed() {
        let h = parse_mountinfo(MOUNTINFO);
        assert!(remove_tree(&h, "/", Duration::ZERO).is_err());
        assert!(remove_tree(&h, "", Duration::ZERO).is_err());
    }
}
