//! The real python-zunclient (`zun`) and `openstack capsule` commands against the running
//! stack, as a user of the cloud runs them: create, list, describe, delete, tenancy, 401.

use std::time::Duration;

use tempest::{
    api_url, examples_dir, free_port, openstack, unique_name, wait_gone, wait_status, zun,
    CapsuleGuard, TemplateFile, User,
};

#[test]
fn zun_capsule_lifecycle() {
    let name = unique_name("zc");
    let file = TemplateFile::renamed(&examples_dir().join("minimal.yaml"), &name);
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    let out = zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
    assert!(
        out.stdout
            .contains("Request to create capsule has been accepted"),
        "{}",
        out.stdout
    );
    let list = zun(User::Demo, &["capsule-list"]).ok();
    assert!(list.stdout.contains(&name), "{}", list.stdout);
    // Scheduled to the stack's compute host, built and reported over RabbitMQ.
    let running = wait_status(User::Demo, &name, "Running", Duration::from_secs(60));
    assert_eq!(running["containers"][0]["status"], "Running", "{running}");
    let show = zun(User::Demo, &["capsule-describe", &name]).ok();
    assert!(show.stdout.contains(&name));
    assert!(show.stdout.contains("Running"), "{}", show.stdout);

    let listed = openstack(User::Demo, &["capsule", "list", "-f", "json"])
        .ok()
        .json();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c.to_string().contains(&name))
        .unwrap_or_else(|| panic!("{name} not in {listed}"));
    assert_eq!(row["status"], "Running", "{row}");

    zun(User::Demo, &["capsule-delete", &name]).ok();
    // Deletion goes through the host; the capsule disappears once the host reports it gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let gone = zun(User::Demo, &["capsule-describe", &name]);
        if gone.code != Some(0) {
            assert!(
                gone.stderr.contains("could not be found"),
                "{}",
                gone.stderr
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never went away"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn other_projects_capsules_are_invisible() {
    let name = unique_name("secret");
    let file = TemplateFile::renamed(&examples_dir().join("minimal.yaml"), &name);
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Admin,
    };
    zun(User::Admin, &["capsule-create", "-f", file.arg()]).ok();
    // demo can neither list, describe nor delete admin's capsule.
    let list = zun(User::Demo, &["capsule-list"]).ok();
    assert!(!list.stdout.contains(&name), "{}", list.stdout);
    let r = zun(User::Demo, &["capsule-describe", &name]);
    assert_ne!(r.code, Some(0), "describe succeeded for demo");
    assert!(r.stderr.contains("could not be found"), "{}", r.stderr);
    // python-zunclient reports a failed delete on stdout and still exits 0.
    let r = zun(User::Demo, &["capsule-delete", &name]);
    assert!(
        r.stdout
            .contains(&format!("Delete for capsule {name} failed"))
            && r.stdout.contains("could not be found"),
        "{}",
        r.stdout
    );
    // demo asking for all projects is refused, not silently narrowed.
    let r = zun(User::Demo, &["capsule-list", "--all-projects"]);
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("capsule:get_all_all_projects"),
        "{}",
        r.stderr
    );
    // admin sees it among all projects, and it still exists.
    let all = zun(User::Admin, &["capsule-list", "--all-projects"]).ok();
    assert!(all.stdout.contains(&name), "{}", all.stdout);
}

#[test]
fn every_example_is_accepted_by_zun_capsule_create() {
    let mut n = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let name = unique_name("ex");
        let file = TemplateFile::renamed(&path, &name);
        let _guard = CapsuleGuard {
            name: name.clone(),
            owner: User::Demo,
        };
        zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
        let show = zun(User::Demo, &["capsule-describe", &name]).ok();
        assert!(
            show.stdout.contains(&name),
            "{}: {}",
            path.display(),
            show.stdout
        );
        zun(User::Demo, &["capsule-delete", &name]).ok();
        n += 1;
    }
    assert!(n >= 2);
}

#[test]
fn bad_template_is_refused_with_the_field_named() {
    let name = unique_name("bad");
    let path = std::env::temp_dir().join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "kind: capsule\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - image: busybox\n    \
             ports:\n    - containerPort: 70000\n"
        ),
    )
    .unwrap();
    let r = zun(
        User::Demo,
        &["capsule-create", "-f", path.to_str().unwrap()],
    );
    let _ = std::fs::remove_file(&path);
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr
            .contains("spec.containers[0].ports[0].containerPort"),
        "{}",
        r.stderr
    );
    let list = zun(User::Demo, &["capsule-list"]).ok();
    assert!(!list.stdout.contains(&name), "nothing was created");
}

#[tokio::test]
async fn no_token_gets_401_with_the_keystone_uri() {
    let resp = reqwest::get(format!("{}/v1/capsules", api_url()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"].to_str().unwrap(),
        "Keystone uri=\"http://127.0.0.1:5000\""
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["title"], "Unauthorized");
    // With a token, the same request works.
    let tok = tempest::token(User::Demo).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/capsules", api_url()))
        .header("x-auth-token", tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// `GET /` on 127.0.0.1:`port`, the whole answer (status line, headers, body).
fn http_get(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn the_web_example_serves_on_its_host_port_and_zun_logs_prints_the_sidecar() {
    let name = unique_name("web");
    let port = free_port();
    // Its own group with port 80 open, so it does not race the security-group tests, which
    // open and close ports of the project's default group.
    let group = unique_name("web");
    openstack(User::Demo, &["security", "group", "create", &group]).ok();
    let _group = GroupGuard(group.clone());
    openstack(
        User::Demo,
        &[
            "security",
            "group",
            "rule",
            "create",
            &group,
            "--protocol",
            "tcp",
            "--dst-port",
            "80:80",
            "--remote-ip",
            "0.0.0.0/0",
        ],
    )
    .ok();
    let file = TemplateFile::edited(&examples_dir().join("web.yaml"), &name, |v| {
        v["spec"]["containers"][0]["ports"][0]["hostPort"] = port.into();
        v["spec"]["securityGroups"] = serde_json::json!([group.clone()]);
    });
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
    let running = wait_status(User::Demo, &name, "Running", Duration::from_secs(120));
    let page = http_get(port).unwrap_or_else(|e| panic!("127.0.0.1:{port}: {e}"));
    assert!(page.contains("Welcome to nginx!"), "{page}");
    let sidecar = running["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sidecar")
        .unwrap_or_else(|| panic!("no sidecar in {running}"));
    let id = sidecar["uuid"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logs = zun(User::Demo, &["logs", id]).ok();
        // The page came over 127.0.0.1 (shared network), and `ps` in the sidecar lists
        // nginx's processes (shared PID namespace).
        if logs.stdout.contains("Welcome to nginx!") && logs.stdout.contains("nginx: master") {
            assert!(
                logs.stdout.contains(&format!("hostname={name}")),
                "{}",
                logs.stdout
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sidecar never printed the page and nginx in ps: {}",
            logs.stdout
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    zun(User::Demo, &["capsule-delete", &name]).ok();
    wait_gone(User::Demo, &name, Duration::from_secs(120));
}

/// Deletes a security group of demo's when dropped (retrying while a capsule still uses it).
struct GroupGuard(String);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while openstack(User::Demo, &["security", "group", "delete", &self.0]).code != Some(0)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
