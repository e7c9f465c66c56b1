//! A capsule's host-side bounds, for real (root, libcontainer, cgroups, busybox containers):
//! its pids limit refuses a fork beyond it, its containers' logs rotate at their size with
//! their file count kept while a follower reads on, and `CAP_NET_RAW` reaches only the
//! container that has it in its plan. Each capsule is a [`Capsule`] guard that shuts its shim
//! down and checks the host (cgroups, processes, mounts) even when the test fails.

mod shim_support;

use std::path::Path;
use std::time::{Duration, Instant};

use capsule_types::rpc::LogQuery;
use shim_support::*;
use zun_compute::shim::{self, CapsuleLimits, ContainerState, LogRotation, Phase, RestartPolicy};

fn running(s: &shim::Status) -> bool {
    s.phase == Phase::Running
        && s.containers
            .iter()
            .all(|c| c.state == ContainerState::Running)
}

#[tokio::test]
async fn the_pids_limit_is_set_and_a_fork_beyond_it_is_refused() {
    let cap = Capsule::new();
    // 40 sleepers wanted, 16 pids allowed (the sandbox and the shells count): the inner shell
    // dies of its refused fork, the outer one says so and becomes a sleeper itself (`exec`
    // needs no new process).
    let bomb = cap.container(
        "bomb",
        "sh -c 'n=0; while [ $n -lt 40 ]; do sleep 600 & n=$((n+1)); done'; \
         echo spawned-$?; exec sleep 600",
    );
    let mut plan = cap.plan(RestartPolicy::Never, vec![], vec![bomb]);
    plan.limits = CapsuleLimits {
        pids_max: Some(16),
        logs: None,
    };
    cap.spawn(&plan).await;
    let log = cap.wait_log("bomb", "spawned").await;
    let pids = Path::new("/sys/fs/cgroup/pids").join(&cap.cgroup);
    let max = std::fs::read_to_string(pids.join("pids.max")).unwrap();
    assert_eq!(max.trim(), "16", "pids.max of the capsule's cgroup");
    let current: u64 = std::fs::read_to_string(pids.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        (14..=16).contains(&current),
        "{current} processes: the limit of 16 was reached, never passed"
    );
    assert!(
        log.contains("can't fork"),
        "the shell was refused its forks beyond the limit:\n{log}"
    );
}

/// A follower as `capsule logs --follow` (`capsule_types::log_cursor`): what it printed.
#[derive(Default)]
struct Follower {
    cursor: capsule_types::log_cursor::LogCursor,
    printed: Vec<String>,
}

impl Follower {
    fn take(&mut self, text: &str) {
        let new = self.cursor.new_lines(text);
        self.printed
            .extend(new.into_iter().map(|(_, rest)| rest.to_owned()));
    }

    fn query(&self) -> LogQuery {
        LogQuery {
            timestamps: true,
            since: self.cursor.since().map(|t| t.parse().unwrap()),
            ..LogQuery::default()
        }
    }
}

#[tokio::test]
async fn a_log_rotates_at_its_size_keeps_its_files_and_a_follower_reads_on() {
    const LINES: usize = 3000;
    const MAX_BYTES: u64 = 8192;
    let cap = Capsule::new();
    // ~60 bytes a record: about 20 rotations, slow enough for a follower polling every 2 ms.
    let chatty = cap.container(
        "chatty",
        &format!(
            "n=0; while [ $n -lt {LINES} ]; do echo line-$n; n=$((n+1)); \
             [ $((n % 10)) = 0 ] && usleep 3000; done; echo done-writing; sleep 600"
        ),
    );
    let mut plan = cap.plan(RestartPolicy::Never, vec![], vec![chatty]);
    plan.limits = CapsuleLimits {
        pids_max: Some(64),
        logs: Some(LogRotation {
            max_bytes: MAX_BYTES,
            max_files: 3,
        }),
    };
    cap.spawn(&plan).await;
    let path = shim::log_path(&cap.dir, "chatty");
    let mut f = Follower::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reads = 0;
    while !f.printed.iter().any(|l| l.ends_with("done-writing")) {
        assert!(
            Instant::now() < deadline,
            "the writer never finished; {} lines read",
            f.printed.len()
        );
        f.take(&zun_compute::logs::read(&path, &f.query()).unwrap());
        reads += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let want: Vec<String> = (0..LINES)
        .map(|n| format!("line-{n}"))
        .chain(["done-writing".to_owned()])
        .collect();
    let missing = want.iter().filter(|l| !f.printed.contains(l)).count();
    assert_eq!(missing, 0, "{missing} lines missed over {reads} reads");
    assert_eq!(f.printed, want, "in order, each once ({reads} reads)");
    // Rotated at the size, with 3 files kept.
    for p in [
        path.clone(),
        shim::rotated_path(&path, 1),
        shim::rotated_path(&path, 2),
    ] {
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len <= MAX_BYTES, "{}: {len} bytes", p.display());
    }
    assert!(!shim::rotated_path(&path, 3).exists(), "more than 3 files");
    // A plain read (`zun logs`) gives what the files hold: the newest lines, in order.
    let all = zun_compute::logs::read(&path, &LogQuery::default()).unwrap();
    assert!(all.ends_with("done-writing\n"), "{all}");
    assert!(!all.contains("line-0\n"), "the oldest lines are gone");
    let kept: Vec<&str> = all.lines().collect();
    assert!(kept.len() > 200, "only {} lines kept", kept.len());
}

/// `CAP_NET_RAW` (bit 13) in the capability set named `set` (`CapEff`, `CapBnd`, ...) of a
/// `/proc/<pid>/status` dump.
fn has_net_raw(status: &str, set: &str) -> bool {
    let hex = status
        .lines()
        .find_map(|l| l.split_once(&format!(" {set}:")).map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no {set} in {status}"))
        .trim();
    u64::from_str_radix(hex, 16).unwrap() & (1 << 13) != 0
}

#[tokio::test]
async fn net_raw_reaches_only_the_container_that_asks() {
    let cap = Capsule::new();
    let script = "grep Cap /proc/self/status; echo caps-done; sleep 600";
    let mut raw = cap.container("raw", script);
    raw.net_raw = true;
    let plain = cap.container("plain", script);
    let plan = cap.plan(RestartPolicy::Never, vec![], vec![raw, plain]);
    cap.spawn(&plan).await;
    cap.wait_for(Duration::from_secs(20), "running", running)
        .await;
    let raw = cap.wait_log("raw", "caps-done").await;
    let plain = cap.wait_log("plain", "caps-done").await;
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(has_net_raw(&raw, set), "{set} of the raw container:\n{raw}");
        assert!(
            !has_net_raw(&plain, set),
            "{set} of the plain one:\n{plain}"
        );
    }
}
