//! Zun's lifecycle routes on capsule containers (stop, start, reboot, kill, pause, unpause),
//! our whole-capsule extension, and the history (`container_actions`) they and the host's
//! own events leave; through the conductor and a fake host on the in-process bus. Bad input,
//! other projects and readers are refused before anything reaches the host.

use capsule_types::rpc::{ComputeRequest, ContainerAction, ContainerEvent, ContainerEventKind};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{ALT, DEMO};
use crate::fake_host::{Stack, READER};

/// The request id of a response.
fn rid(r: &crate::common::Resp) -> String {
    r.header("x-openstack-request-id").unwrap().to_owned()
}

/// The actions of container `i`, newest first, as `(action, request_id, finished)`.
async fn history(s: &Stack, i: usize) -> Vec<(String, String, bool)> {
    let r = s
        .send("GET", &s.path(i, "container_actions"), DEMO, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["containerActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_owned(),
                a["request_id"].as_str().unwrap().to_owned(),
                !a["finish_time"].is_null(),
            )
        })
        .collect()
}

#[tokio::test]
async fn lifecycle_actions_reach_the_host_and_are_kept_as_zun_actions() {
    let s = Stack::start().await;
    let web = s.containers[0].clone();

    // stop?timeout=: 202, the host gets it with the request id, the container stops.
    let r = s
        .send("POST", &s.path(0, "stop?timeout=5"), DEMO, None)
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let stop_rid = rid(&r);
    let got = s.host.wait_requests(1).await;
    let (req_id, req) = &got[0];
    assert_eq!(req_id.as_deref(), Some(stop_rid.as_str()));
    let ComputeRequest::ContainerAction {
        container, action, ..
    } = req
    else {
        panic!("not an action: {req:?}");
    };
    assert_eq!(container.unwrap().to_string(), web);
    assert_eq!(
        *action,
        ContainerAction::Stop {
            timeout_seconds: Some(5)
        }
    );
    s.until("web stops", |s| async move {
        s.statuses().await == ["Stopped", "Running"]
    })
    .await;

    // Zun's state checks, before anything is sent.
    let r = s.send("POST", &s.path(0, "stop"), DEMO, None).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.detail(),
        format!("Cannot stop container {web} in Stopped state")
    );
    let exec = s.path(0, "execute?command=ls&run=true");
    let r = s.send("POST", &exec, DEMO, None).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.detail(),
        format!("Cannot execute container {web} in Stopped state")
    );
    let r = s.send("POST", &s.path(0, "pause"), DEMO, None).await;
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert_eq!(s.sent(), 1, "refused actions reached the host");

    // start, reboot, kill with a signal by name, start, pause, unpause.
    let mut rids = vec![stop_rid];
    let steps: [(&str, &[&str], ContainerAction); 6] = [
        ("start", &["Running", "Running"], ContainerAction::Start),
        (
            "reboot?timeout=0",
            &["Running", "Running"],
            ContainerAction::Restart {
                timeout_seconds: Some(0),
            },
        ),
        (
            "kill?signal=SIGTERM",
            &["Stopped", "Running"],
            ContainerAction::Kill { signal: 15 },
        ),
        ("start", &["Running", "Running"], ContainerAction::Start),
        ("pause", &["Paused", "Running"], ContainerAction::Pause),
        ("unpause", &["Running", "Running"], ContainerAction::Unpause),
    ];
    for (n, (what, after, sent)) in steps.into_iter().enumerate() {
        let r = s.send("POST", &s.path(0, what), DEMO, None).await;
        assert_eq!(r.status, 202, "{what}: {:?}", r.json);
        rids.push(rid(&r));
        let got = s.host.wait_requests(n + 2).await;
        match &got[n + 1].1 {
            ComputeRequest::ContainerAction { action, .. } => assert_eq!(*action, sent),
            other => panic!("{what}: {other:?}"),
        }
        s.until(what, move |s| async move { s.statuses().await == after })
            .await;
    }
    // The sidecar was never touched.
    assert_eq!(s.statuses().await[1], "Running");

    // The history: every action, newest first, each ended by the host's event.
    let names = [
        "stop", "start", "reboot", "kill", "start", "pause", "unpause",
    ];
    s.until("every action ended", |s| async move {
        history(s, 0).await.iter().all(|a| a.2)
    })
    .await;
    let h = history(&s, 0).await;
    let got: Vec<&str> = h.iter().map(|a| a.0.as_str()).collect();
    let mut want_names = names.to_vec();
    want_names.reverse();
    assert_eq!(got, want_names);
    let got_rids: Vec<String> = h.iter().rev().map(|a| a.1.clone()).collect();
    assert_eq!(got_rids, rids);
    assert!(
        history(&s, 1).await.is_empty(),
        "the sidecar has no history"
    );

    // action-show: Zun's keys, the host's event.
    let show = format!("container_actions/{}", rids[3]);
    let r = s.send("GET", &s.path(0, &show), DEMO, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let a = &r.json;
    assert_eq!(a["action"], "kill");
    assert_eq!(a["container_uuid"], *web);
    assert_eq!(a["project_id"], "demo");
    assert_eq!(a["user_id"], "demo-user");
    assert_eq!(a["message"], Value::Null);
    let ev = &a["events"][0];
    assert_eq!(ev["event"], "compute__do_container_kill");
    assert_eq!(ev["result"], "Success");
    assert_eq!(ev["traceback"], Value::Null);
    let r = s
        .send("GET", &s.path(0, "container_actions/req-nope"), DEMO, None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.detail(),
        "The Action resource req-nope could not be found."
    );
    // By name too.
    let r = s
        .send("GET", "/v1/containers/web/container_actions", DEMO, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["containerActions"].as_array().unwrap().len(), 7);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_other_projects_and_readers_reach_nothing() {
    let s = Stack::start().await;
    let web = s.containers[0].clone();
    // Bad input: 400 naming the parameter.
    for (path, body, names) in [
        ("stop?timeout=-1", None, "timeout"),
        ("stop?timeout=abc", None, "timeout"),
        ("stop?timeout=99999", None, "timeout"),
        ("stop?force=1", None, "'force' was unexpected"),
        ("reboot?timeout=1.5", None, "timeout"),
        ("kill?signal=SIGFOO", None, "signal"),
        ("kill?signal=99", None, "signal"),
        ("kill", Some(json!({"signal": "NOPE"})), "signal"),
        ("kill", Some(json!([1])), "JSON object"),
    ] {
        let r = s.send("POST", &s.path(0, path), DEMO, body.as_ref()).await;
        assert_eq!(r.status, 400, "{path}: {:?}", r.json);
        assert!(r.detail().contains(names), "{path}: {}", r.detail());
    }
    // Another project's container, or none: 404, as Zun words it.
    for who in [ALT] {
        for (m, what) in [
            ("POST", "stop"),
            ("POST", "start"),
            ("POST", "kill"),
            ("GET", "top"),
            ("GET", "stats"),
            ("GET", "container_actions"),
            ("POST", "execute?command=ls"),
        ] {
            let r = s.send(m, &s.path(0, what), who, None).await;
            assert_eq!(r.status, 404, "{what}: {:?}", r.json);
            assert_eq!(r.detail(), format!("Container {web} could not be found."));
        }
    }
    let gone = Uuid::new_v4();
    let r = s
        .send("POST", &format!("/v1/containers/{gone}/stop"), DEMO, None)
        .await;
    assert_eq!(r.status, 404);
    // A reader may not change the container.
    for (m, what, body) in [
        ("POST", "stop", None),
        ("POST", "start", None),
        ("POST", "reboot", None),
        ("POST", "kill", None),
        ("POST", "pause", None),
        ("POST", "unpause", None),
        ("POST", "execute?command=ls", None),
        ("GET", "get_archive?path=/etc", None),
        (
            "POST",
            "put_archive?path=/tmp",
            Some(json!({"data": "YQ=="})),
        ),
    ] {
        let r = s.send(m, &s.path(0, what), READER, body.as_ref()).await;
        assert_eq!(r.status, 403, "{what}: {:?}", r.json);
    }
    let whole = format!("/v1/capsules/{}/stop", s.capsule);
    let r = s.send("POST", &whole, READER, None).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(s.sent(), 0, "refused requests reached the host");
    // ... but may read: history, top and stats.
    let r = s
        .send("GET", &s.path(0, "container_actions"), READER, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = s.send("GET", &s.path(0, "top"), READER, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = s.send("GET", &s.path(0, "stats"), READER, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(s.sent(), 2);
    s.stop().await;
}

#[tokio::test]
async fn the_hosts_own_events_become_history_kept_to_a_bound() {
    let s = Stack::start().await;
    let web: Uuid = s.containers[0].parse().unwrap();
    let capsule: Uuid = s.capsule.parse().unwrap();
    let event = |kind, exit_code| ContainerEvent {
        capsule,
        container: web,
        kind,
        started_at: chrono::Utc::now(),
        finished_at: chrono::Utc::now(),
        request_id: None,
        exit_code,
        error: None,
    };
    s.host
        .report_event(event(ContainerEventKind::Exited, Some(137)))
        .await;
    s.host
        .report_event(event(ContainerEventKind::OomKilled, None))
        .await;
    s.host
        .report_event(event(ContainerEventKind::Restarted, None))
        .await;
    s.until("three events kept", |s| async move {
        history(s, 0).await.len() == 3
    })
    .await;
    let h = history(&s, 0).await;
    let names: Vec<&str> = h.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(names, ["restarted", "oom_killed", "exited"]);
    let show = format!("container_actions/{}", h[2].1);
    let r = s.send("GET", &s.path(0, &show), DEMO, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["events"][0]["event"], "runtime_container_exited");

    // Bounded: a container keeps its newest 100 actions.
    for _ in 0..110 {
        s.host
            .report_event(event(ContainerEventKind::Exited, Some(0)))
            .await;
    }
    s.until("the newest kept", |s| async move {
        let h = history(s, 0).await;
        h.len() == 100 && h.iter().all(|a| a.0 == "exited")
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn whole_capsules_stop_start_and_restart() {
    let s = Stack::start().await;
    let path = |what: &str| format!("/v1/capsules/{}/{what}", s.capsule);
    let r = s.send("POST", &path("stop?timeout=2"), DEMO, None).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let got = s.host.wait_requests(1).await;
    match &got[0].1 {
        ComputeRequest::ContainerAction {
            container, action, ..
        } => {
            assert_eq!(*container, None, "the whole capsule");
            assert_eq!(
                *action,
                ContainerAction::Stop {
                    timeout_seconds: Some(2)
                }
            );
        }
        other => panic!("{other:?}"),
    }
    s.until("both stop", |s| async move {
        s.statuses().await == ["Stopped", "Stopped"]
    })
    .await;
    let r = s.send("POST", &path("stop"), DEMO, None).await;
    assert_eq!(r.status, 409, "{:?}", r.json);
    let r = s.send("POST", &path("start"), DEMO, None).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    s.until("both run", |s| async move {
        s.statuses().await == ["Running", "Running"]
    })
    .await;
    let r = s.send("POST", &path("restart"), DEMO, None).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    s.host.wait_requests(3).await;
    // Each container keeps the capsule's actions.
    for i in 0..2 {
        s.until("ended", |s| async move {
            let h = history(s, i).await;
            h.len() == 3 && h.iter().all(|a| a.2)
        })
        .await;
        let names: Vec<String> = history(&s, i).await.into_iter().map(|a| a.0).collect();
        assert_eq!(names, ["reboot", "start", "stop"]);
    }
    let r = s.send("POST", &path("stop"), ALT, None).await;
    assert_eq!(r.status, 404, "{:?}", r.json);
    s.stop().await;
}

#[tokio::test]
async fn over_rabbitmq_actions_calls_and_reports_go_through_the_broker() {
    let s = Stack::on_rabbitmq().await;
    let r = s.send("POST", &s.path(1, "stop"), DEMO, None).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    s.until("side stops", |s| async move {
        s.statuses().await == ["Running", "Stopped"]
    })
    .await;
    s.until("the stop ended", |s| async move {
        history(s, 1)
            .await
            .first()
            .is_some_and(|a| a.0 == "stop" && a.2)
    })
    .await;
    // A call waits for the host's reply over the broker.
    let r = s
        .send("POST", &s.path(0, "execute?command=hostname"), DEMO, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["output"], "ran hostname\n");
    assert_eq!(r.json["exit_code"], 3);
    let r = s.send("GET", &s.path(0, "top"), DEMO, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["Titles"], json!(["PID", "CMD"]));
    s.stop().await;
}
