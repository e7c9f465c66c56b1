//! The harness of the network tests: each test's own bridge, subnet and namespace directory,
//! and the guard that tears them down and lists what is left.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// test-support's, for `network.rs` too.
pub use test_support::run;
use uuid::Uuid;
use zun_compute::network::{Attachment, Network, NetworkConfig, PortMapping, Protocol};

/// The netavark binary: `ZUN_TEST_NETAVARK`, else Debian's.
pub fn netavark() -> PathBuf {
    let p = PathBuf::from(test_support::env_or(
        "ZUN_TEST_NETAVARK",
        "/usr/lib/podman/netavark",
    ));
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
pub fn shared_config_dir() -> PathBuf {
    std::env::temp_dir().join("zun-network-tests")
}

/// Host port `host_port` (TCP, every address) published to the capsule's `container_port`.
pub fn tcp(host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        host_port,
        container_port,
        protocol: Protocol::Tcp,
        host_ip: None,
    }
}

pub static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);
pub static TAKEN_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The test's world, and its cleanup.
pub struct TestNet {
    pub tag: String,
    /// e.g. `10.213.37.` (with the dot, so `10.213.3.` never matches `10.213.37.x`).
    pub subnet_prefix: String,
    pub dir: PathBuf,
    pub cfg: NetworkConfig,
    pub capsules: Mutex<Vec<(Uuid, PathBuf)>>,
    pub children: Mutex<Vec<Child>>,
    pub finished: bool,
}

impl TestNet {
    pub fn new() -> Self {
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

    pub fn network(&self) -> Network {
        Network::new(self.cfg.clone()).unwrap()
    }

    /// A new capsule id and its state file, remembered for cleanup.
    pub fn capsule(&self) -> (Uuid, PathBuf) {
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
    pub fn free_port(&self) -> u16 {
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
    pub fn serve_in(&self, netns: &Path) -> u32 {
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
    pub fn stop(&self, pid: u32) {
        let mut children = self.children.lock().unwrap();
        if let Some(i) = children.iter().position(|c| c.id() == pid) {
            let mut c = children.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Lines of host state that name this test's bridge/network or subnet.
    pub fn leftovers(&self, include_own_mounts: bool) -> Vec<String> {
        let mut out = Vec::new();
        let needles = [self.tag.as_str(), self.subnet_prefix.as_str()];
        let hit = |l: &str| needles.iter().any(|n| l.contains(n));
        {
            let links = run("ip", &["-j", "link"]).unwrap_or_else(|e| panic!("{e}"));
            let links: serde_json::Value = serde_json::from_str(&links).unwrap();
            for l in links.as_array().into_iter().flatten() {
                let name = l["ifname"].as_str().unwrap_or_default();
                if hit(name) {
                    out.push(format!("link {name}"));
                }
            }
        }
        {
            let addrs = run("ip", &["-4", "-o", "addr"]).unwrap_or_else(|e| panic!("{e}"));
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
        // A tool that cannot run fails the test; it never reads as a clean host.
        let save = run("iptables-save", &[]).unwrap_or_else(|e| panic!("{e}"));
        out.extend(
            save.lines()
                .filter(|l| hit(l))
                .map(|l| format!("iptables {l}")),
        );
        let rules = run("nft", &["list", "ruleset"]).unwrap_or_else(|e| panic!("{e}"));
        out.extend(rules.lines().filter(|l| hit(l)).map(|l| format!("nft {l}")));
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
    pub fn cleanup(&self) -> Vec<String> {
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
    pub fn purge(&self) {
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

    pub fn purge_iptables(&self) {
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
    pub fn purge_nft(&self) {
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
    pub fn finish(mut self) {
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
pub fn split_args(s: &str) -> Vec<String> {
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
pub fn addrs_in(netns: &Path, iface: &str) -> Vec<(String, u64)> {
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

pub fn tcp_hello(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    Ok(buf)
}

pub fn udp_ping(addr: SocketAddr) -> std::io::Result<String> {
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

pub fn in_subnet(att: &Attachment, prefix: &str) -> bool {
    att.ip.starts_with(prefix) && att.ip.parse::<Ipv4Addr>().is_ok()
}
