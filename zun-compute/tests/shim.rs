//! The capsule shim for real: root, libcontainer, cgroups v1/v2, busybox containers.
//!
//! Each test lays out its own busybox rootfs and capsule directory in a temporary directory and
//! puts its capsule under the cgroup `/capsule-test-<uuid>`, so nothing collides with a running
//! devstack. A [`Capsule`] guard shuts the shim down when the test ends, pass or fail, and
//! checks that no cgroup, process or mount of the capsule is left.

mod shim_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shim_support::*;
use zun_compute::shim::{self, ContainerState, MountPlan, Phase, RestartPolicy};

#[tokio::test]
async fn two_containers_share_pid_uts_and_network_namespaces() {
    let cap = Capsule::new();
    let a = cap.container(
        "web",
        // Three orphans for pause to reap.
        "for i in 1 2 3; do (sleep 0.1 &); done; echo hostname=$(hostname); \
         exec httpd -f -p 8080 -h /www",
    );
    std::fs::write(a.rootfs.join("www/index.html"), "hello-from-web\n").unwrap();
    let b = cap.container(
        "client",
        "echo hostname=$(hostname); echo to-stderr >&2; \
         for i in $(seq 100); do wget -qO- http://127.0.0.1:8080/ && break; sleep 0.05; done; \
         ps; echo ps-done; exec sleep 1000",
    );
    let plan = cap.plan(RestartPolicy::Always, vec![], vec![a, b]);

    let t0 = Instant::now();
    cap.spawn(&plan).await;
    let spawned = t0.elapsed();
    let s = cap
        .wait_for(Duration::from_secs(10), "both running", |s| {
            s.phase == Phase::Running && s.all_running()
        })
        .await;
    let running = t0.elapsed();
    eprintln!(
        "timing: spawn returned after {spawned:?}; both containers running after {running:?}"
    );

    let log = cap.wait_log("client", "ps-done").await;
    assert!(
        log.contains("stdout F hello-from-web"),
        "client did not reach web:\n{log}"
    );
    // Shared PID namespace: pause is PID 1 and the web server is visible.
    assert!(
        log.lines()
            .any(|l| l.contains(" 1 ") && l.ends_with("/pause")),
        "no /pause as PID 1 in:\n{log}"
    );
    assert!(
        log.contains("httpd -f -p 8080"),
        "web's httpd not visible in:\n{log}"
    );
    // Shared UTS namespace.
    assert!(log.contains("stdout F hostname=capsule-host"), "{log}");
    let web = cap.wait_log("web", "hostname=").await;
    assert!(web.contains("stdout F hostname=capsule-host"), "{web}");
    // CRI format, both streams.
    assert!(log.contains(" stderr F to-stderr"), "{log}");
    for line in log.lines().chain(web.lines()) {
        check_cri_line(line);
    }

    // pause reaped the orphans.
    let pause = s.sandbox_pid.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let children = children_of(pause);
        if children.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pause still has children: {children:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("memory: shim {}", memory(cap.shim_pid()));
    eprintln!("memory: pause {}", memory(s.sandbox_pid.unwrap()));

    let t1 = Instant::now();
    shim::shutdown(&cap.dir, Duration::from_secs(2))
        .await
        .unwrap();
    eprintln!("timing: shutdown took {:?}", t1.elapsed());
    assert_eq!(cap.leftovers(), Vec::<String>::new());
    assert!(!cap.dir.join("shim.sock").exists() && !cap.dir.join("shim.pid").exists());
}

#[tokio::test]
async fn a_capsule_joins_an_existing_network_namespace() {
    // The network module hands the shim a prepared netns; here another capsule's stands in.
    let owner = Capsule::new();
    let web = owner.container("web", "exec httpd -f -p 8080 -h /www");
    std::fs::write(web.rootfs.join("www/index.html"), "served-in-owner\n").unwrap();
    owner
        .spawn(&owner.plan(RestartPolicy::Always, vec![], vec![web]))
        .await;
    let s = owner
        .wait_for(Duration::from_secs(10), "web running", |s| s.all_running())
        .await;
    let netns = PathBuf::from(format!("/proc/{}/ns/net", s.sandbox_pid.unwrap()));

    let guest = Capsule::new();
    let client = guest.container(
        "client",
        "for i in $(seq 100); do wget -qO- http://127.0.0.1:8080/ && break; sleep 0.05; done; \
         echo fetched; exec sleep 1000",
    );
    let mut plan = guest.plan(RestartPolicy::Always, vec![], vec![client]);
    plan.netns = Some(netns.clone());
    guest.spawn(&plan).await;
    let g = guest
        .wait_for(Duration::from_secs(10), "client running", |s| {
            s.all_running()
        })
        .await;
    let log = guest.wait_log("client", "fetched").await;
    assert!(log.contains("stdout F served-in-owner"), "{log}");
    let guest_ns = std::fs::read_link(format!("/proc/{}/ns/net", g.sandbox_pid.unwrap())).unwrap();
    assert_eq!(guest_ns, std::fs::read_link(&netns).unwrap());
}

#[tokio::test]
async fn a_failing_init_container_fails_the_capsule_before_any_app_starts() {
    let cap = Capsule::new();
    let init = cap.container("setup", "echo setting up; exit 1");
    let app = cap.container("app", "sleep 1000");
    let plan = cap.plan(RestartPolicy::Always, vec![init], vec![app]);
    cap.spawn(&plan).await;
    let s = cap
        .wait_for(Duration::from_secs(10), "failed", |s| {
            s.phase == Phase::Failed
        })
        .await;
    assert_eq!(
        s.reason.as_deref(),
        Some("init container setup exited with code 1")
    );
    let init = s.container("setup").unwrap();
    assert_eq!(
        (init.state, init.exit_code),
        (ContainerState::Exited, Some(1))
    );
    let app = s.container("app").unwrap();
    assert_eq!(
        (app.state, app.pid, app.started_at),
        (ContainerState::Created, None, None)
    );
    assert!(cap.log("setup").contains("stdout F setting up"));
    assert_eq!(cap.log("app"), "");
    // The phase stays failed: nothing restarts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shim::status(&cap.dir).await.unwrap().phase, Phase::Failed);
}

#[tokio::test]
async fn an_init_container_prepares_a_shared_mount_for_the_app() {
    let cap = Capsule::new();
    let shared = cap.base.join("shared-volume");
    std::fs::create_dir_all(&shared).unwrap();
    let mount = |read_only| MountPlan {
        source: shared.clone(),
        destination: "/shared".into(),
        read_only,
    };
    let mut init = cap.container("prepare", "echo prepared-by-init > /shared/greeting");
    init.mounts.push(mount(false));
    let mut app = cap.container(
        "app",
        "cat /shared/greeting; touch /shared/x 2>/dev/null && echo rw || echo ro; exec sleep 1000",
    );
    app.mounts.push(mount(true));
    let plan = cap.plan(RestartPolicy::Always, vec![init], vec![app]);
    cap.spawn(&plan).await;
    let s = cap
        .wait_for(Duration::from_secs(10), "app running", |s| {
            s.phase == Phase::Running && s.all_running()
        })
        .await;
    let init = s.container("prepare").unwrap();
    assert_eq!(
        (init.state, init.exit_code),
        (ContainerState::Exited, Some(0))
    );
    let log = cap.wait_log("app", "stdout F r").await;
    assert!(log.contains("stdout F prepared-by-init"), "{log}");
    assert!(
        log.contains("stdout F ro"),
        "a read-only mount was writable:\n{log}"
    );
    assert_eq!(
        std::fs::read_to_string(shared.join("greeting")).unwrap(),
        "prepared-by-init\n"
    );
}

#[tokio::test]
async fn on_failure_restarts_with_a_growing_count() {
    let cap = Capsule::new();
    let app = cap.container("crasher", "echo run; exit 1");
    let plan = cap.plan(RestartPolicy::OnFailure, vec![], vec![app]);
    let t0 = Instant::now();
    cap.spawn(&plan).await;
    let s = cap
        .wait_for(Duration::from_secs(10), "three restarts", |s| {
            s.container("crasher").is_some_and(|c| c.restart_count >= 3)
        })
        .await;
    // 100 + 200 + 400 ms of back-off at least.
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(s.phase, Phase::Running);
    let c = s.container("crasher").unwrap();
    assert_eq!(c.exit_code, Some(1));
    assert_eq!(c.reason.as_deref(), Some("Error"));
    let log = cap.wait_log("crasher", "run").await;
    assert!(log.matches("stdout F run").count() >= 3, "{log}");
}

#[tokio::test]
async fn never_leaves_a_failed_container_exited() {
    let cap = Capsule::new();
    let app = cap.container("once", "exit 1");
    let plan = cap.plan(RestartPolicy::Never, vec![], vec![app]);
    cap.spawn(&plan).await;
    let s = cap
        .wait_for(Duration::from_secs(10), "failed", |s| {
            s.phase == Phase::Failed
        })
        .await;
    let c = s.container("once").unwrap();
    assert_eq!(
        (c.state, c.exit_code, c.restart_count),
        (ContainerState::Exited, Some(1), 0)
    );
    assert_eq!(
        s.reason.as_deref(),
        Some("container once exited with code 1")
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = shim::status(&cap.dir).await.unwrap();
    assert_eq!(s.container("once").unwrap().restart_count, 0);
}

#[tokio::test]
async fn a_container_over_its_memory_limit_is_oom_killed() {
    let cap = Capsule::new();
    let mut app = cap.container("hog", "x=a; while true; do x=$x$x; done");
    app.memory_bytes = Some(16 << 20);
    let plan = cap.plan(RestartPolicy::Never, vec![], vec![app]);
    cap.spawn(&plan).await;
    let s = cap
        .wait_for(Duration::from_secs(20), "the hog's end", |s| {
            s.container("hog")
                .is_some_and(|c| c.state == ContainerState::Exited)
        })
        .await;
    let c = s.container("hog").unwrap();
    assert_eq!(c.reason.as_deref(), Some("OOMKilled"), "{c:#?}");
    assert_eq!(c.exit_code, Some(137));
    assert_eq!(c.oom_kills, 1, "counted for the metrics");
    assert_eq!(s.phase, Phase::Failed);
    assert_eq!(
        s.reason.as_deref(),
        Some("container hog exited with code 137 (OOMKilled)")
    );
}

#[tokio::test]
async fn containers_are_confined() {
    let cap = Capsule::new();
    let mut probe = cap.container(
        "probe",
        r#"
        test -f /sys/fs/cgroup/memory/memory.limit_in_bytes -o -f /sys/fs/cgroup/memory.max && echo cgroupfs=visible
        echo 100000000 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo cgroup-write=ok || echo cgroup-write=denied
        echo $$ > /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null && echo cgroup-procs=ok || echo cgroup-procs=denied
        mount -t tmpfs none /tmp 2>/dev/null && echo mount=ok || echo mount=denied
        unshare -n true 2>/dev/null && echo unshare=ok || echo unshare=denied
        unshare -U true 2>/dev/null && echo userns=ok || echo userns=denied
        hostname evil 2>/dev/null && echo sethostname=ok || echo sethostname=denied
        echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq=ok || echo sysrq=denied
        touch /sys/kernel/x 2>/dev/null && echo sysfs=ok || echo sysfs=denied
        echo kcore-bytes=$(cat /proc/kcore 2>/dev/null | wc -c)
        echo kcore-masked=$(grep -c ' /proc/kcore ' /proc/self/mountinfo)
        echo keys-bytes=$(cat /proc/keys 2>/dev/null | wc -c)
        echo keys-masked=$(grep -c ' /proc/keys ' /proc/self/mountinfo)
        echo proc-sys=$(grep -c ' /proc/sys ro,' /proc/self/mountinfo)
        echo ping-range=$(cat /proc/sys/net/ipv4/ping_group_range)
        grep -E '^(NoNewPrivs|Seccomp|CapEff|CapAmb|CapInh|SigBlk|SigIgn):' /proc/self/status
        echo shares=$(cat /sys/fs/cgroup/cpu/cpu.shares) quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) memsw=$(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes)
        echo hosts=$(grep -c capsule-host /etc/hosts) etc-hostname=$(cat /etc/hostname)
        echo resolv-lines=$(cat /etc/resolv.conf | wc -l) host-resolv-lines=HOSTRESOLV
        echo done
        "#
        .replace(
            "HOSTRESOLV",
            &std::fs::read_to_string("/etc/resolv.conf")
                .unwrap_or_default()
                .lines()
                .count()
                .to_string(),
        )
        .as_str(),
    );
    probe.memory_bytes = Some(64 << 20);
    probe.cpu_millis = Some(250);
    let mut user = cap.container(
        "user",
        "echo uid=$(id -u) gid=$(id -g); grep -E '^CapEff:' /proc/self/status",
    );
    user.user = Some((1000, 1000));
    let plan = cap.plan(RestartPolicy::Never, vec![], vec![probe, user]);
    cap.spawn(&plan).await;
    cap.wait_for(Duration::from_secs(10), "both done", |s| {
        s.containers
            .iter()
            .all(|c| c.state == ContainerState::Exited)
    })
    .await;
    let log = cap.wait_log("probe", "stdout F done").await;
    let has = |s: &str| log.contains(&format!("stdout F {s}"));
    for denied in [
        "cgroupfs=visible",
        "cgroup-write=denied",
        "cgroup-procs=denied",
        "mount=denied",
        "unshare=denied",
        "userns=denied",
        "sethostname=denied",
        "sysrq=denied",
        "sysfs=denied",
        "kcore-bytes=0",
        "keys-bytes=0",
        "keys-masked=1",
        "proc-sys=1",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        // Docker's set without CAP_NET_RAW (bit 13); ICMP echo sockets stand in for ping.
        "CapEff:\t00000000a80405fb",
        "ping-range=0 2147483647",
        "CapAmb:\t0000000000000000",
        "CapInh:\t0000000000000000",
        "SigBlk:\t0000000000000000",
        "hosts=1 etc-hostname=capsule-host",
    ] {
        assert!(has(denied), "{denied:?} missing from:\n{log}");
    }
    // Its own cgroup, seen read-only, carries the plan's limits (cgroup v1 hosts).
    if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        let limit = 64u64 << 20;
        assert!(
            has(&format!("shares=256 quota=25000 mem={limit} memsw={limit}")),
            "{log}"
        );
    }
    // /proc/kcore does not exist on every kernel (CONFIG_PROC_KCORE); where it does, it is masked.
    if Path::new("/proc/kcore").exists() {
        assert!(has("kcore-masked=1"), "{log}");
    } else {
        eprintln!(
            "note: this kernel has no /proc/kcore; /proc/keys stands in for the masked files"
        );
    }
    // SIGPIPE (bit 12) is not ignored in the container although the shim ignores it.
    let sigign = log
        .lines()
        .find_map(|l| {
            l.split_once("stdout F SigIgn:\t")
                .map(|(_, r)| r.to_owned())
        })
        .unwrap();
    let sigign = u64::from_str_radix(sigign.trim(), 16).unwrap();
    assert_eq!(
        sigign & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored: {sigign:x}"
    );
    let resolv = log
        .lines()
        .find_map(|l| {
            l.split_once("stdout F resolv-lines=")
                .map(|(_, r)| r.to_owned())
        })
        .unwrap();
    let (inside, host) = resolv.split_once(" host-resolv-lines=").unwrap();
    assert_eq!(inside, host, "resolv.conf is not the host's");
    let user = cap.wait_log("user", "CapEff").await;
    assert!(user.contains("stdout F uid=1000 gid=1000"), "{user}");
    assert!(
        user.contains("stdout F CapEff:\t0000000000000000"),
        "{user}"
    );
}

