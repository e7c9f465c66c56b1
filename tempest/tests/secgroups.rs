//! Security groups as a new user meets them: the unchanged `openstack security group ...`
//! commands against the stack's network API, enforced by the compute host's nftables table.
//! A port is closed until a rule opens it, a rule's remote prefix counts, deleting the rule
//! closes it again, another project's capsule cannot reach ports not opened to it, and
//! nothing of a capsule is left on the host after it is deleted. Every port shown closed is
//! also shown answering once a rule opens it (the positive control): closed by the group, not
//! for want of a server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempest::{
    examples_dir, free_port, host_leftovers, openstack, unique_name, wait_gone, wait_status, zun,
    CapsuleGuard, TemplateFile, User,
};

const LONG: Duration = Duration::from_secs(120);
/// How long a rule change may take to show (the design says a second; this is only a bound
/// for the test, the benchmark measures it).
const SETTLE: Duration = Duration::from_secs(20);

/// The agent's table (devstack's `[firewall] table`).
fn table() -> String {
    std::env::var("ZUN_TEST_FIREWALL_TABLE").unwrap_or_else(|_| "capsule_sg".into())
}

/// Deletes a security group rule when dropped.
struct RuleGuard(User, String);

impl Drop for RuleGuard {
    fn drop(&mut self) {
        let _ = openstack(self.0, &["security", "group", "rule", "delete", &self.1]);
    }
}

/// Deletes a security group when dropped, once its capsules are gone.
struct GroupGuard(User, String);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + LONG;
        while openstack(self.0, &["security", "group", "delete", &self.1]).code != Some(0)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Whether an HTTP server answers on 127.0.0.1:`port` (a dropped SYN times out: closed).
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !check() {
        assert!(Instant::now() < deadline, "not within {SETTLE:?}: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn rule_create(user: User, group: &str, args: &[&str]) -> RuleGuard {
    let mut all = vec!["security", "group", "rule", "create", group];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-f", "json"]);
    let rule = openstack(user, &all).ok().json();
    RuleGuard(user, rule["id"].as_str().expect("rule id").to_owned())
}

fn nft_table() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "inet", &table()])
        .output()
        .expect("run nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates, as `user`, a busybox capsule running `script`, changed by `edit`.
fn busybox(
    user: User,
    prefix: &str,
    script: &str,
    edit: impl FnOnce(&mut Value),
) -> (String, CapsuleGuard, Value) {
    let name = unique_name(prefix);
    let file = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, |v| {
        v["spec"]["containers"][0]["command"] = json!(["sh", "-c", script]);
        edit(v);
    });
    let guard = CapsuleGuard {
        name: name.clone(),
        owner: user,
    };
    zun(user, &["capsule-create", "-f", file.arg()]).ok();
    let running = wait_status(user, &name, "Running", LONG);
    (name, guard, running)
}

fn delete_and_check(user: User, name: &str, uuid: &str) {
    zun(user, &["capsule-delete", name]).ok();
    wait_gone(user, name, LONG);
    let left = host_leftovers(uuid, Path::new("/run/netns"));
    assert!(left.is_empty(), "capsule {name} left behind: {left:#?}");
}

#[test]
fn the_guides_workflow_opens_one_port_of_the_default_group_and_closes_it_again() {
    let (web, db) = (free_port(), free_port());
    let (name, _guard, capsule) = busybox(
        User::Demo,
        "sg-web",
        "httpd -p 80 -h /etc && exec httpd -f -p 3306 -h /etc",
        |v| {
            v["spec"]["containers"][0]["ports"] = json!([
                {"containerPort": 80, "hostPort": web, "protocol": "TCP"},
                {"containerPort": 3306, "hostPort": db, "protocol": "TCP"},
            ]);
        },
    );
    assert_eq!(capsule["security_groups"], json!(["default"]), "{capsule}");
    let uuid = capsule["uuid"].as_str().unwrap().to_owned();
    // The capsule is in the host's table: closed because its group says so.
    eventually("the capsule's chain in the table", || {
        nft_table().contains(&uuid.replace('-', "_"))
    });
    assert!(!answers(web), "port 80 answers before any rule");
    assert!(!answers(db), "port 3306 answers before any rule");

    let open = rule_create(
        User::Demo,
        "default",
        &[
            "--protocol",
            "tcp",
            "--dst-port",
            "80:80",
            "--remote-ip",
            "0.0.0.0/0",
        ],
    );
    eventually("port 80 answers after the rule", || answers(web));
    assert!(!answers(db), "port 3306 answers with only 80 opened");
    let listed = openstack(
        User::Demo,
        &["security", "group", "rule", "list", "default", "-f", "json"],
    )
    .ok()
    .json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ID"] == open.1.as_str()),
        "{listed}"
    );
    drop(open);
    eventually("port 80 closed after the rule is deleted", || !answers(web));

    // A rule for 10.0.0.0/8 does not let 127.0.0.1 in: once the host has it, still closed.
    let _ten = rule_create(
        User::Demo,
        "default",
        &[
            "--protocol",
            "tcp",
            "--dst-port",
            "80:80",
            "--remote-ip",
            "10.0.0.0/8",
        ],
    );
    eventually("the 10.0.0.0/8 rule in the table", || {
        nft_table().contains("10.0.0.0/8")
    });
    assert!(!answers(web), "127.0.0.1 let in by a rule for 10.0.0.0/8");

    // The positive control of every "3306 closed" above: the same port answers once a rule
    // opens it, so it was closed by the group, not because nothing listened on it. And the
    // rule opens only 3306.
    let _db_open = rule_create(
        User::Demo,
        "default",
        &[
            "--protocol",
            "tcp",
            "--dst-port",
            "3306:3306",
            "--remote-ip",
            "0.0.0.0/0",
        ],
    );
    eventually("port 3306 answers once a rule opens it", || answers(db));
    assert!(
        !answers(web),
        "port 80 answers with only 3306 opened to 127.0.0.1"
    );

    delete_and_check(User::Demo, &name, &uuid);
}

