//! A capsule cannot reach its host: not the host's loopback-only services, not a service the
//! host serves on every address, while its published ports still answer.
//!
//! netavark turns `route_localnet` on for the capsule bridge (so that the host's own
//! 127.0.0.1:hostPort reaches capsules), which lets a packet from a capsule to 127.0.0.1 be
//! delivered to the host's loopback services when it arrives through the bridge. A tenant with
//! raw sockets can send one; this test, as root, makes the capsule's namespace route 127.0.0.1
//! through its gateway instead, which sends the same packets. The positive controls show the
//! path is real: through it another capsule's published port, DNAT'd on the host, answers;
//! and the host answers its own connections to the same services.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tempest::{
    env, examples_dir, free_port, openstack, unique_name, wait_status, zun, CapsuleGuard,
    TemplateFile, User,
};

const LONG: Duration = Duration::from_secs(120);

/// Runs `cmd` inside the network namespace at `/run/netns/<ns>`; its output, or why not.
fn in_netns(ns: &str, cmd: &[&str]) -> Result<String, String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(cmd)
        .output()
        .map_err(|e| format!("nsenter {cmd:?}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{cmd:?} in {ns}: {}: {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// curl's exit code when its time is up.
const CURL_TIMED_OUT: i32 = 28;

/// `curl -m 2` with `args` from the capsule's namespace: `Ok(Some(output))` if it got an
/// answer, `Ok(None)` if nothing answered in time (a dropped SYN), `Err` for anything else
/// (a refused connection, a missing namespace), so a broken test cannot pass as "dropped".
fn curl(ns: &str, args: &[&str]) -> Result<Option<String>, String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(["curl", "-s", "-m", "2"])
        .args(args)
        .output()
        .map_err(|e| format!("nsenter curl: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned())),
        Some(CURL_TIMED_OUT) => Ok(None),
        _ => Err(format!(
            "curl {args:?} in {ns}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The HTTP status of a GET of `url` from the capsule's namespace; `None` if nothing
/// answered.
fn http_code(ns: &str, url: &str) -> Result<Option<String>, String> {
    curl(ns, &["-o", "/dev/null", "-w", "%{http_code}", url])
}

/// `timeout`'s exit code when the command's time is up.
const TIMEOUT_EXPIRED: i32 = 124;

/// A TCP connection to `host`:`port` from the capsule's namespace: `Ok(true)` if it was
/// made, `Ok(false)` if nothing answered within 2 s (a dropped SYN), `Err` otherwise.
fn tcp_connect(ns: &str, host: &str, port: u16) -> Result<bool, String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(["timeout", "2", "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{host}/{port}"))
        .output()
        .map_err(|e| format!("nsenter bash: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(TIMEOUT_EXPIRED) => Ok(false),
        _ => Err(format!(
            "connect to {host}:{port} in {ns}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The capsule's address and its gateway, as its namespace has them.
fn address_and_gateway(ns: &str) -> (String, String) {
    let addr = in_netns(ns, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .unwrap_or_else(|e| panic!("{e}"));
    // `2: eth0    inet 10.89.0.5/24 brd ... scope global eth0 ...`
    let addr = addr
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no IPv4 address on eth0 in {ns}: {addr}"))
        .to_owned();
    let route =
        in_netns(ns, &["ip", "-4", "route", "show", "default"]).unwrap_or_else(|e| panic!("{e}"));
    // `default via 10.89.0.1 dev eth0 ...`
    let gateway = route
        .split_whitespace()
        .skip_while(|w| *w != "via")
        .nth(1)
        .unwrap_or_else(|| panic!("no default route in {ns}: {route}"))
        .to_owned();
    (addr, gateway)
}

/// Creates, as `user`, a busybox capsule running `script`, changed by `edit`; waits until it
/// runs and returns its guard and uuid.
fn busybox(
    user: User,
    prefix: &str,
    script: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (CapsuleGuard, String) {
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
    let capsule = wait_status(user, &name, "Running", LONG);
    let uuid = capsule["uuid"].as_str().expect("uuid").to_owned();
    (guard, uuid)
}

/// Deletes a security group of `User::Demo` when dropped, once its capsules are gone.
struct GroupGuard(String);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + LONG;
        let delete = ["security", "group", "delete", self.0.as_str()];
        while openstack(User::Demo, &delete).code != Some(0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The HTTP status of a GET of `url` from the host itself.
fn host_http_code(url: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "2",
            "-w",
            "%{http_code}",
            url,
        ])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_capsule_reaches_neither_the_hosts_loopback_nor_its_addresses_but_published_ports_answer() {
    let user = User::Demo;
    let web = free_port();
    // A group of the test's own whose one rule opens port 80 for the web capsule.
    let group = unique_name("guard");
    openstack(user, &["security", "group", "create", &group]).ok();
    let _group = GroupGuard(group.clone());
    let args = [
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
    ];
    openstack(user, &args).ok();
    let (_web, _) = busybox(user, "guard-web", "exec httpd -f -p 80 -h /etc", |v| {
        v["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 80, "hostPort": web, "protocol": "TCP"}]);
        v["spec"]["securityGroups"] = json!([group]);
    });
    let (_prober, uuid) = busybox(user, "guard-probe", "exec sleep 3600", |_| {});
    let ns = format!("capsule-{uuid}");
    let (addr, gateway) = address_and_gateway(&ns);

    let published = format!("http://127.0.0.1:{web}/passwd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while host_http_code(&published) != "200" {
        assert!(
            Instant::now() < deadline,
            "published port {web} never answered the host"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // What the host serves: the registry on loopback only, and a listener of this test on
    // every address. Both answer the host itself.
    let catalog = format!("http://{}/v2/_catalog", env("ZUN_TEST_REGISTRY"));
    assert_eq!(
        host_http_code(&catalog),
        "200",
        "the registry answers the host"
    );
    let everywhere = TcpListener::bind("0.0.0.0:0").expect("listen on every address");
    let any_port = everywhere.local_addr().expect("port").port();
    let host_side: SocketAddr = format!("{gateway}:{any_port}").parse().expect("addr");
    assert!(
        TcpStream::connect_timeout(&host_side, Duration::from_secs(2)).is_ok(),
        "the host reaches its own listener at {host_side}"
    );

    // As root, in the prober's namespace: 127.0.0.1 goes out through the gateway.
    let via = ["via", gateway.as_str(), "dev", "eth0", "src", addr.as_str()];
    let mut route = vec!["ip", "route", "add", "127.0.0.1/32"];
    route.extend(via);
    route.extend(["table", "157"]);
    for cmd in [
        vec!["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"],
        vec!["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"],
        route,
        vec![
            "ip",
            "rule",
            "add",
            "pref",
            "5",
            "to",
            "127.0.0.1/32",
            "lookup",
            "157",
        ],
        // The local table (pref 0) would answer 127.0.0.1 first: it moves behind rule 5.
        vec!["ip", "rule", "add", "pref", "10", "lookup", "local"],
        vec!["ip", "rule", "del", "pref", "0", "lookup", "local"],
    ] {
        in_netns(&ns, &cmd).unwrap_or_else(|e| panic!("{e}"));
    }
    let routed = in_netns(&ns, &["ip", "route", "get", "127.0.0.1"]).expect("ip route get");
    assert!(
        routed.contains(&format!("via {gateway}")),
        "127.0.0.1 is not routed via the gateway: {routed}"
    );

    let ok = Ok(Some("200".to_owned()));
    // Positive control: packets to 127.0.0.1 do reach the host that way; it DNATs the web
    // capsule's published port and the answer comes back.
    assert_eq!(
        http_code(&ns, &published),
        ok,
        "the published port through the host's 127.0.0.1 (positive control)"
    );
    // The registry, on the host's loopback only, does not answer.
    assert_eq!(
        http_code(&ns, &catalog),
        Ok(None),
        "the host's loopback registry answered a capsule at {catalog}"
    );
    // Nor does a service on every address of the host, at the gateway.
    assert_eq!(
        tcp_connect(&ns, &gateway, any_port),
        Ok(false),
        "the host's listener on 0.0.0.0:{any_port} answered a capsule at its gateway"
    );
    // The published port at the gateway still answers.
    assert_eq!(
        http_code(&ns, &format!("http://{gateway}:{web}/passwd")),
        ok,
        "the published port at the gateway"
    );
    drop(everywhere);
}
