//! Operating what runs, with the unchanged python-zunclient against the running stack, on a
//! capsule container: `zun exec` (once and `--interactive` through a pseudo-terminal), `top`,
//! `stats`, `cp` both ways, `stop`/`start`/`restart`/`kill`/`pause`/`unpause`, and
//! `action-list`; a reader may look but not change, another project sees nothing; an
//! interactive exec whose client is killed leaves no process behind.
//!
//! `zun top` (and `openstack appcontainer top`) cannot print under Python 3 with any server:
//! python-zunclient does `print("%-20s") % titles`, a TypeError once `print` returns `None`.
//! top is asked through python-zunclient's own library call (`containers.top`) instead.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
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

/// python-zunclient's `containers.top(c)` as demo, printed one line per title row and process.
fn top(c: &str) -> String {
    top_as(User::Demo, c).unwrap_or_else(|e| panic!("containers.top: {e}"))
}

/// The same as `user`: what it printed, or what it printed and its error.
fn top_as(user: User, c: &str) -> Result<String, String> {
    const SCRIPT: &str = r#"import os, sys
from zunclient import client
e = os.environ
cs = client.Client('1.latest', auth_url=e['OS_AUTH_URL'], username=e['OS_USERNAME'],
    password=e['OS_PASSWORD'], project_name=e['OS_PROJECT_NAME'],
    user_domain_name=e['OS_USER_DOMAIN_NAME'],
    project_domain_name=e['OS_PROJECT_DOMAIN_NAME'], region_name=e['OS_REGION_NAME'])
out = cs.containers.top(sys.argv[1])
print(' '.join(out['Titles']))
for p in out['Processes'] or []:
    print(' '.join(str(f) for f in p))
"#;
    let out = client_command("python3", user)
        .args(["-c", SCRIPT, c])
        .output()
        .expect("run python3 of the clients' venv");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
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
    let top = top(&c);
    assert!(top.contains("PID") && top.contains("sleep"), "{top}");
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
    top_as(User::Reader, &c).unwrap_or_else(|e| panic!("a reader's top: {e}"));
    let r = zun(User::Reader, &["stop", &c]);
    assert!(
        r.stdout.contains("403") || r.stderr.contains("403"),
        "{r:?}"
    );
    let r = top_as(User::AltDemo, &c).expect_err("another project's top");
    assert!(r.contains("could not be found"), "{r}");

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

/// `zun exec --interactive C /bin/sh` in a pseudo-terminal (`script`): what it printed so far
/// is kept, and input is typed once the client has made its terminal raw (which discards
/// anything typed before).
struct Session {
    child: std::process::Child,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    fn start(c: &str) -> Session {
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
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let s = Session { child, out };
        s.wait_for("connected to", Duration::from_secs(30));
        // Past the client's switch to raw mode, which flushes what was typed before it.
        std::thread::sleep(Duration::from_millis(500));
        s
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until the session printed `needle`.
    fn wait_for(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never printed: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\r").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

/// The processes below `pid` (children first found, then theirs), from `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let parent_of = |p: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(all.iter().copied().filter(|c| parent_of(*c) == Some(p)));
        i += 1;
    }
    out.remove(0);
    out
}

impl Drop for Session {
    /// The client is killed: `zun` itself (and anything it ran) with SIGKILL, then `script`.
    fn drop(&mut self) {
        for pid in descendants(self.child.id()) {
            let _ = std::process::Command::new("/bin/kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn zun_exec_interactive_and_a_killed_client_leaves_nothing() {
    let (_guard, _file, c) = running("ish");
    let mut s = Session::start(&c);
    // zunclient waits for Enter before it attaches.
    s.type_line("");
    s.wait_for("# ", Duration::from_secs(30));
    s.type_line("echo marker-$$");
    s.wait_for("marker-", Duration::from_secs(30));
    s.type_line("ps");
    s.wait_for("PID", Duration::from_secs(30));
    s.type_line("exit");
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "exit did not end the session: {}",
            s.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(s);

    // A client killed mid-session: its shell and what it ran go with it.
    let mut s = Session::start(&c);
    s.type_line("");
    s.wait_for("# ", Duration::from_secs(30));
    s.type_line("sleep 4242");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if top(&c).contains("4242") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session never ran: {}",
            s.text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(70);
    loop {
        let top = top(&c);
        if !top.contains("4242") {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {top}");
        std::thread::sleep(Duration::from_secs(1));
    }
}
