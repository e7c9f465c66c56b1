//! The network module for real, as root: namespaces, a bridge, netavark and iptables/nftables.
//! Each test has its own bridge (`cpt<6 hex>`, also the network's name), its own /24 inside
//! 10.213.0.0/16 and its own namespace directory, so tests run in parallel with each other and
//! with a live devstack. A guard tears everything down even on panic and, at the end of a test,
//! asserts that no link, namespace, mount or firewall rule naming the bridge or subnet is left.
//!
//! Only loopback, the test's bridge and the test's namespaces carry traffic.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;
use zun_compute::network::{
    Attachment, Network, NetworkConfig, NetworkError, PortMapping, Protocol,
};

/// The netavark binary: `ZUN_TEST_NETAVARK`, else Debian's.
fn netavark() -> PathBuf {
    let p = std::env::var_os("ZUN_TEST_NETAVARK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/podman/netavark"));
    assert!(
        p.exists(),
        "netavark not found at {} (set ZUN_TEST_NETAVARK, or run devstack/stack.sh)",
        p.display()
    );
    p
}

/// One netavark config directory for every test of this binary (and of concurrent runs): the
/// module serializes netavark runs per config directory, and netavark creates its global
/// iptables chains without a lock of its own, so tests with separate directories could race on
/// them. Address leases are per network name inside it, so tests stay apart.
fn shared_config_dir() -> PathBuf {
    std::env::temp_dir().join("zun-network-tests")
}

/// Runs `cmd args`, returns stdout; `Err` with stderr on failure.
fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);
static TAKEN_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The test's world, and its cleanup.
struct TestNet {
    tag: String,
    /// e.g. `10.213.37.` (with the dot, so `10.213.3.` never matches `10.213.37.x`).
    subnet_prefix: String,
    dir: PathBuf,
    cfg: NetworkConfig,
    capsules: Mutex<Vec<(Uuid, PathBuf)>>,
    children: Mutex<Vec<Child>>,
    finished: bool,
}

impl TestNet {
    fn new() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the network tests need root (namespaces, bridges, iptables)"
        );
        let rnd = Uuid::new_v4();
        let tag = format!("cpt{}", &rnd.simple().to_string()[..6]);
        let base = u32::from(rnd.as_bytes()[7]);
        let used = run("ip", &["-4", "-o", "addr"]).unwrap_or_default()
            + &run("ip", &["-4", "-o", "route"]).unwrap_or_default();
        let third = (0..254)
            .map(|_| 1 + (base + NEXT_SUBNET.fetch_add(1, Ordering::SeqCst)) % 254)
            .find(|x| !used.contains(&format!("10.213.{x}.")))
            .expect("a free /24 in 10.213.0.0/16");
        let dir = std::env::temp_dir().join(format!("zun-nettest-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = NetworkConfig {
            netavark: netavark(),
            config_dir: shared_config_dir(),
            network_name: tag.clone(),
            bridge: tag.clone(),
            subnet: format!("10.213.{third}.0/24"),
            gateway: None,
            netns_dir: dir.join("netns"),
            firewall_driver: std::env::var("ZUN_TEST_NETAVARK_FW").ok(),
        };
        Self {
            tag,
            subnet_prefix: format!("10.213.{third}."),
            dir,
            cfg,
            capsules: Mutex::new(Vec::new()),
            children: Mutex::new(Vec::new()),
            finished: false,
        }
    }

    fn network(&self) -> Network {
        Network::new(self.cfg.clone()).unwrap()
    }

    /// A new capsule id and its state file, remembered for cleanup.
    fn capsule(&self) -> (Uuid, PathBuf) {
        let id = Uuid::new_v4();
        let state = self
            .dir
            .join("capsules")
            .join(id.to_string())
            .join("network.json");
        self.capsules.lock().unwrap().push((id, state.clone()));
        (id, state)
    }

    /// A host port free for TCP and UDP, not handed to another test of this process.
    fn free_port(&self) -> u16 {
        let net = self.network();
        let mut taken = TAKEN_PORTS.lock().unwrap();
        let taken = taken.get_or_insert_with(HashSet::new);
        let seed = u32::from_le_bytes(Uuid::new_v4().as_bytes()[..4].try_into().unwrap());
        (0..10_000u32)
            .map(|i| 20_000 + ((seed + i) % 10_000) as u16)
            .find(|p| {
                !taken.contains(p)
                    && net.host_port_free(*p, Protocol::Tcp)
                    && net.host_port_free(*p, Protocol::Udp)
            })
            .inspect(|p| {
                taken.insert(*p);
            })
            .expect("a free port in 20000-29999")
    }

    /// Starts, inside `netns`, a TCP server on 8080 that says `hello` to every connection and
    /// a UDP server on 8081 that answers `pong:<datagram>`; returns once both listen.
    fn serve_in(&self, netns: &Path) -> u32 {
        const SERVER: &str = r#"
import socket, threading
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 8080)); t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 8081))
def udp():
    while True:
        d, a = u.recvfrom(2048); u.sendto(b"pong:" + d, a)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, _ = t.accept(); c.sendall(b"hello\n"); c.close()
