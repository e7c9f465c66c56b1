//! The compute host's security-group table is kernel state the agent owns: if anything outside
//! the agent flushes it (an operator's `nft flush ruleset`, another tool), the capsules'
//! security groups are not enforced until the agent puts it back. It must notice by itself,
//! within a few seconds, and say so in its log, not wait for the next rule change.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tempest::{
    env, examples_dir, free_port, unique_name, wait_status, zun, CapsuleGuard, TemplateFile, User,
};

const LONG: Duration = Duration::from_secs(120);
/// How long the agent may take to put its table back.
const RESTORE_WITHIN: Duration = Duration::from_secs(10);

/// Whether an HTTP server answers on 127.0.0.1:`port` (a dropped SYN times out: closed).
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /passwd HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

fn nft(args: &[&str]) -> String {
    let out = Command::new("nft")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nft: {e}"));
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent's log from byte `from` on.
fn log_since(from: u64) -> String {
    let text = std::fs::read(env("ZUN_TEST_COMPUTE_LOG")).expect("read the agent's log");
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(text.len());
    String::from_utf8_lossy(&text[from..]).into_owned()
}

#[test]
fn a_flushed_security_group_table_is_restored_by_the_agent_within_seconds() {
    let table = env("ZUN_TEST_FIREWALL_TABLE");
    let port = free_port();
    let name = unique_name("restore");
    let file = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, |v| {
        v["spec"]["containers"][0]["command"] = json!(["sh", "-c", "exec httpd -f -p 80 -h /etc"]);
        v["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 80, "hostPort": port, "protocol": "TCP"}]);
    });
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
    let capsule = wait_status(User::Demo, &name, "Running", LONG);
    let chain = capsule["uuid"].as_str().expect("uuid").replace('-', "_");
    assert!(
        nft(&["list", "table", "inet", &table]).contains(&chain),
        "the capsule's chain is not in table {table}"
    );
    // The default group lets nothing in: the published port is closed.
    assert!(!answers(port), "port {port} answers before any rule");

    let log_len = std::fs::metadata(env("ZUN_TEST_COMPUTE_LOG"))
        .expect("the agent's log")
        .len();
    nft(&["flush", "table", "inet", &table]);
    // The fault hit: without the table nothing keeps the port closed.
    assert!(
        answers(port),
        "port {port} stayed closed with table {table} flushed: the test shows nothing"
    );

    let flushed = Instant::now();
    while !nft(&["list", "table", "inet", &table]).contains(&chain) || answers(port) {
        assert!(
            flushed.elapsed() < RESTORE_WITHIN,
            "table {table} not restored within {RESTORE_WITHIN:?}:\n{}",
            nft(&["list", "table", "inet", &table])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "table {table} restored {:?} after the flush",
        flushed.elapsed()
    );
    let log = log_since(log_len);
    assert!(
        log.lines()
            .any(|l| l.contains("changed outside the agent") && l.contains(&table)),
        "the agent's log does not say it restored {table}:\n{log}"
    );
}
