//! The firewall tests' world: network namespaces standing for a host and its capsules, real
//! TCP servers and clients inside them, and the cleanup that runs even when a test fails.
//! What `tests/firewall.rs` builds its cases on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use capsule_types::secgroup::{Cidr, Direction, Ethertype, FirewallRule, HostFirewall};
use nix::sched::{setns, CloneFlags};
use test_support::run;
use uuid::Uuid;
use zun_compute::firewall::{CapsuleNet, FirewallConfig, NftFirewall};

/// How long a connection attempt waits for the handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The table the firewall owns inside the test's host namespace.
pub const TABLE: &str = "capsule_sg";

pub static NEXT_WORLD: AtomicU32 = AtomicU32::new(0);

/// Runs `ip args`, panicking on failure (setup).
pub fn ip(args: &[&str]) {
    if let Err(e) = run("ip", args) {
        panic!("{e}");
    }
}

/// Runs `f` on a new thread inside network namespace `ns` and returns its result. Sockets it
/// creates stay in that namespace wherever they are used afterwards.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    let thread = std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    });
    match thread.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Deletes namespaces `zfw<pid>..` left by test processes that no longer exist (killed runs).
pub fn sweep_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix("zfw")
            .and_then(|rest| rest.get(..6))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// A TCP server in a namespace: sends `!` to each connection it accepts, then echoes.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(ns: &str, addr: SocketAddrV4) -> Self {
        let listener = in_netns(ns, move || TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking {addr}: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(&listener, &flag));
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn serve(listener: &TcpListener, stop: &AtomicBool) {
    let mut conns: Vec<TcpStream> = Vec::new();
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut s, _)) => {
                let greeted = s.set_nonblocking(false).is_ok()
                    && s.write_all(b"!").is_ok()
                    && s.set_nonblocking(true).is_ok();
                if greeted {
                    conns.push(s);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        conns.retain_mut(|s| match s.read(&mut buf) {
            Ok(0) => false,
            // Echo (blocking for the write); a connection that fails is dropped.
            Ok(n) => {
                s.set_nonblocking(false).is_ok()
                    && s.write_all(&buf[..n]).is_ok()
                    && s.set_nonblocking(true).is_ok()
            }
            Err(e) => e.kind() == ErrorKind::WouldBlock,
        });
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a connection attempt gave.
pub enum Outcome {
    /// Handshake done and the server's `!` received.
    Connected(TcpStream),
    /// No answer to the SYN: dropped by the firewall.
    TimedOut,
    /// Anything else (refused: nothing listens; a setup error).
    Failed(io::Error),
}

/// Connects to `to` from namespace `ns`.
pub fn connect(ns: &str, to: SocketAddrV4) -> Outcome {
    in_netns(ns, move || {
        match TcpStream::connect_timeout(&SocketAddr::V4(to), CONNECT_TIMEOUT) {
            Ok(mut s) => {
                let mut b = [0u8; 1];
                let greeted = s
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .and_then(|()| s.read_exact(&mut b));
                match greeted {
                    Ok(()) if b == *b"!" => Outcome::Connected(s),
                    Ok(()) => Outcome::Failed(io::Error::other(format!("greeting {b:?}"))),
                    Err(e) => Outcome::Failed(e),
                }
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => Outcome::TimedOut,
            Err(e) => Outcome::Failed(e),
        }
    })
}

/// The test's namespaces and links, and their cleanup.
pub struct World {
    pub tag: String,
    pub host: String,
    pub bridge: String,
    /// Third octet of `10.233.<n>.0/24`.
    pub net: u8,
    /// Namespace names of the capsules, by index.
    pub caps: Vec<String>,
    /// Host-side veth names (inside `host`).
    pub links: Vec<String>,
    /// Whether the host namespace was created (so there is something to delete).
    pub host_made: bool,
    pub servers: Vec<Server>,
    pub finished: bool,
}

impl World {
    /// A host namespace with a bridge and `n` capsule namespaces at `.2`, `.3`, ...
    pub fn new(n: usize) -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the firewall tests need root (namespaces, veths, nftables)"
        );
        sweep_stale();
        let seq = NEXT_WORLD.fetch_add(1, Ordering::Relaxed);
        assert!(seq < 256, "too many worlds in one process");
        // zfw + 6 hex digits of pid + 2 of the world: at most 13 characters, plus a suffix of
        // at most 2, within the 15 of an interface name.
        let tag = format!("zfw{:06x}{seq:02x}", std::process::id() & 0xff_ffff);
        let net = Uuid::new_v4().as_bytes()[0];
        let mut w = Self {
            host: format!("{tag}h"),
            bridge: format!("{tag}b"),
            tag,
            net,
            caps: Vec::new(),
            links: Vec::new(),
            host_made: false,
            servers: Vec::new(),
            finished: false,
        };
        let h = w.host.clone();
        w.host_made = true;
        ip(&["netns", "add", &h]);
        ip(&["-n", &h, "link", "set", "lo", "up"]);
        sysctl(&h, "net.ipv4.ip_forward=1");
        // Bridged capsule-to-capsule traffic reaches the inet hooks through br_netfilter.
        sysctl(&h, "net.bridge.bridge-nf-call-iptables=1");
        let br = w.bridge.clone();
        ip(&["-n", &h, "link", "add", &br, "type", "bridge"]);
        let gw = format!("{}/24", w.gateway());
        ip(&["-n", &h, "addr", "add", &gw, "dev", &br]);
        ip(&["-n", &h, "link", "set", &br, "up"]);
        for i in 0..n {
            w.add_capsule(i);
        }
        w
    }

    pub fn add_capsule(&mut self, i: usize) {
        let (h, br) = (self.host.clone(), self.bridge.clone());
        let ns = format!("{}c{i}", self.tag);
        let veth = format!("{}v{i}", self.tag);
        let peer = format!("{}p{i}", self.tag);
        self.caps.push(ns.clone());
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        self.links.push(veth.clone());
        ip(&[
            "-n", &h, "link", "add", &veth, "type", "veth", "peer", "name", &peer, "netns", &ns,
        ]);
        ip(&["-n", &h, "link", "set", &veth, "master", &br, "up"]);
        let addr = format!("{}/24", self.cap_ip(i));
        ip(&["-n", &ns, "addr", "add", &addr, "dev", &peer]);
        ip(&["-n", &ns, "link", "set", &peer, "up"]);
        let gw = self.gateway().to_string();
        ip(&["-n", &ns, "route", "add", "default", "via", &gw]);
    }

    pub fn subnet(&self) -> Cidr {
        cidr(&format!("10.233.{}.0/24", self.net))
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 233, self.net, 1)
    }

    pub fn cap_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 233, self.net, 2 + i as u8)
    }

    /// `10.233.<n>.<last>/32`.
    pub fn host_cidr(&self, last: u8) -> Cidr {
        cidr(&format!("10.233.{}.{last}/32", self.net))
    }

    pub fn firewall(&self) -> NftFirewall {
        let cfg = FirewallConfig {
            netns: Some(PathBuf::from(format!("/run/netns/{}", self.host))),
            ..FirewallConfig::default()
        };
        NftFirewall::new(cfg, self.net()).expect("firewall config")
    }

    pub fn net(&self) -> CapsuleNet {
        CapsuleNet {
            subnet: self.subnet(),
            gateway: self.gateway(),
            bridge: self.bridge.clone(),
        }
    }

    /// Starts a server in capsule `i` on `port`.
    pub fn serve(&mut self, i: usize, port: u16) {
        let s = Server::start(&self.caps[i], SocketAddrV4::new(self.cap_ip(i), port));
        self.servers.push(s);
    }

    /// Starts a server in the host namespace at the gateway on `port`.
    pub fn serve_on_host(&mut self, port: u16) {
        let s = Server::start(&self.host, SocketAddrV4::new(self.gateway(), port));
        self.servers.push(s);
    }

    /// Connects from capsule `from` to capsule `to`.
    pub fn connect(&self, from: usize, to: usize, port: u16) -> Outcome {
        connect(&self.caps[from], SocketAddrV4::new(self.cap_ip(to), port))
    }

    pub fn assert_open(&self, from: usize, to: usize, port: u16) -> TcpStream {
        let what = format!("capsule {from} -> capsule {to}:{port}");
        self.expect_open(&what, self.connect(from, to, port))
    }

    pub fn assert_blocked(&self, from: usize, to: usize, port: u16) {
        let what = format!("capsule {from} -> capsule {to}:{port}");
        self.expect_dropped(&what, self.connect(from, to, port));
    }

    /// The stream of `outcome`, else a panic naming `what` and showing the ruleset.
    pub fn expect_open(&self, what: &str, outcome: Outcome) -> TcpStream {
        match outcome {
            Outcome::Connected(s) => s,
            Outcome::TimedOut => panic!(
                "{what}: expected a connection, timed out\n{}",
                self.ruleset()
            ),
            Outcome::Failed(e) => {
                panic!("{what}: expected a connection, got {e}\n{}", self.ruleset())
            }
        }
    }

    /// Panics unless `outcome` is a dropped SYN.
    pub fn expect_dropped(&self, what: &str, outcome: Outcome) {
        match outcome {
            Outcome::TimedOut => {}
            Outcome::Connected(_) => panic!(
                "{what}: expected a dropped SYN, connected\n{}",
                self.ruleset()
            ),
            Outcome::Failed(e) => panic!(
                "{what}: expected a dropped SYN, got {e}\n{}",
                self.ruleset()
            ),
        }
    }

    /// Connects from the host namespace (source: the gateway) to capsule `to`.
    pub fn host_to(&self, to: usize, port: u16) -> Outcome {
        connect(&self.host, SocketAddrV4::new(self.cap_ip(to), port))
    }

    /// Connects from capsule `from` to the host at the gateway.
    pub fn to_host(&self, from: usize, port: u16) -> Outcome {
        connect(&self.caps[from], SocketAddrV4::new(self.gateway(), port))
    }

    /// `nft list ruleset` in the host namespace (for failure messages).
    pub fn ruleset(&self) -> String {
        self.nft(&["list", "ruleset"]).unwrap_or_else(|e| e)
    }

    /// Runs nft with `args` in the host namespace.
    pub fn nft(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", &self.host, "nft"];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// The capsule-uuid -> address map of capsules `0..n` with ids `ids`.
    pub fn local(&self, ids: &[Uuid]) -> BTreeMap<Uuid, Ipv4Addr> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| (*id, self.cap_ip(i)))
            .collect()
    }

    /// Removes everything and checks that nothing of the test is left.
    pub fn finish(mut self) {
        self.cleanup();
        self.finished = true;
        let netns = run("ip", &["netns", "list"]).expect("ip netns list");
        assert!(
            !netns.contains(&self.tag),
            "namespaces left behind:\n{netns}"
        );
        let links = run("ip", &["-br", "link"]).expect("ip -br link");
        assert!(!links.contains(&self.tag), "links left behind:\n{links}");
    }

    pub fn cleanup(&mut self) {
        // Sockets first: they hold their namespaces.
        self.servers.clear();
        if self.host_made {
            for link in &self.links {
                let _ = run("ip", &["-n", &self.host, "link", "del", link]);
            }
            let _ = run("ip", &["-n", &self.host, "link", "del", &self.bridge]);
        }
        for ns in &self.caps {
            let _ = run("ip", &["netns", "del", ns]);
        }
        if self.host_made {
            let _ = run("ip", &["netns", "del", &self.host]);
        }
        self.links.clear();
        self.caps.clear();
        self.host_made = false;
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if !self.finished {
            self.cleanup();
        }
    }
}

