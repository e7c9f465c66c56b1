//! A container's resource figures as the host reads them, for `stats` and the metrics: CPU time,
//! working set and limit, block I/O from its cgroup (v1 or v2); network bytes from its capsule's
//! network namespace (`/proc/<pid>/net/dev` of the sandbox).

use std::path::PathBuf;

use crate::shim::cgroup::Hierarchy;

/// The figures of one cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Figures {
    /// CPU time, nanoseconds (`None`: no CPU accounting).
    pub cpu_ns: Option<u64>,
    /// Memory in use less the inactive file cache, bytes.
    pub memory_working_set: u64,
    /// The memory limit, bytes (the host's memory when unlimited or unknown).
    pub memory_limit: u64,
    /// Bytes read from block devices.
    pub block_read: u64,
    /// Bytes written to block devices.
    pub block_write: u64,
}

fn controller<'a>(h: &'a [Hierarchy], name: &str) -> Option<&'a Hierarchy> {
    h.iter()
        .find(|h| !h.unified && h.options.iter().any(|o| o == name))
        .or_else(|| {
            // cgroup v2 only when it is the only one with controllers.
            (!h.iter()
                .any(|h| !h.unified && !h.options.iter().any(|o| o.starts_with("name="))))
            .then(|| h.iter().find(|h| h.unified))
            .flatten()
        })
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `key value` lines.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// CPU time of cgroup `rel` (relative to the hierarchies' roots), nanoseconds.
pub(super) fn cpu_usage_ns(h: &[Hierarchy], rel: &str) -> Option<u64> {
    let c = controller(h, "cpuacct")?;
    let dir = c.mount.join(rel);
    if c.unified {
        keyed(&read(dir.join("cpu.stat")), "usage_usec").map(|u| u * 1000)
    } else {
        read(dir.join("cpuacct.usage")).trim().parse().ok()
    }
}

/// The host's memory, bytes (0 if unknown).
pub(super) fn host_memory() -> u64 {
    read("/proc/meminfo".into())
        .lines()
        .find_map(|l| {
            let kib = l.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB");
            kib.trim().parse::<u64>().ok().map(|k| k * 1024)
        })
        .unwrap_or(0)
}

/// Every figure of cgroup `rel` but CPU's (which `stats` samples twice), on a host with
/// `host` bytes of memory.
pub(super) fn read_figures(h: &[Hierarchy], rel: &str, host: u64) -> Figures {
    let mut f = Figures {
        memory_limit: host,
        ..Figures::default()
    };
    if let Some(m) = controller(h, "memory") {
        let dir = m.mount.join(rel);
        let stat = read(dir.join("memory.stat"));
        let (usage, inactive, limit) = if m.unified {
            (
                read(dir.join("memory.current")).trim().parse::<u64>().ok(),
                keyed(&stat, "inactive_file"),
                read(dir.join("memory.max")).trim().parse::<u64>().ok(),
            )
        } else {
            (
                read(dir.join("memory.usage_in_bytes"))
                    .trim()
                    .parse::<u64>()
                    .ok(),
                keyed(&stat, "total_inactive_file"),
                read(dir.join("memory.limit_in_bytes"))
                    .trim()
                    .parse::<u64>()
                    .ok(),
            )
        };
        f.memory_working_set = usage.unwrap_or(0).saturating_sub(inactive.unwrap_or(0));
        if let Some(l) = limit.filter(|&l| host == 0 || l < host) {
            f.memory_limit = l;
        }
    }
    if let Some(b) = controller(h, "blkio").or_else(|| controller(h, "io")) {
        let dir = b.mount.join(rel);
        if b.unified {
            for l in read(dir.join("io.stat")).lines() {
                for w in l.split_whitespace() {
                    if let Some(v) = w.strip_prefix("rbytes=") {
                        f.block_read += v.parse::<u64>().unwrap_or(0);
                    } else if let Some(v) = w.strip_prefix("wbytes=") {
                        f.block_write += v.parse::<u64>().unwrap_or(0);
                    }
                }
            }
        } else {
            for l in read(dir.join("blkio.throttle.io_service_bytes")).lines() {
                let w: Vec<&str> = l.split_whitespace().collect();
                if let [_, op, v] = w[..] {
                    let v = v.parse::<u64>().unwrap_or(0);
                    match op {
                        "Read" => f.block_read += v,
                        "Write" => f.block_write += v,
                        _ => {}
                    }
                }
            }
        }
    }
    f
}

/// Bytes received and sent in the network namespace of process `pid`, loopback left out.
pub(super) fn network_of(pid: i32) -> (u64, u64) {
    net_dev(&read(format!("/proc/{pid}/net/dev").into()))
}

/// Bytes received and sent on every interface but `lo`, from `/proc/<pid>/net/dev`.
pub(super) fn net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0, 0);
    for l in text.lines().skip(2) {
        let Some((iface, rest)) = l.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_figures_skip_loopback() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets\n\
                    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n\
                    eth0: 2000 10 0 0 0 0 0 0 3000 12 0 0 0 0 0 0\n";
        assert_eq!(net_dev(text), (2000, 3000));
    }

    #[test]
    fn figures_of_a_v1_cgroup() {
        let root = std::env::temp_dir().join(format!("figures-{}", std::process::id()));
        let mem = root.join("memory/capsule/c1");
        let blk = root.join("blkio/capsule/c1");
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::create_dir_all(&blk).unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "10000\n").unwrap();
        std::fs::write(
            mem.join("memory.stat"),
            "cache 5\ntotal_inactive_file 3000\n",
        )
        .unwrap();
        std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(
            blk.join("blkio.throttle.io_service_bytes"),
            "8:0 Read 100\n8:0 Write 20\n8:16 Read 1\nTotal 121\n",
        )
        .unwrap();
        let h = |name: &str| Hierarchy {
            mount: root.join(name),
            unified: false,
            options: vec![name.to_owned()],
        };
        let hs = [h("memory"), h("blkio")];
        let f = read_figures(&hs, "capsule/c1", 1 << 30);
        assert_eq!(f.memory_working_set, 7000);
        assert_eq!(f.memory_limit, 1 << 30, "unlimited: the host's memory");
        assert_eq!((f.block_read, f.block_write), (101, 20));
        std::fs::write(mem.join("memory.limit_in_bytes"), "4096\n").unwrap();
        assert_eq!(read_figures(&hs, "capsule/c1", 1 << 30).memory_limit, 4096);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
