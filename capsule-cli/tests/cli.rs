//! The `capsule` binary against the running stack (real Keystone, API, RabbitMQ and compute
//! host), as a user runs it after `source devstack/openrc demo demo`: output, exit codes, and
//! the same results python-zunclient shows for the same capsule.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{base_command, capsule, command_as, expect, json_of, running, text};
use tempest::{env, examples_dir, unique_name, wait_gone, zun, CapsuleGuard, TemplateFile, User};

#[test]
fn create_list_describe_delete_agree_with_zunclient() {
    let name = unique_name("cli");
    let file = TemplateFile::renamed(&examples_dir().join("minimal.yaml"), &name);
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    let created = capsule(
        User::Demo,
        &[
            "capsule-create",
            "-f",
            file.arg(),
            "--wait",
            "--format",
            "json",
        ],
    );
    let created = json_of(&created);
    assert_eq!(created["status"], "Running", "{created}");
    let uuid = created["uuid"].as_str().unwrap().to_owned();
    // python-zunclient sees the same capsule.
    let theirs = zun(User::Demo, &["capsule-describe", &name]).ok();
    assert!(theirs.stdout.contains(&uuid), "{}", theirs.stdout);
    // list: table by default, with zunclient's columns; json and value with -c.
    let table = expect(&capsule(User::Demo, &["capsule-list"]), 0);
    assert!(table.contains("| uuid"), "{table}");
    assert!(table.contains(&uuid) && table.contains(&name), "{table}");
    let value = expect(
        &capsule(
            User::Demo,
            &["capsule-list", "-f", "value", "-c", "uuid", "-c", "name"],
        ),
        0,
    );
    assert!(
        value.lines().any(|l| l == format!("{uuid} {name}")),
        "{value}"
    );
    let listed = json_of(&capsule(User::Demo, &["capsule-list", "-f", "json"]));
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uuid"] == uuid.as_str())
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert_eq!(mine["status"], "Running");
    // describe by name and by uuid.
    let by_name = json_of(&capsule(
        User::Demo,
        &["capsule-describe", &name, "-f", "json"],
    ));
    assert_eq!(by_name["uuid"], uuid.as_str());
    let status = expect(
        &capsule(
            User::Demo,
            &["capsule-describe", &uuid, "-f", "value", "-c", "status"],
        ),
        0,
    );
    assert_eq!(status.trim(), "Running");
    // Another project does not see it: the API's 404 message, exit 1.
    let out = capsule(User::AltDemo, &["capsule-describe", &name]);
    expect(&out, 1);
    assert!(
        text(&out.stderr).contains("could not be found"),
        "{}",
        text(&out.stderr)
    );
    // delete --wait returns when it is gone.
    let out = capsule(User::Demo, &["capsule-delete", &name, "--wait"]);
    let said = expect(&out, 0);
    assert!(said.contains(&format!(
        "Request to delete capsule {name} has been accepted."
    )));
    let out = capsule(User::Demo, &["capsule-describe", &uuid]);
    expect(&out, 1);
    assert!(
        text(&out.stderr).contains("(HTTP 404"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn apply_twice_makes_one_capsule_and_replace_recreates_a_changed_one() {
    let name = unique_name("apply");
    let file = TemplateFile::renamed(&examples_dir().join("minimal.yaml"), &name);
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    let args = ["apply", "-f", file.arg(), "--wait", "--format", "json"];
    let first = json_of(&capsule(User::Demo, &args));
    let second = capsule(User::Demo, &args);
    assert!(
        text(&second.stderr).contains("is up to date"),
        "{}",
        text(&second.stderr)
    );
    let second = json_of(&second);
    assert_eq!(first["uuid"], second["uuid"]);
    let listed = json_of(&capsule(
        User::Demo,
        &["capsule-list", "-f", "json", "-c", "name"],
    ));
    let same_name = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name.as_str());
    assert_eq!(same_name.count(), 1, "{listed}");
    // A changed template: refused without --replace, recreated with it.
    let changed = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, |v| {
        v["spec"]["containers"][0]["command"] = serde_json::json!(["sleep", "3600"]);
    });
    let out = capsule(User::Demo, &["apply", "-f", changed.arg()]);
    expect(&out, 1);
    assert!(
        text(&out.stderr).contains("--replace"),
        "{}",
        text(&out.stderr)
    );
    let third = json_of(&capsule(
        User::Demo,
        &[
            "apply",
            "-f",
            changed.arg(),
            "--replace",
            "--wait",
            "--format",
            "json",
        ],
    ));
    assert_ne!(third["uuid"], first["uuid"]);
    assert_eq!(third["status"], "Running");
    expect(
        &capsule(User::Demo, &["capsule-delete", &name, "--wait"]),
        0,
    );
}

#[test]
fn a_bad_template_fails_locally_naming_the_field_and_line_and_sends_nothing() {
    let name = unique_name("bad");
    let dir = std::env::temp_dir().join(format!("capsule-cli-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        format!(
            "kind: capsule\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - image: busybox\n    ports:\n    - containerPort: 70000\n"
        ),
    )
    .unwrap();
    // --debug shows every request: there must be none, not even to Keystone.
    let out = capsule(
        User::Demo,
        &["--debug", "capsule-create", "-f", path.to_str().unwrap()],
    );
    expect(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.yaml:8: spec.containers[0].ports[0].containerPort: must be 1..65535"),
        "{err}"
    );
    assert!(!err.contains("REQ:"), "a request was sent: {err}");
    let out = zun(User::Demo, &["capsule-list"]).ok();
    assert!(!out.stdout.contains(&name), "{}", out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_password_is_a_clear_error() {
    let mut cmd = base_command();
    cmd.env("OS_USERNAME", "demo")
        .env("OS_PROJECT_NAME", "demo")
        .env("OS_PASSWORD", "not-the-password");
    let out = cmd.arg("capsule-list").output().unwrap();
    expect(&out, 1);
    let err = text(&out.stderr);
    assert!(err.starts_with("ERROR: "), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}

#[test]
fn clouds_yaml_names_the_cloud() {
    let (user, project, password) = User::Demo.credentials();
    let dir = std::env::temp_dir().join(format!("capsule-cli-{}", unique_name("clouds")));
    std::fs::create_dir_all(&dir).unwrap();
    let clouds = dir.join("clouds.yaml");
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  devstack-demo:\n    auth:\n      auth_url: {}\n      username: {user}\n      password: {password}\n      project_name: {project}\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n",
            env("ZUN_TEST_KEYSTONE_URL")
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capsule"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("OS_CLIENT_CONFIG_FILE", &clouds)
        .env("CAPSULE_NO_TOKEN_CACHE", "1")
        .args(["--os-cloud", "devstack-demo", "capsule-list", "-f", "json"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let listed = json_of(&out);
    assert!(listed.is_array(), "{listed}");
}

#[test]
fn logs_print_what_the_container_wrote() {
    let (name, container, _guard) =
        running("logs", "echo one; echo two; echo three; exec sleep 3600");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let all = expect(&capsule(User::Demo, &["logs", &container]), 0);
        if all == "one\ntwo\nthree\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "logs: {all:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let last = expect(
        &capsule(User::Demo, &["logs", &container, "--tail", "1"]),
        0,
    );
    assert_eq!(last, "three\n");
    let stamped = expect(
        &capsule(User::Demo, &["logs", &container, "--timestamps"]),
        0,
    );
    let first = stamped.lines().next().unwrap_or_default();
    assert!(first.ends_with(" one") && first.contains('T'), "{stamped}");
    let out = capsule(User::Demo, &["logs", &container, "--tail", "many"]);
    expect(&out, 2);
    expect(
        &capsule(User::Demo, &["capsule-delete", &name, "--wait"]),
        0,
    );
    wait_gone(User::Demo, &name, Duration::from_secs(60));
}

#[test]
fn service_list_shows_the_compute_host_up_for_admins() {
    let services = json_of(&capsule(User::Admin, &["service-list", "-f", "json"]));
    let up = services
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["binary"] == "zun-compute" && s["state"] == "up");
    assert!(up, "{services}");
    // Not for a member: the policy's refusal, exit 1.
    let out = capsule(User::Demo, &["service-list"]);
    expect(&out, 1);
    assert!(text(&out.stderr).contains("403"), "{}", text(&out.stderr));
}

#[test]
fn debug_hides_secrets_and_completion_knows_the_commands() {
    let (_, _, password) = User::Demo.credentials();
    let out = capsule(User::Demo, &["--debug", "capsule-list"]);
    expect(&out, 0);
    let err = text(&out.stderr);
    assert!(
        err.contains("REQ: GET") && err.contains("{SHA256}"),
        "{err}"
    );
    assert!(
        !err.contains(&password),
        "the password is in --debug output"
    );
    let bash = expect(
        &Command::new(env!("CARGO_BIN_EXE_capsule"))
            .args(["completion", "bash"])
            .output()
            .unwrap(),
        0,
    );
    assert!(bash.contains("capsule-create") && bash.contains("capsule-delete"));
}

#[test]
fn logs_follow_prints_each_new_line_once_and_ends_with_the_capsule() {
    use std::io::{BufRead, BufReader};
    let (name, container, _guard) = running(
        "follow",
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done",
    );
    let mut child = command_as(User::Demo)
        .args(["logs", &container, "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Polls overlap (`since` is inclusive): every tick must still come exactly once, in order.
    let first: u32 = {
        let l = lines.next().unwrap().unwrap();
        l.strip_prefix("tick ").unwrap().parse().unwrap()
    };
    for want in first + 1..first + 15 {
        let l = lines.next().expect("follow ended early").unwrap();
        assert_eq!(l, format!("tick {want}"));
    }
    // The capsule goes: follow ends by itself.
    expect(
        &capsule(User::Demo, &["capsule-delete", &name, "--wait"]),
        0,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("logs --follow did not end after the capsule was deleted");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
}