"#;
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(["/usr/bin/python3", "-c", SERVER])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("nsenter python3");
        let pid = child.id();
        let stdout = child.stdout.take().unwrap();
        self.children.lock().unwrap().push(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "server in {}", netns.display());
        pid
    }

    /// Stops the server `pid` (by its pid).
    fn stop(&self, pid: u32) {
        let mut children = self.children.lock().unwrap();
        if let Some(i) = children.iter().position(|c| c.id() == pid) {
            let mut c = children.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Lines of host state that name this test's bridge/network or subnet.
    fn leftovers(&self, include_own_mounts: bool) -> Vec<String> {
        let mut out = Vec::new();
        let needles = [self.tag.as_str(), self.subnet_prefix.as_str()];
        let hit = |l: &str| needles.iter().any(|n| l.contains(n));
        if let Ok(links) = run("ip", &["-j", "link"]) {
            let links: serde_json::Value = serde_json::from_str(&links).unwrap();
            for l in links.as_array().into_iter().flatten() {
                let name = l["ifname"].as_str().unwrap_or_default();
                if hit(name) {
                    out.push(format!("link {name}"));
                }
            }
        }
        if let Ok(addrs) = run("ip", &["-4", "-o", "addr"]) {
            out.extend(
                addrs
                    .lines()
                    .filter(|l| hit(l))
                    .map(|l| format!("addr {l}")),
            );
        }
        if let Ok(entries) = std::fs::read_dir(&self.cfg.netns_dir) {
            for e in entries.flatten() {
                out.push(format!("netns {}", e.path().display()));
            }
        }
        if let Ok(save) = run("iptables-save", &[]) {
            out.extend(
                save.lines()
                    .filter(|l| hit(l))
                    .map(|l| format!("iptables {l}")),
            );
        }
        if let Ok(rules) = run("nft", &["list", "ruleset"]) {
            out.extend(rules.lines().filter(|l| hit(l)).map(|l| format!("nft {l}")));
        }
        if include_own_mounts {
            let dir = self.dir.to_string_lossy().into_owned();
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            out.extend(
                mounts
                    .lines()
                    .filter(|l| l.contains(&dir))
                    .map(|l| format!("mount {l}")),
            );
        }
        out
    }

    /// Kills servers, tears down every capsule through the module, then removes by force
    /// whatever is left. Returns what the module's own teardown had left behind.
    fn cleanup(&self) -> Vec<String> {
        for mut c in self.children.lock().unwrap().drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let capsules = std::mem::take(&mut *self.capsules.lock().unwrap());
        let cfg = self.cfg.clone();
        // On its own thread: this may run inside a test's runtime.
        let errors = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let net = Network::new(cfg).unwrap();
            rt.block_on(async {
                let mut errors = Vec::new();
                for (id, state) in capsules {
                    if let Err(e) = net.teardown(id, &state).await {
                        errors.push(format!("teardown {id}: {e}"));
                    }
                }
                errors
            })
        })
        .join()
        .unwrap_or_else(|_| vec!["cleanup thread panicked".into()]);
        let mut left: Vec<String> = errors;
        left.extend(self.leftovers(false));
        self.purge();
        left
    }

    /// Removes by force namespaces, firewall rules, the bridge and mounts of this test.
    fn purge(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.cfg.netns_dir) {
            for e in entries.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_file(e.path());
            }
        }
        self.purge_iptables();
        self.purge_nft();
        if run("ip", &["link", "show", &self.tag]).is_ok() {
            let _ = run("ip", &["link", "del", &self.tag]);
        }
        while nix::mount::umount2(&self.cfg.netns_dir, nix::mount::MntFlags::MNT_DETACH).is_ok() {}
        let _ = std::fs::remove_dir_all(self.cfg.config_dir.join("ipam").join(&self.tag));
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn purge_iptables(&self) {
        let Ok(save) = run("iptables-save", &[]) else {
            return;
        };
        let needles = [self.tag.as_str(), self.subnet_prefix.as_str()];
        let mut table = String::new();
        let mut rules = Vec::new();
        let mut chains = Vec::new();
        for line in save.lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = t.to_owned();
            } else if let Some(rule) = line.strip_prefix("-A ") {
                if needles.iter().any(|n| rule.contains(n)) {
                    let args = split_args(rule);
                    if let Some(j) = args.iter().position(|a| a == "-j") {
                        let target = &args[j + 1];
                        let shared = target == "NETAVARK_FORWARD"
                            || target.starts_with("NETAVARK-HOSTPORT-");
                        if target.starts_with("NETAVARK") && !shared {
                            chains.push((table.clone(), target.clone()));
                        }
                    }
                    rules.push((table.clone(), args));
                }
            }
        }
        for (table, args) in rules {
            let mut a = vec!["-t", table.as_str(), "-D"];
            a.extend(args.iter().map(String::as_str));
            let _ = run("iptables", &a);
        }
        for (table, chain) in chains {
            let _ = run("iptables", &["-t", &table, "-F", &chain]);
            let _ = run("iptables", &["-t", &table, "-X", &chain]);
        }
    }

    /// netavark 2.x (nftables): deletes the rules naming the test in `inet netavark`.
    fn purge_nft(&self) {
        let Ok(text) = run("nft", &["-a", "list", "table", "inet", "netavark"]) else {
            return;
        };
        let mut chain = String::new();
        for line in text.lines() {
            let l = line.trim();
            if let Some(c) = l.strip_prefix("chain ") {
                chain = c.split_whitespace().next().unwrap_or_default().to_owned();
            } else if l.contains(&self.tag) || l.contains(&self.subnet_prefix) {
                if let Some(h) = l.rsplit_once("# handle ").map(|(_, h)| h.trim()) {
                    let _ = run(
                        "nft",
                        &["delete", "rule", "inet", "netavark", &chain, "handle", h],
                    );
                }
            }
        }
    }

    /// Cleans up and asserts that the module left nothing and the forced cleanup neither.
    fn finish(mut self) {
        self.finished = true;
        let after_teardown = self.cleanup();
        let after_purge = self.leftovers(true);
        assert!(
            after_teardown.is_empty(),
            "left behind by the module's teardown: {after_teardown:#?}"
        );
        assert!(after_purge.is_empty(), "left behind: {after_purge:#?}");
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if !self.finished {
            let left = self.cleanup();
            let still = self.leftovers(true);
            eprintln!(
                "cleanup after a failed test {}: found {left:#?}, still there {still:#?}",
                self.tag
            );
        }
    }
}

