//! Real pods end to end: API -> RabbitMQ -> zun-compute with the pod driver -> containerd,
//! netavark and a libcontainer shim, with the images devstack seeds in its registry. Each test
//! checks the host afterwards (cgroups, network namespaces, mounts, shims) and cleans up what
//! it finds even when it fails. Needs root and a running devstack (containerd, registry).

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::pod::PodHost;
use e2e::{Stack, ADMIN, DEMO};
use serde_json::{json, Value};
use test_support::free_port;

const LONG: Duration = Duration::from_secs(120);

async fn container_named<'a>(capsule: &'a Value, name: &str) -> &'a Value {
    capsule["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {capsule}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_container_pod_shares_network_pid_and_hostname() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "p1").await;
    let t = json!({"kind": "capsule", "metadata": {"name": "pair"},
    "spec": {"containers": [
        {"name": "web", "image": "busybox", "command": ["sh", "-c",
            "echo host=$(hostname); mkdir -p /www; echo hello-from-web > /www/index.html; exec httpd -f -p 8080 -h /www"]},
        {"name": "probe", "image": "busybox", "command": ["sh", "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8080/ && break; sleep 0.2; done; echo host=$(hostname); ps; sleep 3600"]}
    ]}});
    let uuid = stack.create_template(DEMO, &t).await;
    let running = stack.wait_status(&uuid, "Running", LONG).await;
    assert_eq!(running["host"], "p1");
    let addr = running["addresses"][&host.bridge][0]["addr"]
        .as_str()
        .unwrap_or_else(|| panic!("no address: {running}"));
    assert!(addr.starts_with("10.214."), "{addr}");
    for c in running["containers"].as_array().unwrap() {
        assert_eq!(c["status"], "Running", "{c}");
    }
    let web = container_named(&running, "web").await["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let probe = container_named(&running, "probe").await["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The probe reached web's server on 127.0.0.1, sees its process and the sandbox's pause
    // as PID 1, and has the same host name.
    let deadline = Instant::now() + LONG;
    let probe_log = loop {
        let l = stack.container_logs(&probe).await;
        if l.contains("PID") || Instant::now() > deadline {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(probe_log.contains("hello-from-web"), "{probe_log}");
    assert!(probe_log.contains("httpd"), "{probe_log}");
    assert!(
        probe_log
            .lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("/pause")),
        "{probe_log}"
    );
    let web_log = stack.container_logs(&web).await;
    assert!(web_log.contains("host=pair"), "{web_log}");
    assert!(probe_log.contains("host=pair"), "{probe_log}");
    // Zun's query: timestamps and tail.
    let (status, body) = stack
        .call(
            DEMO,
            reqwest::Method::GET,
            &format!("/v1/containers/{web}/logs?timestamps=True&tail=1"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let line = body.as_str().unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("20"), "{line}");
    host.delete_and_check(&stack, &uuid).await;
    drop(host);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_port_reaches_nginx_from_the_host() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "p2").await;
    let port = free_port();
    // The project's default group lets nothing in from the host until port 80 is opened.
    let db = &stack.state.db;
    let default = db.ensure_default_security_group(DEMO.1).await.unwrap().id;
    let open = capsule_types::secgroup::parse_rule_create(&json!({"security_group_rule": {
        "security_group_id": default, "direction": "ingress", "protocol": "tcp",
        "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}}))
    .unwrap();
    db.create_security_group_rule(db::secgroups::GroupScope::Project(DEMO.1), &open)
        .await
        .unwrap();
    let t = json!({"kind": "capsule", "metadata": {"name": "web"},
        "spec": {"containers": [{"image": "nginx",
            "ports": [{"containerPort": 80, "hostPort": port, "protocol": "TCP"}]}]}});
    let uuid = stack.create_template(DEMO, &t).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        match reqwest::get(&url).await {
            Ok(r) if r.status().is_success() => break r.text().await.unwrap(),
            other => {
                assert!(Instant::now() < deadline, "{url}: {other:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(body.contains("Welcome to nginx!"), "{body}");
    // A second capsule asking for the same host port is never placed on this host.
    let (status, answer) = stack
        .call(
            DEMO,
            reqwest::Method::POST,
            "/v1/capsules",
            Some(&json!({"template": t})),
        )
        .await;
    if status == 202 {
        let other = answer["uuid"].as_str().unwrap().to_owned();
        let c = stack.wait_status(&other, "Error", LONG).await;
        assert!(c["host"].is_null(), "{c}");
        assert_eq!(stack.delete(&other, false).await, 204);
        stack.wait_gone(&other, LONG).await;
    } else {
        assert_eq!(status, 409, "{answer}");
    }
    host.delete_and_check(&stack, &uuid).await;
    // The port is closed again.
    assert!(reqwest::get(&url).await.is_err());
    drop(host);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_restarts_and_oom_kills_show_in_the_status() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "p3").await;
    // OnFailure: a container that exits 1 is restarted, and the count shows.
    let flaky = json!({"kind": "capsule", "metadata": {"name": "flaky"}, "restartPolicy": "OnFailure",
        "spec": {"containers": [{"image": "busybox", "command": ["sh", "-c", "echo try; exit 1"]}]}});
    let flaky = stack.create_template(DEMO, &flaky).await;
    let c = stack
        .wait_for(&flaky, "restarted twice", LONG, |c| {
            c["containers"][0]["restart_count"].as_i64().unwrap_or(0) >= 2
        })
        .await;
    assert_ne!(c["status"], "Error", "{c}");
    // Never: memory over the request gets the container OOM-killed, and that is reported.
    let hog = json!({"kind": "capsule", "metadata": {"name": "hog"}, "restartPolicy": "Never",
        "spec": {"containers": [{"image": "busybox",
            "command": ["sh", "-c", "x=a; while true; do x=$x$x; done"],
            "resources": {"requests": {"memory": 16}}}]}});
    let hog = stack.create_template(DEMO, &hog).await;
    let c = stack
        .wait_for(&hog, "OOM-killed", LONG, |c| {
            c["containers"][0]["status"] == "Error"
        })
        .await;
    let reason = c["containers"][0]["status_reason"].as_str().unwrap_or("");
    assert!(reason.contains("OOMKilled"), "{c}");
    assert_eq!(c["status"], "Error", "{c}");
    // An init container that fails fails the capsule, with its exit code.
    let init = json!({"kind": "capsule", "metadata": {"name": "badinit"},
        "spec": {"initContainers": [{"image": "busybox", "command": ["sh", "-c", "exit 3"]}],
                 "containers": [{"image": "busybox", "command": ["sleep", "3600"]}]}});
    let init = stack.create_template(DEMO, &init).await;
    let c = stack.wait_status(&init, "Error", LONG).await;
    let reason = c["status_reason"].as_str().unwrap_or("");
    assert!(reason.contains("exited with code 3"), "{c}");
    for uuid in [&flaky, &hog, &init] {
        host.delete_and_check(&stack, uuid).await;
    }
    drop(host);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capsules_outlive_a_killed_agent_and_are_deleted_after_its_restart() {
    let stack = Stack::start().await;
    let mut host = PodHost::start(&stack, "p4").await;
    let t = json!({"kind": "capsule", "metadata": {"name": "survivor"},
        "spec": {"containers": [{"image": "busybox", "command": ["sleep", "3600"]}]}});
    let uuid = stack.create_template(DEMO, &t).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    let before = host.processes(&uuid).await;
    assert!(
        before
            .iter()
            .any(|p| p.role != "shim" && p.role != "sandbox" && p.cmdline == "sleep 3600"),
        "{before:#?}"
    );
    host.compute.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for p in &before {
        assert!(
            Path::new(&format!("/proc/{}", p.pid)).exists(),
            "the {} died with the agent",
            p.role
        );
    }
    // The last state the API got from the host, read while no agent runs there: anything
    // newer was reported by the restarted agent.
    let dead = stack.show(&uuid).await.unwrap();
    let updated = |c: &Value| c["updated_at"].as_str().unwrap_or_default().to_owned();
    let container_updated = |c: &Value| {
        c["containers"][0]["updated_at"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (last, last_container) = (updated(&dead), container_updated(&dead));
    assert!(!last.is_empty() && !last_container.is_empty(), "{dead}");
    host.compute.restart();
    stack.wait_service("p4", true, LONG).await;
    // Zun's times ("%Y-%m-%d %H:%M:%S.%6f") sort as text.
    let c = stack
        .wait_for(&uuid, "reported by the restarted agent", LONG, |c| {
            updated(c) > last && container_updated(c) > last_container
        })
        .await;
    assert_eq!(c["status"], "Running", "{c}");
    assert_eq!(c["containers"][0]["status"], "Running", "{c}");
    // The very processes it had before: the shim, the sandbox and the container outlived the
    // agent, and the restarted agent re-attached to them rather than starting new ones.
    assert_eq!(host.processes(&uuid).await, before);
    host.delete_and_check(&stack, &uuid).await;
    drop(host);
    // Admin view of the service: it is still registered.
    let (status, _) = stack
        .call(ADMIN, reqwest::Method::GET, "/v1/services", None)
        .await;
    assert_eq!(status, 200);
    stack.stop().await;
}
