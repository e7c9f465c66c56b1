//! Hostile workloads beside a witness, on a real pod host (issue 21, item 4): a bounded fork
//! bomb, a memory hog past its limit, a log flood and a disk filler, each in its own capsule
//! while a "witness" nginx capsule answers on its published port. For each offender: it is
//! contained (forks refused at its pids limit, OOM-killed and reported, its logs capped, ENOSPC
//! in its own layer), the witness's median latency stays within 2x its idle figure (with a
//! 5 ms floor: on this 2-core machine an idle median of 1-2 ms moves by as much on its own),
//! the agent keeps reporting (its heartbeats go on, the witness stays Running) and the API
//! lists normally. Every offender runs a few seconds and is bounded by the host's small limits
//! below, so the suite cannot hurt the machine it runs on; everything is deleted and checked
//! at the end.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::pod::PodHost;
use e2e::{Stack, DEMO};
use serde_json::{json, Value};
use test_support::free_port;

const LONG: Duration = Duration::from_secs(120);
const LOG_BYTES: u64 = 64 << 10;
const LOG_FILES: u64 = 2;

/// The median of `n` fresh-connection GETs of `url`.
async fn latency(url: &str, n: usize) -> Duration {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client.get(url).send().await.expect("the witness answers");
        assert!(r.status().is_success(), "{}", r.status());
        r.bytes().await.unwrap();
        times.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    times.sort();
    times[n / 2]
}

fn offender(name: &str, script: &str, memory: Option<u64>) -> Value {
    let mut c = json!({"name": name, "image": "busybox", "command": ["sh", "-c", script]});
    if let Some(m) = memory {
        c["resources"] = json!({"requests": {"memory": m}});
    }
    json!({"kind": "capsule", "metadata": {"name": name}, "restartPolicy": "Never",
        "spec": {"containers": [c]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offenders_are_contained_and_the_witness_keeps_answering() {
    let stack = Stack::start().await;
    let host = PodHost::start_with(
        &stack,
        "h1",
        &format!(
            "[limits]\npids_per_capsule = 64\nwritable_layer_mib = 32\n\
             [logs]\nmax_bytes = {LOG_BYTES}\nmax_files = {LOG_FILES}\n"
        ),
    )
    .await;
    let db = &stack.state.db;
    let default = db.ensure_default_security_group(DEMO.1).await.unwrap().id;
    let open = capsule_types::secgroup::parse_rule_create(&json!({"security_group_rule": {
        "security_group_id": default, "direction": "ingress", "protocol": "tcp",
        "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}}))
    .unwrap();
    db.create_security_group_rule(db::secgroups::GroupScope::Project(DEMO.1), &open)
        .await
        .unwrap();
    let port = free_port();
    let witness = json!({"kind": "capsule", "metadata": {"name": "witness"},
        "spec": {"containers": [{"image": "nginx",
            "ports": [{"containerPort": 80, "hostPort": port, "protocol": "TCP"}]}]}});
    let witness = stack.create_template(DEMO, &witness).await;
    stack.wait_status(&witness, "Running", LONG).await;
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(&url).await.is_err() {
        assert!(Instant::now() < deadline, "the witness never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let idle = latency(&url, 21).await;
    test_support::figures::show("e2e hostile", &format!("witness idle: median {idle:?}"));
    let bound = (idle * 2).max(Duration::from_millis(5));

    let offenders = [
        (
            "forkbomb",
            offender("forkbomb", "while true; do sleep 30 & done", None),
        ),
        (
            "memhog",
            offender("memhog", "x=a; while true; do x=$x$x; done", Some(32)),
        ),
        (
            "logflood",
            offender(
                "logflood",
                "while true; do echo flood-flood-flood-flood-flood-flood-flood-flood; done",
                None,
            ),
        ),
        (
            "diskfill",
            offender(
                "diskfill",
                "dd if=/dev/zero of=/fill bs=1M count=64; echo dd-exit=$?; sleep 600",
                None,
            ),
        ),
    ];
    let mut made = Vec::new();
    let reports = || async {
        let s = db.service("h1", "zun-compute").await.unwrap();
        s.expect("the host's service").report_count
    };
    for (what, template) in offenders {
        let reported = reports().await;
        let uuid = stack.create_template(DEMO, &template).await;
        made.push(uuid.clone());
        let c = stack
            .wait_for(&uuid, "started", LONG, |c| {
                c["status"] == "Running" || c["status"] == "Error" || c["status"] == "Stopped"
            })
            .await;
        let container = c["containers"][0]["uuid"].as_str().unwrap().to_owned();
        // Let it do its worst while the witness is measured.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let under = latency(&url, 21).await;
        test_support::figures::show(
            "e2e hostile",
            &format!("witness under {what}: median {under:?} (idle {idle:?})"),
        );
        let dir = host.capsule_dir(&uuid);
        match what {
            "forkbomb" => {
                let pids = Path::new("/sys/fs/cgroup/pids/capsule").join(&uuid);
                let max = std::fs::read_to_string(pids.join("pids.max")).unwrap();
                assert_eq!(max.trim(), "64");
                let log = stack.container_logs(&container).await;
                assert!(log.contains("can't fork"), "{log}");
            }
            "memhog" => {
                let c = stack
                    .wait_for(&uuid, "OOM-killed", LONG, |c| {
                        c["containers"][0]["status"] == "Error"
                    })
                    .await;
                let reason = c["containers"][0]["status_reason"].as_str().unwrap_or("");
                assert!(reason.contains("OOMKilled"), "{c}");
            }
            "logflood" => {
                let on_disk: u64 = std::fs::read_dir(dir.join("logs"))
                    .unwrap()
                    .map(|e| e.unwrap().metadata().unwrap().len())
                    .sum();
                assert!(
                    on_disk <= LOG_BYTES * LOG_FILES,
                    "{on_disk} bytes of logs on disk"
                );
                assert!(stack
                    .container_logs(&container)
                    .await
                    .contains("flood-flood"));
            }
            "diskfill" => {
                let deadline = Instant::now() + LONG;
                let log = loop {
                    let l = stack.container_logs(&container).await;
                    if l.contains("dd-exit=") || Instant::now() > deadline {
                        break l;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                assert!(log.contains("No space left on device"), "{log}");
            }
            _ => unreachable!(),
        }
        // The agent keeps reporting (heartbeats every second) and the API answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while reports().await <= reported {
            assert!(Instant::now() < deadline, "no heartbeat under {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let w = stack.show(&witness).await.unwrap();
        assert_eq!(w["status"], "Running", "{w}");
        let (status, _) = stack
            .call(DEMO, reqwest::Method::GET, "/v1/capsules", None)
            .await;
        assert_eq!(status, 200);
        assert!(
            under <= bound,
            "witness under {what}: {under:?}, over {bound:?} (idle {idle:?})"
        );
    }
    for uuid in made.iter().chain([&witness]) {
        host.delete_and_check(&stack, uuid).await;
    }
    drop(host);
    stack.stop().await;
}
