//! What a capsule may leave on a host: its network namespace, cgroups (v1 and v2), mounts,
//! firewall rules, and volume files, mounts and loop devices. Each check panics when it cannot
//! look (a tool missing), so that "could not tell" never reads as "clean".

use std::path::{Path, PathBuf};

use crate::cmd::required_output;

/// The mount points of this process's mount namespace, from `/proc/self/mountinfo` (paths
/// under the tests' directories have no characters the kernel escapes).
pub fn mount_points() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

/// The mount points of every cgroup hierarchy on this host, v1 controllers and v2 alike
/// (`/sys/fs/cgroup/<controller>` on a v1 or hybrid host, `/sys/fs/cgroup/unified` for the
/// hybrid's v2 part, `/sys/fs/cgroup` itself on a v2 host), from `/proc/self/mountinfo`.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    let roots: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            // `id parent maj:min root mount-point options... - fstype source super-options`
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let point = left.split_whitespace().nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(point))
        })
        .collect();
    assert!(
        !roots.is_empty(),
        "no cgroup hierarchy is mounted: cannot tell what a capsule left behind"
    );
    roots
}

/// What of capsule `uuid` is on this host, in words (empty: nothing): its network namespace
/// in `netns_dir`, its cgroups in every hierarchy (cgroup v1 and v2), mounts naming it, and
/// firewall rules naming it: the security-group table names its chains after the uuid with
/// `_` for `-`, and netavark's iptables rules carry the container id (its nftables rules name
/// only addresses and ports; the network tests check those). Panics if it cannot look (a
/// tool missing), never reads that as clean.
pub fn host_leftovers(uuid: &str, netns_dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    if netns_dir.join(format!("capsule-{uuid}")).exists() {
        left.push(format!("netns capsule-{uuid}"));
    }
    for root in cgroup_roots() {
        let p = root.join("capsule").join(uuid);
        if p.exists() {
            left.push(format!("cgroup {}", p.display()));
        }
    }
    let mounts =
        std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(uuid))
            .map(|m| format!("mount {m}")),
    );
    let id = uuid.replace('-', "");
    let chain = uuid.replace('-', "_");
    for (tool, args) in [
        ("iptables-save", &[][..]),
        ("nft", &["list", "ruleset"][..]),
    ] {
        left.extend(
            required_output(tool, args)
                .lines()
                .filter(|l| l.contains(&id) || l.contains(&chain))
                .map(|l| format!("{tool}: {l}")),
        );
    }
    left
}

/// Volume state on this host under `dir` (a compute host's volume directory) that does not
/// belong to a volume in `keep`: files, mounts and loop devices, in words (empty: none).
pub fn volume_leftovers(dir: &Path, keep: &[String]) -> Vec<String> {
    let kept = |name: &str| keep.iter().any(|k| name.contains(k.as_str()));
    let mut left = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "mnt" && !kept(&name) {
            left.push(format!("file {}", e.path().display()));
        }
    }
    for e in std::fs::read_dir(dir.join("mnt"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !kept(&name) {
            left.push(format!("mount point {}", e.path().display()));
        }
    }
    let prefix = dir.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&prefix) && !kept(l))
            .map(|m| format!("mount {m}")),
    );
    let loops = crate::run(
        "losetup",
        &["--list", "--noheadings", "--output", "NAME,BACK-FILE"],
    )
    .unwrap_or_default();
    left.extend(
        loops
            .lines()
            .filter(|l| l.contains(&prefix) && !kept(l))
            .map(|l| format!("loop device {}", l.trim())),
    );
    left
}