/// The lines `OPEN`/`CLOSED` the prober printed so far.
fn probes(user: User, container: &str) -> (usize, usize) {
    let logs = zun(user, &["logs", container]).ok().stdout;
    let open = logs.lines().filter(|l| l.trim() == "OPEN").count();
    let closed = logs.lines().filter(|l| l.trim() == "CLOSED").count();
    (open, closed)
}

#[test]
fn another_projects_capsule_cannot_reach_ports_not_opened_to_it() {
    let group = unique_name("sg-ab");
    openstack(User::Demo, &["security", "group", "create", &group]).ok();
    let _group = GroupGuard(User::Demo, group.clone());
    let (a, _a_guard, a_capsule) =
        busybox(User::Demo, "sg-a", "exec httpd -f -p 80 -h /etc", |v| {
            v["spec"]["securityGroups"] = json!([group.clone()]);
        });
    // The client flattens `addresses` to the address itself.
    let ip = a_capsule["addresses"]
        .as_str()
        .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .unwrap_or_else(|| panic!("no address in {a_capsule}"))
        .to_owned();
    let script = format!(
        "while true; do if nc -w 2 {ip} 80 </dev/null; then echo OPEN; else echo CLOSED; fi; sleep 1; done"
    );
    let (b, _b_guard, b_capsule) = busybox(User::AltDemo, "sg-b", &script, |_| {});
    let prober = b_capsule["containers"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();

    eventually("three probes from the other project", || {
        probes(User::AltDemo, &prober).1 >= 3
    });
    assert_eq!(
        probes(User::AltDemo, &prober).0,
        0,
        "project B reached A's port 80"
    );

    // The control: once A opens port 80 to everyone, the same probe gets through.
    let _open = rule_create(
        User::Demo,
        &group,
        &[
            "--protocol",
            "tcp",
            "--dst-port",
            "80",
            "--remote-ip",
            "0.0.0.0/0",
        ],
    );
    eventually("the probe gets through after A's rule", || {
        probes(User::AltDemo, &prober).0 >= 1
    });

    let a_uuid = a_capsule["uuid"].as_str().unwrap().to_owned();
    let b_uuid = b_capsule["uuid"].as_str().unwrap().to_owned();
    delete_and_check(User::AltDemo, &b, &b_uuid);
    delete_and_check(User::Demo, &a, &a_uuid);
}

#[test]
fn a_group_in_use_is_kept_and_bad_rules_change_nothing() {
    let group = unique_name("sg-use");
    openstack(User::Demo, &["security", "group", "create", &group]).ok();
    let _group = GroupGuard(User::Demo, group.clone());
    let (name, _guard, capsule) = busybox(User::Demo, "sg-use", "exec sleep infinity", |v| {
        v["spec"]["securityGroups"] = json!([group.clone()]);
    });
    assert_eq!(capsule["security_groups"], json!([group.clone()]));
    let r = openstack(User::Demo, &["security", "group", "delete", &group]);
    assert_ne!(r.code, Some(0), "a group in use was deleted");
    assert!(r.stderr.contains("in use"), "{}", r.stderr);
    let before = openstack(
        User::Demo,
        &["security", "group", "rule", "list", &group, "-f", "json"],
    )
    .ok()
    .json();
    for args in [
        &["--protocol", "tcp", "--dst-port", "90:80"][..],
        &["--protocol", "tcp", "--dst-port", "0:80"][..],
        &["--protocol", "300"][..],
        &["--remote-ip", "10.0.0.0/33"][..],
    ] {
        let mut all = vec!["security", "group", "rule", "create", &group];
        all.extend_from_slice(args);
        let r = openstack(User::Demo, &all);
        assert_ne!(r.code, Some(0), "{args:?} was taken");
        assert!(
            r.stderr.contains("400")
                || r.stderr.contains("BadRequest")
                || r.stderr.contains("Invalid"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let after = openstack(
        User::Demo,
        &["security", "group", "rule", "list", &group, "-f", "json"],
    )
    .ok()
    .json();
    assert_eq!(before, after, "a refused rule changed the group");
    let uuid = capsule["uuid"].as_str().unwrap().to_owned();
    delete_and_check(User::Demo, &name, &uuid);
}