/// Splits an `iptables-save` rule into arguments (double quotes group).
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            _ => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The IPv4 addresses (with prefix) of `iface` inside `netns`, read with `nsenter ... ip -j`.
fn addrs_in(netns: &Path, iface: &str) -> Vec<(String, u64)> {
    let out = run(
        "nsenter",
        &[
            &format!("--net={}", netns.display()),
            "ip",
            "-j",
            "-4",
            "addr",
            "show",
            "dev",
            iface,
        ],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            (
                a["local"].as_str().unwrap_or_default().to_owned(),
                a["prefixlen"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn tcp_hello(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    Ok(buf)
}

fn udp_ping(addr: SocketAddr) -> std::io::Result<String> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = [0u8; 256];
    // UDP: retry a few times in case the first datagram races the server.
    let mut last = None;
    for _ in 0..6 {
        s.send_to(b"ping", addr)?;
        match s.recv_from(&mut buf) {
            Ok((n, _)) => return Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap())
}

fn in_subnet(att: &Attachment, prefix: &str) -> bool {
    att.ip.starts_with(prefix) && att.ip.parse::<Ipv4Addr>().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_gives_an_address_and_eth0_and_is_idempotent() {
    let t = TestNet::new();
    let net = t.network();
    let (id, state) = t.capsule();
    let started = Instant::now();
    let att = net.setup(id, "web-1", &[], &state).await.unwrap();
    let setup_ms = started.elapsed().as_millis();
    assert!(in_subnet(&att, &t.subnet_prefix), "{att:?}");
    assert_ne!(
        att.ip,
        format!("{}1", t.subnet_prefix),
        "the gateway is not handed out"
    );
    assert_eq!(att.prefix, 24);
    assert_eq!(att.gateway, format!("{}1", t.subnet_prefix));
    assert_eq!(att.interface, "eth0");
    assert_eq!(att.netns, net.netns_path(id));
    assert_eq!(att.mac.len(), 17, "{}", att.mac);
    assert!(state.exists());
    assert_eq!(addrs_in(&att.netns, "eth0"), vec![(att.ip.clone(), 24)]);
    assert_eq!(
        net.leased_ip(id).map(|i| i.to_string()),
        Some(att.ip.clone())
    );

    let started = Instant::now();
    let again = net.setup(id, "web-1", &[], &state).await.unwrap();
    let again_ms = started.elapsed().as_millis();
    assert_eq!(again, att);

    let started = Instant::now();
    net.teardown(id, &state).await.unwrap();
    let teardown_ms = started.elapsed().as_millis();
    net.teardown(id, &state).await.unwrap();
    assert!(!att.netns.exists());
    assert!(!state.exists());
    assert_eq!(net.leased_ip(id), None);
    println!(
        "timing: setup {setup_ms} ms, setup again (no-op) {again_ms} ms, teardown {teardown_ms} ms"
    );
    t.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_tcp_and_udp_ports_reach_the_capsule() {
    let t = TestNet::new();
    let net = t.network();
    let (id, state) = t.capsule();
    let (tcp_port, udp_port) = (t.free_port(), t.free_port());
    let ports = [
        PortMapping {
            host_port: tcp_port,
            container_port: 8080,
            protocol: Protocol::Tcp,
            host_ip: None,
        },
        PortMapping {
            host_port: udp_port,
            container_port: 8081,
            protocol: Protocol::Udp,
            host_ip: None,
        },
    ];
    let started = Instant::now();
    let att = net.setup(id, "web", &ports, &state).await.unwrap();
    println!(
        "timing: setup with 2 ports {} ms",
        started.elapsed().as_millis()
    );
    let pid = t.serve_in(&att.netns);
    let local = SocketAddr::from(([127, 0, 0, 1], tcp_port));
    assert_eq!(tcp_hello(local).unwrap(), "hello\n", "127.0.0.1:{tcp_port}");
    let direct: SocketAddr = format!("{}:8080", att.ip).parse().unwrap();
    assert_eq!(tcp_hello(direct).unwrap(), "hello\n", "{direct}");
    let udp = SocketAddr::from(([127, 0, 0, 1], udp_port));
    assert_eq!(
        udp_ping(udp).unwrap(),
        "pong:ping",
        "udp 127.0.0.1:{udp_port}"
    );

    t.stop(pid);
    let started = Instant::now();
    net.teardown(id, &state).await.unwrap();
    println!(
        "timing: teardown with 2 ports {} ms",
        started.elapsed().as_millis()
    );
    assert!(!att.netns.exists());
    let closed = tcp_hello(local);
    assert!(
        closed.is_err(),
        "port still answers after teardown: {closed:?}"
    );
    t.finish();
}

/// 20 capsules at once (`ZUN_TEST_NETWORK_CAPSULES` to change it; at most 250).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_setups_get_distinct_addresses() {
    let n: usize = std::env::var("ZUN_TEST_NETWORK_CAPSULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let t = TestNet::new();
    let net = t.network();
    let capsules: Vec<(Uuid, PathBuf)> = (0..n).map(|_| t.capsule()).collect();
    let started = Instant::now();
    let tasks: Vec<_> = capsules
        .iter()
        .cloned()
        .map(|(id, state)| {
            let net = net.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                let r = net.setup(id, "c", &[], &state).await;
                (r, t0.elapsed())
            })
        })
        .collect();
    let mut atts = Vec::new();
    let mut slowest = Duration::ZERO;
    for task in tasks {
        let (r, took) = task.await.unwrap();
        atts.push(r.unwrap());
        slowest = slowest.max(took);
    }
    let setup_all = started.elapsed();
    let ips: HashSet<&str> = atts.iter().map(|a| a.ip.as_str()).collect();
    assert_eq!(ips.len(), n, "{ips:?}");
    for a in &atts {
        assert!(in_subnet(a, &t.subnet_prefix), "{a:?}");
    }
    for a in atts.iter().step_by(5) {
        assert_eq!(addrs_in(&a.netns, "eth0"), vec![(a.ip.clone(), 24)]);
    }
    let started = Instant::now();
    let tasks: Vec<_> = capsules
        .iter()
        .cloned()
        .map(|(id, state)| {
            let net = net.clone();
            tokio::spawn(async move { net.teardown(id, &state).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    println!(
        "timing: {n} concurrent setups {} ms (slowest single {} ms), {n} concurrent teardowns {} ms",
        setup_all.as_millis(),
        slowest.as_millis(),
        started.elapsed().as_millis()
    );
    for (id, _) in &capsules {
        assert!(!net.netns_path(*id).exists());
    }
    t.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_after_an_agent_restart() {
    let t = TestNet::new();
    let (id, state) = t.capsule();
    let port = t.free_port();
    let ports = [PortMapping {
        host_port: port,
        container_port: 80,
        protocol: Protocol::Tcp,
        host_ip: None,
    }];
    let att = {
        let before = t.network();
        before.setup(id, "r", &ports, &state).await.unwrap()
    };
    // A new agent: a new Network on the same config, nothing in memory.
    let after = t.network();
    assert_eq!(
        after.leased_ip(id).map(|i| i.to_string()),
        Some(att.ip.clone())
    );
    assert_eq!(after.setup(id, "r", &ports, &state).await.unwrap(), att);
    // Another capsule gets another address while the first is live.
    let (other, other_state) = t.capsule();
    let other_att = after.setup(other, "o", &[], &other_state).await.unwrap();
    assert_ne!(other_att.ip, att.ip);
    after.teardown(id, &state).await.unwrap();
    after.teardown(other, &other_state).await.unwrap();
    assert!(!att.netns.exists());
    t.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_port_bound_on_the_host_is_refused_cleanly() {
    let t = TestNet::new();
    let net = t.network();
    let port = t.free_port();
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap();
    assert!(!net.host_port_free(port, Protocol::Tcp));
    assert!(net.host_port_free(port, Protocol::Udp));
    let (id, state) = t.capsule();
    let ports = [PortMapping {
        host_port: port,
        container_port: 80,
        protocol: Protocol::Tcp,
        host_ip: None,
    }];
    let e = net.setup(id, "p", &ports, &state).await.unwrap_err();
    assert!(
        matches!(e, NetworkError::PortUnavailable { port: p, protocol: Protocol::Tcp, .. } if p == port),
        "{e}"
    );
    assert!(e.to_string().contains(&id.to_string()), "{e}");
    assert!(!state.exists());
    assert!(!net.netns_path(id).exists());
    assert_eq!(net.leased_ip(id), None);
    // The host's listener still gets its connections.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    s.write_all(b"mine").unwrap();
    drop(s);
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "mine");
    t.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_published_by_another_capsule_is_refused() {
    let t = TestNet::new();
    let net = t.network();
    let port = t.free_port();
    let ports = [PortMapping {
        host_port: port,
        container_port: 80,
        protocol: Protocol::Tcp,
        host_ip: None,
    }];
    let (a, a_state) = t.capsule();
    let (b, b_state) = t.capsule();
    net.setup(a, "a", &ports, &a_state).await.unwrap();
    let e = net.setup(b, "b", &ports, &b_state).await.unwrap_err();
    assert!(
        matches!(e, NetworkError::PortClaimed { holder, .. } if holder == a),
        "{e}"
    );
    assert!(!b_state.exists());
    assert!(!net.netns_path(b).exists());
    net.teardown(a, &a_state).await.unwrap();
    net.setup(b, "b", &ports, &b_state).await.unwrap();
    net.teardown(b, &b_state).await.unwrap();
    t.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_replaces_a_setup_whose_namespace_was_lost() {
    let t = TestNet::new();
    let net = t.network();
    let (id, state) = t.capsule();
    let port = t.free_port();
    let ports = [PortMapping {
        host_port: port,
        container_port: 8080,
        protocol: Protocol::Tcp,
        host_ip: None,
    }];
    let first = net.setup(id, "l", &ports, &state).await.unwrap();
    // The namespace disappears behind the module's back (lost mount).
    nix::mount::umount2(&first.netns, nix::mount::MntFlags::MNT_DETACH).unwrap();
    std::fs::remove_file(&first.netns).unwrap();
    let second = net.setup(id, "l", &ports, &state).await.unwrap();
    assert_eq!(
        addrs_in(&second.netns, "eth0"),
        vec![(second.ip.clone(), 24)]
    );
    let save = run("iptables-save", &[]).unwrap_or_default();
    let dnat_rules = save
        .lines()
        .filter(|l| l.contains("-j DNAT") && l.contains(&format!("--dport {port} ")))
        .count();
    if first.ip != second.ip {
        assert!(
            !save.contains(&format!("{}:8080", first.ip)),
            "stale forward to the lost address: {save}"
        );
    }
    assert!(dnat_rules <= 1, "{dnat_rules} DNAT rules for port {port}");
    let pid = t.serve_in(&second.netns);
    assert_eq!(
        tcp_hello(SocketAddr::from(([127, 0, 0, 1], port))).unwrap(),
        "hello\n"
    );
    t.stop(pid);
    net.teardown(id, &state).await.unwrap();
    t.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_netavark_run_is_undone() {
    let t = TestNet::new();
    let net = Network::new(NetworkConfig {
        netavark: PathBuf::from("/nonexistent/netavark"),
        ..t.cfg.clone()
    })
    .unwrap();
    let (id, state) = t.capsule();
    let e = net.setup(id, "x", &[], &state).await.unwrap_err();
    assert!(matches!(e, NetworkError::NetavarkSpawn { .. }), "{e}");
    assert!(!state.exists());
    assert!(!net.netns_path(id).exists());
    assert_eq!(net.leased_ip(id), None);
    t.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_uses_the_firewall_driver_the_setup_used() {
    let t = TestNet::new();
    let (id, state) = t.capsule();
    let ports = [PortMapping {
        host_port: t.free_port(),
        container_port: 80,
        protocol: Protocol::Tcp,
        host_ip: None,
    }];
    let att = t.network().setup(id, "fw", &ports, &state).await.unwrap();
    // The operator switches the driver with the capsule running: its rules are still where
    // its setup put them, and its teardown must remove them from there.
    let other = match t.cfg.firewall_driver.as_deref() {
        Some("nftables") => "iptables",
        _ => "nftables",
    };
    let switched = Network::new(NetworkConfig {
        firewall_driver: Some(other.to_owned()),
        ..t.cfg.clone()
    })
    .unwrap();
    switched.teardown(id, &state).await.unwrap();
    assert!(!att.netns.exists());
    assert!(!state.exists());
    // finish() fails on any rule naming the test's subnet (the port's DNAT names the address).
    t.finish();
}
