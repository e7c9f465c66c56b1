//! Operating a running capsule with the `capsule` binary against the running stack, as a user
//! would: `exec` (once, with piped stdin, and `-it` in a pseudo-terminal whose size changes),
//! `cp` both ways, `top`, `stats`, the lifecycle verbs on a container and on a whole capsule,
//! and `events`; a reader may look but not act.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{capsule, command_as, expect, json_of, running, text};
use serde_json::Value;
use tempest::User;

/// The capsule as demo sees it.
fn describe(name: &str) -> Value {
    json_of(&capsule(
        User::Demo,
        &["capsule-describe", name, "-f", "json"],
    ))
}

/// Waits until the capsule's first container has `status` (and the capsule `capsule`, if
/// given).
fn wait_status(name: &str, status: &str, capsule_status: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = describe(name);
        let container = c["containers"][0]["status"].as_str().unwrap_or_default();
        let whole = c["status"].as_str().unwrap_or_default();
        if container == status && capsule_status.is_none_or(|s| s == whole) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {status} (capsule {capsule_status:?}): {c}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `capsule args` as demo, with `input` on its stdin and then its end; killed (and the test
/// failed) if it has not ended within 60 s.
fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = command_as(User::Demo)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run capsule");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the end of stdin did not end {args:?}: {}",
                text(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn exec_cp_top_stats_lifecycle_and_events() {
    let (name, c, _guard) = running("cliops", "exec sleep 3600");

    // exec: the output, and the command's exit code as ours.
    let out = expect(
        &capsule(User::Demo, &["exec", &c, "--", "cat", "/etc/hostname"]),
        0,
    );
    assert!(!out.trim().is_empty(), "no hostname printed");
    let out = capsule(
        User::Demo,
        &["exec", &c, "--", "sh", "-c", "echo out; exit 7"],
    );
    assert_eq!(expect(&out, 7), "out\n");
    // -i without a terminal: piped stdin reaches the command and its end ends the command.
    let out = with_stdin(
        &["exec", "-i", &c, "--", "sh", "-c", "cat; echo done"],
        b"piped\n",
    );
    assert_eq!(expect(&out, 0), "piped\ndone\n");

    // cp both ways.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("hello.txt");
    std::fs::write(&local, "hello from the cli\n").unwrap();
    let to = format!("{c}:/tmp");
    expect(
        &capsule(User::Demo, &["cp", local.to_str().unwrap(), &to]),
        0,
    );
    let inside = expect(
        &capsule(User::Demo, &["exec", &c, "--", "cat", "/tmp/hello.txt"]),
        0,
    );
    assert_eq!(inside, "hello from the cli\n");
    let back = dir.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let from = format!("{c}:/tmp/hello.txt");
    expect(
        &capsule(User::Demo, &["cp", &from, back.to_str().unwrap()]),
        0,
    );
    let copied = std::fs::read_to_string(back.join("hello.txt")).unwrap();
    assert_eq!(copied, "hello from the cli\n");

    // top and stats.
    let top = expect(&capsule(User::Demo, &["top", &c]), 0);
    assert!(top.contains("sleep 3600"), "{top}");
    let stats = json_of(&capsule(User::Demo, &["stats", &c, "-f", "json"]));
    assert!(
        stats["MEM USAGE(MiB)"].as_f64().unwrap_or(0.0) > 0.0,
        "{stats}"
    );

    // A reader may look, not act.
    expect(&capsule(User::Reader, &["top", &c]), 0);
    let refused = capsule(User::Reader, &["stop", &c]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("403"),
        "{}",
        text(&refused.stderr)
    );

    // The lifecycle of the container.
    expect(&capsule(User::Demo, &["stop", "--timeout", "1", &c]), 0);
    wait_status(&name, "Stopped", None);
    let refused = capsule(User::Demo, &["exec", &c, "--", "true"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("Stopped state"),
        "{}",
        text(&refused.stderr)
    );
    expect(&capsule(User::Demo, &["start", &c]), 0);
    wait_status(&name, "Running", Some("Running"));
    expect(&capsule(User::Demo, &["pause", &c]), 0);
    wait_status(&name, "Paused", None);
    expect(&capsule(User::Demo, &["unpause", &c]), 0);
    wait_status(&name, "Running", None);
    expect(&capsule(User::Demo, &["restart", "--timeout", "1", &c]), 0);
    wait_status(&name, "Running", Some("Running"));
    expect(&capsule(User::Demo, &["kill", &c]), 0);
    wait_status(&name, "Stopped", None);

    // The whole capsule.
    expect(&capsule(User::Demo, &["start", "--capsule", &name]), 0);
    wait_status(&name, "Running", Some("Running"));
    expect(
        &capsule(User::Demo, &["stop", "--capsule", "--timeout", "1", &name]),
        0,
    );
    wait_status(&name, "Stopped", Some("Stopped"));
    expect(&capsule(User::Demo, &["start", "--capsule", &name]), 0);
    wait_status(&name, "Running", Some("Running"));

    // What happened, newest first.
    let events = json_of(&capsule(User::Demo, &["events", &c, "-f", "json"]));
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    for action in [
        "exec_cmd",
        "put_archive",
        "stop",
        "start",
        "pause",
        "unpause",
        "reboot",
        "kill",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
}

/// The output of a process on a pseudo-terminal, kept as it comes.
struct Terminal {
    master: OwnedFd,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until the output after `from` bytes contains `needle`; the output's length then.
    fn wait_for(&self, from: usize, needle: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.out.lock().unwrap().clone();
            let after = String::from_utf8_lossy(&out[from.min(out.len())..]).into_owned();
            if after.contains(needle) {
                return out.len();
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never printed: {}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, line: &str) {
        let mut w = std::fs::File::from(self.master.try_clone().unwrap());
        w.write_all(format!("{line}\r").as_bytes()).unwrap();
    }

    fn resize(&self, cols: u16, rows: u16) {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&self.master, size).unwrap();
    }
}

#[test]
fn exec_it_in_a_terminal_follows_its_size_and_passes_the_exit_code() {
    let (_name, c, _guard) = running("clitty", "exec sleep 3600");
    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("a pseudo-terminal");
    let slave = |_| Stdio::from(pty.slave.try_clone().unwrap());
    let mut child = command_as(User::Demo)
        .args(["exec", "-it", &c, "--", "/bin/sh"])
        .stdin(slave(0))
        .stdout(slave(1))
        .stderr(slave(2))
        .spawn()
        .expect("run capsule");
    drop(pty.slave);
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut reader = std::fs::File::from(pty.master.try_clone().unwrap());
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let t = Terminal {
        master: pty.master,
        out,
    };
    let seen = t.wait_for(0, "# ");
    // The session starts at the local terminal's size.
    t.type_line("stty size");
    let seen = t.wait_for(seen, "24 80");
    // And follows it when it changes.
    t.resize(132, 41);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = seen;
    loop {
        t.type_line("echo size=$(stty size)");
        seen = t.wait_for(seen, "size=");
        if t.text().contains("size=41 132") {
            break;
        }
        assert!(Instant::now() < deadline, "never resized: {}", t.text());
        std::thread::sleep(Duration::from_millis(200));
    }
    t.type_line("exit 3");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "exit did not end it: {}",
            t.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(3), "{}", t.text());
}
