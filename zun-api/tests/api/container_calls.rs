//! Zun's calls on capsule containers, answered by a fake host over the in-process bus: exec
//! (output and exit code, or an interactive session's `proxy_url`), `execute_resize`, `top`,
//! `stats`, `get_archive`/`put_archive`; each as python-zunclient sends it, bad input refused
//! by name before anything reaches the host, and what changes a container kept in its history.

use base64::Engine;
use capsule_types::rpc::{ComputeRequest, ContainerCall, ContainerReply};
use serde_json::{json, Value};

use crate::common::DEMO;
use crate::fake_host::Stack;

/// The call of the host's `n`th container request.
async fn call(s: &Stack, n: usize) -> ContainerCall {
    let got = s.host.wait_requests(n + 1).await;
    match &got[n].1 {
        ComputeRequest::ContainerCall { call, .. } => call.clone(),
        other => panic!("not a call: {other:?}"),
    }
}

#[tokio::test]
async fn exec_top_and_stats_as_zunclient_reads_them() {
    let s = Stack::start().await;
    let web = s.containers[0].clone();

    // `zun exec C "cat /etc/hostname"` (zunclient quotes the command, run=True).
    let q = "execute?run=True&interactive=False&command=%22cat%20%2Fetc%2Fhostname%22";
    let r = s.send("POST", &s.path(0, q), DEMO, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        r.json,
        json!({"output": "ran cat /etc/hostname\n", "exit_code": 3,
               "exec_id": null, "proxy_url": null})
    );
    let rid = r.header("x-openstack-request-id").unwrap().to_owned();
    assert_eq!(
        call(&s, 0).await,
        ContainerCall::Exec {
            command: vec!["cat".into(), "/etc/hostname".into()],
            interactive: false,
            tty: false,
        }
    );

    // `zun exec --interactive C /bin/sh`: a session on this API's own stream route.
    let q = "execute?run=False&interactive=True&command=%22%2Fbin%2Fsh%22";
    let r = s.send("POST", &s.path(0, q), DEMO, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let exec_id = r.json["exec_id"].as_str().unwrap().to_owned();
    let url = r.json["proxy_url"].as_str().unwrap();
    let prefix =
        format!("ws://zun.test:9517/v1/containers/{web}/exec_stream?exec_id={exec_id}&grant=g-");
    assert!(url.starts_with(&prefix), "{url}");
    assert!(
        !url.contains("198.51.100.7"),
        "the host's own address leaked: {url}"
    );
    assert_eq!(r.json["output"], Value::Null);
    assert_eq!(
        call(&s, 1).await,
        ContainerCall::Exec {
            command: vec!["/bin/sh".into()],
            interactive: true,
            tty: true,
        }
    );
    let q = format!("execute_resize?exec_id={exec_id}&w=120&h=40");
    let r = s.send("POST", &s.path(0, &q), DEMO, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    match call(&s, 2).await {
        ContainerCall::ExecResize {
            exec_id: e,
            width,
            height,
        } => assert_eq!((e.to_string(), width, height), (exec_id.clone(), 120, 40)),
        other => panic!("{other:?}"),
    }

    // top with ps_args, Docker's shape.
    let r = s
        .send("GET", &s.path(0, "top?ps_args=aux"), DEMO, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        r.json,
        json!({"Titles": ["PID", "CMD"], "Processes": [["1", "sleep 3600"]]})
    );
    assert_eq!(
        call(&s, 3).await,
        ContainerCall::Top {
            ps_args: Some("aux".into())
        }
    );
    // stats in the words of Zun's Docker driver.
    let r = s.send("GET", &s.path(0, "stats"), DEMO, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["CONTAINER"], "web");
    assert_eq!(r.json["CPU %"], 2.5);
    assert_eq!(r.json["MEM USAGE(MiB)"], 32.0);
    assert_eq!(r.json["MEM LIMIT(MiB)"], 128.0);
    assert_eq!(r.json["MEM %"], 25.0);
    assert_eq!(r.json["BLOCK I/O(B)"], "0/0");

    // The host's refusal is the API's error.
    s.host.books.lock().unwrap().reply = Some(ContainerReply::Conflict {
        message: "Exec session is over".into(),
    });
    let q = format!("execute_resize?exec_id={exec_id}&w=1&h=1");
    let r = s.send("POST", &s.path(0, &q), DEMO, None).await;
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert_eq!(r.detail(), "Exec session is over");
    s.host.books.lock().unwrap().reply = None;

    // Bad input, refused by name; nothing reaches the host.
    let before = s.sent();
    let many = vec!["a"; 4097].join("%20");
    for (m, q, names) in [
        (
            "POST",
            "execute".to_owned(),
            "'command' is a required property",
        ),
        ("POST", "execute?command=".to_owned(), "names no program"),
        (
            "POST",
            "execute?command=%22%22".to_owned(),
            "names no program",
        ),
        ("POST", format!("execute?command={many}"), "at most 4096"),
        ("POST", "execute?command=ls&run=maybe".to_owned(), "run"),
        (
            "POST",
            "execute?command=ls&tty=true".to_owned(),
            "needs interactive=True",
        ),
        (
            "POST",
            "execute?command=ls&pty=true".to_owned(),
            "'pty' was unexpected",
        ),
        (
            "POST",
            "execute_resize?exec_id=x&w=1&h=1".to_owned(),
            "exec_id",
        ),
        (
            "POST",
            format!("execute_resize?exec_id={exec_id}&w=0&h=1"),
            "w",
        ),
        ("GET", "top?ps_args=aux%3Brm%20-rf".to_owned(), "ps_args"),
        ("GET", "top?ps_args=%24(id)".to_owned(), "ps_args"),
        ("GET", "top?all=1".to_owned(), "'all' was unexpected"),
    ] {
        let r = s.send(m, &s.path(0, &q), DEMO, None).await;
        assert_eq!(r.status, 400, "{q}: {:?}", r.json);
        assert!(r.detail().contains(names), "{q}: {}", r.detail());
    }
    assert_eq!(s.sent(), before, "refused requests reached the host");

    // The history: the execs, each ended by its answer (the interactive one by its host).
    let r = s
        .send("GET", &s.path(0, "container_actions"), DEMO, None)
        .await;
    let actions = r.json["containerActions"].as_array().unwrap().clone();
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(actions.iter().all(|a| a["action"] == "exec_cmd"));
    let ran = actions.iter().find(|a| a["request_id"] == *rid).unwrap();
    assert!(ran["finish_time"].is_string(), "{ran:?}");
    s.stop().await;
}

/// A tar archive holding `name` with `body`.
fn tar_of(name: &str, body: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, body).unwrap();
    b.into_inner().unwrap()
}

#[tokio::test]
async fn archives_both_ways_with_limits() {
    let s = Stack::start_with("[api]\narchive_max_bytes = 4096\n").await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let tar = b64(&tar_of("hello.txt", b"hi\n"));

    // `zun cp ./hello.txt C:/tmp`: put_archive?path=/tmp with {"data": <base64 tar>}.
    let body = json!({ "data": tar });
    let r = s
        .send(
            "POST",
            &s.path(0, "put_archive?path=/tmp"),
            DEMO,
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        call(&s, 0).await,
        ContainerCall::PutArchive {
            path: "/tmp".into(),
            data: tar.clone()
        }
    );
    // `zun cp C:/tmp ./`: the archive and its stat.
    let r = s
        .send("GET", &s.path(0, "get_archive?path=/tmp"), DEMO, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["data"], *tar);
    assert_eq!(r.json["stat"]["name"], "tmp");
    assert_eq!(r.json["stat"]["mode"], 0o644);
    assert_eq!(r.json["stat"]["linkTarget"], "");
    // What the host has not: its 404.
    let r = s
        .send("GET", &s.path(0, "get_archive?path=/nope"), DEMO, None)
        .await;
    assert_eq!(r.status, 404, "{:?}", r.json);
    assert_eq!(r.detail(), "/nope: no such file or directory");
    // An archive the host answers over the limit: 413.
    let big = b64(&vec![0u8; 8192]);
    s.host
        .books
        .lock()
        .unwrap()
        .archives
        .insert("/big".into(), big.clone());
    let r = s
        .send("GET", &s.path(0, "get_archive?path=/big"), DEMO, None)
        .await;
    assert_eq!(r.status, 413, "{:?}", r.json);
    let sent = s.sent();

    // Refused before the host: traversal, relative paths, bad data, over the limit, older
    // microversions.
    for (q, body, status, names) in [
        (
            "put_archive?path=/tmp/../etc",
            json!({"data": tar}),
            400,
            "'..'",
        ),
        (
            "put_archive?path=tmp",
            json!({"data": tar}),
            400,
            "absolute",
        ),
        (
            "put_archive",
            json!({"data": tar}),
            400,
            "'path' is a required property",
        ),
        (
            "put_archive?path=/tmp",
            json!({"data": "not base64!"}),
            400,
            "not base64",
        ),
        (
            "put_archive?path=/tmp",
            json!({"data": ""}),
            400,
            "empty archive",
        ),
        (
            "put_archive?path=/tmp",
            json!({}),
            400,
            "'data' is a required property",
        ),
        (
            "put_archive?path=/tmp",
            json!({"data": tar, "x": 1}),
            400,
            "'x' was unexpected",
        ),
        (
            "put_archive?path=/tmp",
            json!({"data": big}),
            413,
            "limit of 4096 bytes",
        ),
    ] {
        let r = s.send("POST", &s.path(0, q), DEMO, Some(&body)).await;
        assert_eq!(r.status, status, "{q}: {:?}", r.json);
        assert!(r.detail().contains(names), "{q}: {}", r.detail());
    }
    let r = s
        .send(
            "GET",
            &s.path(0, "get_archive?path=/a/../../etc"),
            DEMO,
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    let old = [("openstack-api-version", "container 1.24")];
    let r = s
        .api
        .call(
            "GET".parse().unwrap(),
            &s.path(0, "get_archive?path=/tmp"),
            Some(DEMO),
            None,
            &old,
        )
        .await;
    assert_eq!(r.status, 406, "{:?}", r.json);
    assert!(r.detail().contains("1.25"), "{}", r.detail());
    assert_eq!(s.sent(), sent, "refused requests reached the host");

    // The put is in the history, ended.
    let r = s
        .send("GET", &s.path(0, "container_actions"), DEMO, None)
        .await;
    let actions = r.json["containerActions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["action"], "put_archive");
    assert!(actions[0]["finish_time"].is_string());
    s.stop().await;
}
