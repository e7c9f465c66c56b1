//! `top` and `stats` of a running container, read from the host as `docker top` and
//! `docker stats` do: `ps` run on the host (its own, trusted binary) and filtered to the pids
//! of the container's cgroup (exec'd processes included), and the figures of that cgroup and of
//! the capsule's network namespace.

use std::time::{Duration, Instant};

use capsule_types::rpc::{ContainerReply, ContainerStats};

use super::figures;
use super::operate::Target;
use crate::shim::cgroup;

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
    let u0 = figures::cpu_usage_ns(&h, rel);
    std::thread::sleep(CPU_SAMPLE);
    let u1 = figures::cpu_usage_ns(&h, rel);
    if let (Some(a), Some(b)) = (u0, u1) {
        let wall = t0.elapsed().as_nanos().max(1) as f64;
        s.cpu_percent = (b.saturating_sub(a) as f64) / wall * 100.0;
    }
    let f = figures::read_figures(&h, rel, figures::host_memory());
    s.memory_usage_bytes = f.memory_working_set;
    s.memory_limit_bytes = f.memory_limit;
    s.block_read_bytes = f.block_read;
    s.block_write_bytes = f.block_write;
    if let Some(pid) = target.sandbox_pid {
        (s.network_rx_bytes, s.network_tx_bytes) = figures::network_of(pid);
    }
    ContainerReply::Stats { stats: s }
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
}
