//! The compute RPC end to end with a real RabbitMQ: API -> broker -> agent -> conductor -> DB.
//! Faults in the middle (broker restart, agent SIGKILL, host down) lose no capsule and do no
//! request twice; two hosts share the load and are never overcommitted.

use std::collections::HashSet;
use std::time::Duration;

use e2e::{journal_counts, Stack};
use test_support::wait::until_async;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_delete_go_through_broker_agent_and_conductor() {
    let stack = Stack::start().await;
    let c1 = stack.compute("c1", 4096, 0).await;
    let uuid = stack.create("flow", 64).await;
    let running = stack.wait_status(&uuid, "Running", LONG).await;
    assert_eq!(running["host"], "c1");
    assert_eq!(running["containers"][0]["status"], "Running");
    assert!(running["containers"][0]["updated_at"].is_string());
    // Logs are asked of the container's host with a call; the fake runtime keeps none.
    let name = running["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let stack_ref = &stack;
    let logs = |path: String| async move {
        stack_ref
            .call(
                e2e::DEMO,
                reqwest::Method::GET,
                &format!("/v1/containers/{path}"),
                None,
            )
            .await
    };
    let (status, body) = logs(format!("{name}/logs?tail=10")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("fake runtime driver"),
        "{body}"
    );
    let (status, body) = logs(format!("{name}/logs?tail=ten")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = logs("no-such-container/logs".into()).await;
    assert_eq!(status, 404, "{body}");
    // Another project sees no such container.
    let (status, _) = stack
        .call(
            e2e::ALT,
            reqwest::Method::GET,
            &format!("/v1/containers/{name}/logs"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(stack.delete(&uuid, false).await, 204);
    let deleting = stack.show(&uuid).await;
    if let Some(d) = deleting {
        // Unless the host was already done, the capsule shows the delete in progress.
        assert_eq!(d["status"], "Deleting", "{d}");
        assert_eq!(d["task_state"], "container_deleting");
    }
    stack.wait_gone(&uuid, LONG).await;
    assert_eq!(
        c1.journal(),
        vec![format!("create {uuid}"), format!("delete {uuid}")]
    );
    assert!(c1.live().is_empty());
    let (cpu_used, mem_used) = node_usage(&stack, "c1").await;
    assert_eq!((cpu_used, mem_used), (0.0, 0), "the claim was released");
    stack.stop().await;
}

async fn node_usage(stack: &Stack, host: &str) -> (f64, i64) {
    let n = stack.state.db.compute_node(host).await.unwrap().unwrap();
    (n.cpu_used, n.mem_used)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_during_50_creates_loses_nothing_and_repeats_nothing() {
    // Hosts stay up through the restart (heartbeats wait for the broker), as with the
    // default of 20 s: a 3 s window would rightly declare the only host dead.
    let mut stack = Stack::start_with(30).await;
    let c1 = stack.compute("c1", 100_000, 0).await;
    let mut uuids = Vec::new();
    for i in 0..25 {
        uuids.push(stack.create(&format!("b{i}"), 16).await);
    }
    // Restart the broker while the next 25 creates come in.
    let mut broker = stack.broker.take().unwrap();
    let restarting = tokio::task::spawn_blocking(move || {
        broker.restart();
        broker
    });
    for i in 25..50 {
        uuids.push(stack.create(&format!("b{i}"), 16).await);
    }
    stack.broker = Some(restarting.await.unwrap());
    for u in &uuids {
        stack.wait_status(u, "Running", LONG).await;
    }
    let counts = journal_counts(&c1.journal());
    for u in &uuids {
        assert_eq!(
            counts.get(u),
            Some(&(1, 0)),
            "capsule {u} built exactly once"
        );
    }
    assert_eq!(counts.len(), 50, "nothing else was built");
    assert_eq!(
        stack.state.db.outbox_len().await.unwrap(),
        0,
        "everything was published"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_converges_after_restart() {
    let stack = Stack::start().await;
    // Creates of a second each: five done and reported, then five more, and the agent dies
    // while some of those are under way.
    let mut c1 = stack.compute("c1", 100_000, 1000).await;
    let mut uuids = Vec::new();
    for i in 0..5 {
        uuids.push(stack.create(&format!("k{i}"), 16).await);
    }
    for u in &uuids {
        stack.wait_status(u, "Running", LONG).await;
    }
    let done = uuids.clone();
    for i in 5..10 {
        uuids.push(stack.create(&format!("k{i}"), 16).await);
    }
    // Killed as soon as the agent has started a create it has not finished: its store holds
    // the capsule unsettled (the intent is written before the runtime is called).
    until_async(LONG, Duration::from_millis(10), async || {
        if c1.records().iter().any(|r| !r.settled) {
            Ok(())
        } else {
            Err(format!("no create under way; journal {:?}", c1.journal()))
        }
    })
    .await;
    c1.kill9();
    // What the dead agent left: the fault hit work in flight. A create it had started and not
    // finished (unsettled), which the runtime had not built (no journal line) and whose state
    // the API never got (still Creating).
    let records = c1.records();
    let journal = c1.journal();
    let in_flight: Vec<String> = records
        .iter()
        .filter(|r| !r.settled)
        .map(|r| r.spec.uuid.to_string())
        .collect();
    assert!(
        !in_flight.is_empty(),
        "no create was under way (name, settled, unreported): {:?}",
        records
            .iter()
            .map(|r| (r.spec.name.clone(), r.settled, r.unreported))
            .collect::<Vec<_>>()
    );
    for u in &in_flight {
        assert!(
            !journal.contains(&format!("create {u}")),
            "{u} was built already: {journal:?}"
        );
        let c = stack.show(u).await.unwrap();
        assert_eq!(c["status"], "Creating", "the API had {u}'s state: {c}");
    }
    eprintln!(
        "killed with {} creates received, {} of them under way, {} built",
        records.len(),
        in_flight.len(),
        journal.len()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    c1.restart();
    for u in &uuids {
        stack.wait_status(u, "Running", LONG).await;
    }
    // Every capsule exists exactly once in the runtime; one interrupted mid-create may have
    // been cleaned up and built again, never built twice side by side.
    let live: HashSet<String> = c1.live().into_iter().collect();
    assert_eq!(live, uuids.iter().cloned().collect::<HashSet<_>>());
    let counts = journal_counts(&c1.journal());
    for (u, (creates, deletes)) in &counts {
        assert_eq!(
            *creates,
            deletes + 1,
            "capsule {u}: {creates} creates, {deletes} deletes"
        );
    }
    // Those done before the kill were not touched again.
    for u in &done {
        assert_eq!(counts.get(u), Some(&(1, 0)), "capsule {u}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_the_load_and_are_never_overcommitted() {
    let stack = Stack::start().await;
    let c1 = stack.compute("c1", 1000, 0).await;
    let c2 = stack.compute("c2", 1000, 0).await;
    // 30 concurrent creates of 100 MiB on 2 x 1000 MiB: exactly 20 fit.
    let mut tasks = Vec::new();
    let stack = std::sync::Arc::new(stack);
    for i in 0..30 {
        let s = stack.clone();
        tasks.push(tokio::spawn(async move {
            s.create(&format!("s{i}"), 100).await
        }));
    }
    let mut uuids = Vec::new();
    for t in tasks {
        uuids.push(t.await.unwrap());
    }
    let mut per_host = std::collections::HashMap::new();
    let mut refused = 0;
    for u in &uuids {
        let c = stack.show(u).await.unwrap();
        if c["status"] == "Error" {
            assert_eq!(c["status_reason"], "There are not enough hosts available.");
            refused += 1;
        } else {
            let c = stack.wait_status(u, "Running", LONG).await;
            *per_host
                .entry(c["host"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    assert_eq!(refused, 10, "{per_host:?}");
    assert_eq!(per_host.get("c1"), Some(&10));
    assert_eq!(per_host.get("c2"), Some(&10));
    assert_eq!(c1.live().len() + c2.live().len(), 20);
    for host in ["c1", "c2"] {
        let (_, mem) = node_usage(&stack, host).await;
        assert!(mem <= 1000, "{host} holds {mem} MiB of 1000");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_host_fails_its_creates_and_they_converge_when_it_returns() {
    let stack = Stack::start().await;
    // Creates that never finish before the agent dies.
    let mut c1 = stack.compute("c1", 4096, 60_000).await;
    let uuid = stack.create("stuck", 64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    c1.kill9();
    stack.wait_service("c1", false, LONG).await;
    let failed = stack.wait_status(&uuid, "Error", LONG).await;
    assert!(
        failed["status_reason"]
            .as_str()
            .unwrap()
            .contains("Compute host c1 stopped reporting"),
        "{failed}"
    );
    // While the host is down, a delete is accepted (no 500) and waits for it.
    let other = {
        let u = stack.create("survivor", 64).await;
        // No host is up: it cannot be placed.
        let c = stack.show(&u).await.unwrap();
        assert_eq!(c["status"], "Error");
        u
    };
    assert_eq!(stack.delete(&other, false).await, 204);
    stack.wait_gone(&other, LONG).await;
    // The host comes back (now quick): the interrupted create is redone and reported.
    std::fs::write(
        c1.state_dir.join("zun-compute.toml"),
        std::fs::read_to_string(c1.state_dir.join("zun-compute.toml"))
            .unwrap()
            .replace("fake_create_ms = 60000", "fake_create_ms = 0"),
    )
    .unwrap();
    c1.restart();
    stack.wait_service("c1", true, LONG).await;
    stack.wait_status(&uuid, "Running", LONG).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_wait_for_a_down_host_and_force_delete_does_not() {
    let stack = Stack::start().await;
    let mut c1 = stack.compute("c1", 4096, 0).await;
    let a = stack.create("wait-for-me", 64).await;
    let b = stack.create("force-me", 64).await;
    stack.wait_status(&a, "Running", LONG).await;
    stack.wait_status(&b, "Running", LONG).await;
    c1.kill9();
    assert_eq!(stack.delete(&a, false).await, 204);
    assert_eq!(stack.show(&a).await.unwrap()["status"], "Deleting");
    // An admin removes the other at once (its host may be gone for good).
    assert_eq!(stack.delete(&b, true).await, 204);
    assert!(stack.show(&b).await.is_none());
    // A member may not force.
    let (status, _) = stack
        .call(
            e2e::DEMO,
            reqwest::Method::DELETE,
            &format!("/v1/capsules/{a}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    c1.restart();
    // The queued delete runs; the forced one's host copy is cleaned up too.
    stack.wait_gone(&a, LONG).await;
    let deadline = std::time::Instant::now() + LONG;
    while !c1.live().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "left on host: {:?}",
            c1.live()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.stop().await;
}