pub fn sysctl(ns: &str, setting: &str) {
    if let Err(e) = run("ip", &["netns", "exec", ns, "sysctl", "-qw", setting]) {
        panic!("{e}");
    }
}

pub fn cidr(s: &str) -> Cidr {
    Cidr::parse(s).unwrap_or_else(|| panic!("bad CIDR {s}"))
}

pub fn rule(direction: Direction, protocol: Option<u8>, port: Option<u16>) -> FirewallRule {
    FirewallRule {
        direction,
        ethertype: Ethertype::IPv4,
        protocol,
        port_range_min: port,
        port_range_max: port,
        remote: None,
    }
}

pub fn with_remote(r: FirewallRule, remote: Vec<Cidr>) -> FirewallRule {
    FirewallRule {
        remote: Some(remote),
        ..r
    }
}

pub fn v6(r: FirewallRule) -> FirewallRule {
    FirewallRule {
        ethertype: Ethertype::IPv6,
        ..r
    }
}

/// tcp `port` in, from anyone (`0.0.0.0/0`).
pub fn tcp_in(port: u16) -> FirewallRule {
    with_remote(
        rule(Direction::Ingress, Some(6), Some(port)),
        vec![cidr("0.0.0.0/0")],
    )
}

/// Neutron's default group for members at `members`: ingress (any protocol) from the
/// members, IPv4 and IPv6; egress anywhere, IPv4 and IPv6.
pub fn neutron_default(members: &[Cidr]) -> Vec<FirewallRule> {
    vec![
        with_remote(rule(Direction::Ingress, None, None), members.to_vec()),
        v6(with_remote(rule(Direction::Ingress, None, None), vec![])),
        rule(Direction::Egress, None, None),
        v6(rule(Direction::Egress, None, None)),
    ]
}

/// A document: capsule -> its group ids, group id -> rules.
pub fn doc(capsules: &[(Uuid, &[&str])], groups: Vec<(&str, Vec<FirewallRule>)>) -> HostFirewall {
    HostFirewall {
        epoch: 1,
        incarnation: "test".into(),
        capsules: capsules
            .iter()
            .map(|(id, g)| (*id, g.iter().map(|s| s.to_string()).collect()))
            .collect(),
        groups: groups
            .into_iter()
            .map(|(id, r)| (id.to_owned(), r))
            .collect(),
    }
}

/// Capsule 0 (the server) in `sg-s` with Neutron's default rules plus `extra`; capsule 1 (the
/// client) in `sg-c`, a default group of its own (so not a member of `sg-s`).
pub fn two_groups(w: &World, ids: &[Uuid], extra: Vec<FirewallRule>) -> HostFirewall {
    let mut server = neutron_default(&[w.host_cidr(2)]);
    server.extend(extra);
    doc(
        &[(ids[0], &["sg-s"]), (ids[1], &["sg-c"])],
        vec![
            ("sg-s", server),
            ("sg-c", neutron_default(&[w.host_cidr(3)])),
        ],
    )
}

pub fn ids(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::new_v4()).collect()
}