#[tokio::test]
async fn shutdown_removes_everything_and_is_idempotent() {
    let cap = Capsule::new();
    // One container ignores SIGTERM: the grace must end in SIGKILL.
    let stubborn = cap.container("stubborn", "trap '' TERM; while true; do sleep 0.1; done");
    let plain = cap.container("plain", "exec sleep 1000");
    let plan = cap.plan(RestartPolicy::Always, vec![], vec![stubborn, plain]);
    cap.spawn(&plan).await;
    let s = cap
        .wait_for(Duration::from_secs(10), "running", |s| {
            s.phase == Phase::Running && s.all_running()
        })
        .await;
    assert!(!cgroup_dirs(&cap.cgroup).is_empty());
    assert!(shim::is_alive(&cap.dir));
    let second = shim::spawn(Path::new(SHIM), &cap.dir).await.unwrap_err();
    assert!(
        second.to_string().contains("a shim already runs"),
        "{second}"
    );
    assert_eq!(shim::status(&cap.dir).await.unwrap().phase, Phase::Running);
    let mut watcher = shim::watch(&cap.dir).await.unwrap();

    let t0 = Instant::now();
    shim::shutdown(&cap.dir, Duration::from_millis(300))
        .await
        .unwrap();
    let took = t0.elapsed();
    eprintln!("timing: shutdown with a SIGTERM-ignoring container (grace 300 ms) took {took:?}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert_eq!(cap.leftovers(), Vec::<String>::new());
    assert!(!shim::is_alive(&cap.dir));
    assert!(s.sandbox_pid.is_some_and(|p| !process_alive(p)));
    assert!(!cap.dir.join("runtime").read_dir().unwrap().any(|_| true));

    // The watcher saw the stop and then the end of the stream.
    let mut phases = Vec::new();
    while let Some(s) = watcher.recv().await {
        phases.push(s.phase);
    }
    assert!(
        phases.ends_with(&[Phase::Stopping, Phase::Stopped]),
        "{phases:?}"
    );

    shim::shutdown(&cap.dir, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(matches!(
        shim::status(&cap.dir).await,
        Err(shim::ShimError::NotRunning { .. })
    ));
}

#[tokio::test]
async fn a_killed_shim_leaves_containers_running_and_the_client_cleans_up() {
    let cap = Capsule::new();
    let quiet = cap.container("quiet", "exec sleep 1000");
    let chatty = cap.container("chatty", "while true; do echo tick; sleep 0.05; done");
    let plan = cap.plan(RestartPolicy::Always, vec![], vec![quiet, chatty]);
    cap.spawn(&plan).await;
    let s = cap
        .wait_for(Duration::from_secs(10), "running", |s| {
            s.phase == Phase::Running && s.all_running()
        })
        .await;
    cap.wait_log("chatty", "tick").await;
    let shim_pid = cap.shim_pid();
    let sandbox = s.sandbox_pid.unwrap();
    let quiet = s.container("quiet").unwrap().pid.unwrap();
    let chatty = s.container("chatty").unwrap().pid.unwrap();

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(shim_pid) {
        assert!(Instant::now() < deadline, "the shim survived SIGKILL");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!shim::is_alive(&cap.dir));
    assert!(shim::status(&cap.dir).await.is_err());
    // Orphaned, the sandbox and a silent container keep running; one that writes to its
    // stdout (a pipe nobody reads any more) dies of SIGPIPE.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(process_alive(sandbox), "pause died with the shim");
    assert!(process_alive(quiet), "a quiet container died with the shim");
    assert!(
        !process_alive(chatty),
        "a chatty container outlived its log reader"
    );
    eprintln!(
        "after kill -9 of the shim: pause and the quiet container run on (reparented to pid {}), the chatty one died of SIGPIPE",
        std::fs::read_to_string(format!("/proc/{quiet}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.split_whitespace().nth(1).unwrap_or("?").to_owned()))
            .unwrap_or_default()
    );

    shim::shutdown(&cap.dir, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(cap.leftovers(), Vec::<String>::new());
    shim::shutdown(&cap.dir, Duration::from_millis(300))
        .await
        .unwrap();
}

#[tokio::test]
async fn spawn_reports_why_the_shim_cannot_start() {
    let cap = Capsule::new();
    std::fs::write(cap.dir.join("plan.json"), b"{\"not\": \"a plan\"}").unwrap();
    let err = shim::spawn(Path::new(SHIM), &cap.dir).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot parse") && text.contains("plan.json"),
        "{text}"
    );
    assert!(!shim::is_alive(&cap.dir));

    let mut plan = cap.plan(
        RestartPolicy::Never,
        vec![],
        vec![cap.container("a", "true")],
    );
    plan.containers[0].name = "Not_A_Label".into();
    std::fs::write(
        cap.dir.join("plan.json"),
        serde_json::to_vec(&plan).unwrap(),
    )
    .unwrap();
    let err = shim::spawn(Path::new(SHIM), &cap.dir).await.unwrap_err();
    assert!(err.to_string().contains("not a DNS label"), "{err}");
}
