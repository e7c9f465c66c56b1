//! Operating what runs, with the unchanged python-zunclient against the running stack, on a
//! capsule container: `zun exec` (once and `--interactive` through a pseudo-terminal), `top`,
//! `stats`, `cp` both ways, `stop`/`start`/`restart`/`kill`/`pause`/`unpause`, and
//! `action-list`; a reader may look but not change, another project sees nothing; an
//! interactive exec whose client is killed leaves no process behind.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempest::{
    client_command, examples_dir, openstack, unique_name, wait_capsule, wait_status, zun,
    CapsuleGuard, TemplateFile, User,
};

/// A running `minimal` capsule of demo's; its guard and its container's uuid.
fn running(prefix: &str) -> (CapsuleGuard, TemplateFile, String) {
    let name = unique_name(prefix);
    let file = TemplateFile::renamed(&examples_dir().join("minimal.yaml"), &name);
    let guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
    let c = wait_status(User::Demo, &name, "Running", Duration::from_secs(60));
    let uuid = c["containers"][0]["uuid"].as_str().unwrap().to_owned();
    (guard, file, uuid)
}

/// Waits until the capsule's container reads `want`.
fn wait_container(name: &str, want: &str) -> Value {
    wait_capsule(
        User::Demo,
        name,
        &format!("had its container {want}"),
        Duration::from_secs(30),
        |c| c["containers"][0]["status"] == want,
    )
}

#[test]
fn zun_exec_top_stats_cp_lifecycle_and_history() {
    let (guard, _file, c) = running("ops");
    let name = guard.name.clone();

    // exec: the output of a command run in the container.
    let host = zun(User::Demo, &["exec", &c, "cat /etc/hostname"]).ok();
    let hostname = zun(User::Demo, &["exec", &c, "hostname"]).ok();
    assert!(!host.stdout.trim().is_empty(), "{host:?}");
    assert_eq!(host.stdout.trim(), hostname.stdout.trim());

    // top and stats.
    let top = zun(User::Demo, &["top", &c]).ok();
    assert!(top.stdout.contains("sleep"), "{}", top.stdout);
    let stats = zun(User::Demo, &["stats", &c]).ok();
    for key in [
        "CPU %",
        "MEM USAGE(MiB)",
        "MEM LIMIT(MiB)",
        "BLOCK I/O(B)",
        "NET I/O(B)",
    ] {
        assert!(stats.stdout.contains(key), "{key}: {}", stats.stdout);
    }

    // cp both ways.
    let dir = std::env::temp_dir().join(unique_name("cp"));
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let local = dir.join("hello.txt");
    std::fs::write(&local, format!("hello {name}\n")).unwrap();
    let dest = format!("{c}:/tmp");
    zun(User::Demo, &["cp", local.to_str().unwrap(), &dest]).ok();
    let cat = zun(User::Demo, &["exec", &c, "cat /tmp/hello.txt"]).ok();
    assert_eq!(cat.stdout.trim(), format!("hello {name}"));
    let src = format!("{c}:/tmp/hello.txt");
    zun(User::Demo, &["cp", &src, dir.join("out").to_str().unwrap()]).ok();
    let back = std::fs::read_to_string(dir.join("out/hello.txt")).unwrap();
    assert_eq!(back, format!("hello {name}\n"));
    std::fs::remove_dir_all(&dir).unwrap();

    // A reader looks but does not change; another project sees nothing.
    zun(User::Reader, &["top", &c]).ok();
    let r = zun(User::Reader, &["stop", &c]);
    assert!(
        r.stdout.contains("403") || r.stderr.contains("403"),
        "{r:?}"
    );
    let r = zun(User::AltDemo, &["top", &c]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("could not be found"), "{r:?}");

    // The lifecycle.
    zun(User::Demo, &["stop", &c]).ok();
    wait_container(&name, "Stopped");
    let r = zun(User::Demo, &["exec", &c, "ls"]);
    assert!(
        r.stderr
            .contains(&format!("Cannot execute container {c} in Stopped state")),
        "{r:?}"
    );
    zun(User::Demo, &["start", &c]).ok();
    wait_container(&name, "Running");
    zun(User::Demo, &["restart", &c]).ok();
    wait_container(&name, "Running");
    zun(User::Demo, &["pause", &c]).ok();
    wait_container(&name, "Paused");
    zun(User::Demo, &["unpause", &c]).ok();
    wait_container(&name, "Running");
    zun(User::Demo, &["kill", &c]).ok();
    wait_container(&name, "Stopped");
    // Stopped by a user, it stays stopped (the restart policy does not revive it).
    std::thread::sleep(Duration::from_secs(3));
    let shown = openstack(User::Demo, &["capsule", "show", &name, "-f", "json"]).ok();
    assert_eq!(shown.json()["containers"][0]["status"], "Stopped");

    // The history tells it all.
    let list = zun(User::Demo, &["action-list", &c]).ok();
    for action in [
        "exec_cmd",
        "put_archive",
        "stop",
        "start",
        "reboot",
        "pause",
        "unpause",
        "kill",
    ] {
        assert!(list.stdout.contains(action), "{action}: {}", list.stdout);
    }
}

/// `zun exec --interactive C /bin/sh` in a pseudo-terminal (`script`), fed `input`.
fn interactive(c: &str, input: &str) -> std::process::Child {
    let zun_bin = format!("{}/zun", tempest::env("ZUN_TEST_CLIENTS_BIN"));
    let cmd = client_command("zun", User::Demo);
    // `script` gives zunclient the terminal it makes raw; it runs the same `zun`.
    let line = format!("{zun_bin} exec --interactive {c} /bin/sh");
    let mut child = std::process::Command::new("/usr/bin/script")
        .args(["-qec", &line, "/dev/null"])
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child
}

#[test]
fn zun_exec_interactive_and_a_killed_client_leaves_nothing() {
    let (_guard, _file, c) = running("ish");
    let mut child = interactive(&c, "echo marker-$$\nps\nexit\n");
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("marker-"), "{text}");
    assert!(text.contains("PID"), "{text}");

    // A client killed mid-session: its shell and what it ran go with it.
    let mut child = interactive(&c, "sleep 4242\n");
    std::thread::sleep(Duration::from_secs(3));
    let top = zun(User::Demo, &["top", &c]).ok();
    assert!(
        top.stdout.contains("4242"),
        "the session never ran: {}",
        top.stdout
    );
    child.kill().unwrap();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(70);
    loop {
        let top = zun(User::Demo, &["top", &c]).ok();
        if !top.stdout.contains("4242") {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {}", top.stdout);
        std::thread::sleep(Duration::from_secs(1));
    }
}
