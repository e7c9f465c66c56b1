//! `top` and `stats` of a running container, read from the host as `docker top` and
//! `docker stats` do: `ps` run on the host (its own, trusted binary) and filtered to the pids
//! of the container's cgroup (exec'd processes included), and the figures of that cgroup and of
//! the capsule's network namespace.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use capsule_types::rpc::{ContainerReply, ContainerStats};

use super::operate::Target;
use crate::shim::cgroup::{self, Hierarchy};

/// Most `ps` arguments.
const MAX_PS_ARGS: usize = 16;
/// Between the two CPU samples.
const CPU_SAMPLE: Duration = Duration::from_millis(100);

/// Checks `ps` arguments: words of `[A-Za-z0-9,=-]` only, a bounded count.
pub(crate) fn ps_words(args: Option<&str>) -> Result<Vec<String>, String> {
    let args = args
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("-ef");
    let words: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    if words.len() > MAX_PS_ARGS {
        return Err(format!("At most {MAX_PS_ARGS} ps arguments are allowed."));
    }
    if let Some(w) = words.iter().find(|w| {
        w.len() > 64
            || !w
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b'=' || b == b'-')
    }) {
        return Err(format!(
            "Invalid ps argument {w:?}: only letters, digits, ',', '=' and '-' are allowed."
        ));
    }
    Ok(words)
}

pub(super) fn top(target: &Target, ps_args: Option<&str>) -> ContainerReply {
    let words = match ps_words(ps_args) {
        Ok(w) => w,
        Err(message) => return ContainerReply::Invalid { message },
    };
    let pids = match cgroup::hierarchies() {
        Ok(h) => cgroup::tree_pids(&h, &target.plan.cgroup_of(&target.name)),
        Err(e) => {
            return ContainerReply::Unavailable {
                message: format!("Cannot read the cgroups: {e}"),
            }
        }
    };
    let out = match std::process::Command::new("ps").args(&words).output() {
        Ok(o) => o,
        Err(e) => {
            return ContainerReply::Unavailable {
                message: format!("Cannot run ps: {e}"),
            }
        }
    };
    if !out.status.success() {
        return ContainerReply::Invalid {
            message: format!(
                "ps {} failed: {}",
                words.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        };
    }
    match filter_ps(&String::from_utf8_lossy(&out.stdout), &pids) {
        Ok((titles, processes)) => ContainerReply::Top { titles, processes },
        Err(message) => ContainerReply::Invalid { message },
    }
}

/// `ps` output kept to the rows of `pids`: (titles, rows). The last column (the command) may
/// hold spaces; the others do not.
pub(super) fn filter_ps(
    text: &str,
    pids: &[i32],
) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or("The ps arguments must list a PID column.")?;
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        rows.push(row);
    }
    Ok((titles, rows))
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

fn cpu_usage_ns(h: &[Hierarchy], rel: &str) -> Option<u64> {
    let c = controller(h, "cpuacct")?;
    let dir = c.mount.join(rel);
    if c.unified {
        keyed(&read(dir.join("cpu.stat")), "usage_usec").map(|u| u * 1000)
    } else {
        read(dir.join("cpuacct.usage")).trim().parse().ok()
    }
}

fn host_memory() -> u64 {
    read("/proc/meminfo".into())
        .lines()
        .find_map(|l| {
            let kib = l.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB");
            kib.trim().parse::<u64>().ok().map(|k| k * 1024)
        })
        .unwrap_or(0)
}

pub(super) fn stats(target: &Target) -> ContainerReply {
    let h = match cgroup::hierarchies() {
        Ok(h) => h,
        Err(e) => {
            return ContainerReply::Unavailable {
                message: format!("Cannot read the cgroups: {e}"),
            }
        }
    };
    let cg = target.plan.cgroup_of(&target.name);
    let rel = cg.trim_start_matches('/');
    let mut s = ContainerStats::default();

    let t0 = Instant::now();
    let u0 = cpu_usage_ns(&h, rel);
    std::thread::sleep(CPU_SAMPLE);
    let u1 = cpu_usage_ns(&h, rel);
    if let (Some(a), Some(b)) = (u0, u1) {
        let wall = t0.elapsed().as_nanos().max(1) as f64;
        s.cpu_percent = (b.saturating_sub(a) as f64) / wall * 100.0;
    }

    let host = host_memory();
    if let Some(m) = controller(&h, "memory") {
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
        s.memory_usage_bytes = usage.unwrap_or(0).saturating_sub(inactive.unwrap_or(0));
        s.memory_limit_bytes = match limit {
            Some(l) if host == 0 || l < host => l,
            _ => host,
        };
    } else {
        s.memory_limit_bytes = host;
    }

    if let Some(b) = controller(&h, "blkio").or_else(|| controller(&h, "io")) {
        let dir = b.mount.join(rel);
        if b.unified {
            for l in read(dir.join("io.stat")).lines() {
                for f in l.split_whitespace() {
                    if let Some(v) = f.strip_prefix("rbytes=") {
                        s.block_read_bytes += v.parse::<u64>().unwrap_or(0);
                    } else if let Some(v) = f.strip_prefix("wbytes=") {
                        s.block_write_bytes += v.parse::<u64>().unwrap_or(0);
                    }
                }
            }
        } else {
            for l in read(dir.join("blkio.throttle.io_service_bytes")).lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if let [_, op, v] = f[..] {
                    let v = v.parse::<u64>().unwrap_or(0);
                    match op {
                        "Read" => s.block_read_bytes += v,
                        "Write" => s.block_write_bytes += v,
                        _ => {}
                    }
                }
            }
        }
    }

    if let Some(pid) = target.sandbox_pid {
        let (rx, tx) = net_dev(&read(format!("/proc/{pid}/net/dev").into()));
        s.network_rx_bytes = rx;
        s.network_tx_bytes = tx;
    }
    ContainerReply::Stats { stats: s }
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
    fn ps_arguments_are_plain_words() {
        assert_eq!(ps_words(None).unwrap(), ["-ef"]);
        assert_eq!(ps_words(Some("aux")).unwrap(), ["aux"]);
        assert_eq!(ps_words(Some("-o pid,comm")).unwrap(), ["-o", "pid,comm"]);
        for bad in ["-ef; rm -rf /", "$(id)", "a|b", "`x`", "a>b"] {
            assert!(ps_words(Some(bad)).is_err(), "{bad}");
        }
        assert!(ps_words(Some(&"a ".repeat(17))).is_err());
    }

    #[test]
    fn ps_rows_are_kept_to_the_container() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 1 0 0 10:00 ? 00:00:01 /sbin/init\n\
                    root 42 1 0 10:00 ? 00:00:00 sleep 1000 now\n";
        let (titles, rows) = filter_ps(text, &[42]).unwrap();
        assert_eq!(titles.len(), 8);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], "42");
        assert_eq!(rows[0][7], "sleep 1000 now");
        assert!(filter_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn network_figures_skip_loopback() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets\n\
                    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n\
                    eth0: 2000 10 0 0 0 0 0 0 3000 12 0 0 0 0 0 0\n";
        assert_eq!(net_dev(text), (2000, 3000));
    }
}
