//! The network module for real, as root: namespaces, a bridge, netavark and iptables/nftables.
//! Each test has its own bridge (`cpt<6 hex>`, also the network's name), its own /24 inside
//! 10.213.0.0/16 and its own namespace directory, so tests run in parallel with each other and
//! with a live devstack. A guard tears everything down even on panic and, at the end of a test,
//! asserts that no link, namespace, mount or firewall rule naming the bridge or subnet is left.
//!
//! Only loopback, the test's bridge and the test's namespaces carry traffic.

mod network_support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use network_support::*;
use uuid::Uuid;
use zun_compute::network::{Network, NetworkConfig, NetworkError, PortMapping, Protocol};

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
        tcp(tcp_port, 8080),
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
    let ports = [tcp(port, 80)];
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
async fn a_teardown_cut_short_after_the_veth_went_is_finished() {
    // The agent was killed while netavark tore the capsule down: the namespace is still there,
    // its eth0 is not, the state file and the host's side (port forward, bridge) are.
    let t = TestNet::new();
    let (id, state) = t.capsule();
    let ports = [tcp(t.free_port(), 80)];
    let net = t.network();
    let att = net.setup(id, "cut", &ports, &state).await.unwrap();
    let ns = format!("--net={}", att.netns.display());
    run("nsenter", &[&ns, "ip", "link", "del", "eth0"]).unwrap();
    let left = run("nsenter", &[&ns, "ip", "-o", "link"]).unwrap();
    assert!(!left.contains("eth0"), "{left}");
    // The restarted agent's teardown completes, and a second one finds nothing to do.
    t.network().teardown(id, &state).await.unwrap();
    t.network().teardown(id, &state).await.unwrap();
    assert!(!att.netns.exists());
    assert!(!state.exists());
    assert_eq!(net.leased_ip(id), None);
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
    let ports = [tcp(port, 80)];
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
    let ports = [tcp(port, 80)];
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
    let ports = [tcp(port, 8080)];
    let first = net.setup(id, "l", &ports, &state).await.unwrap();
    // The namespace disappears behind the module's back (lost mount).
    nix::mount::umount2(&first.netns, nix::mount::MntFlags::MNT_DETACH).unwrap();
    std::fs::remove_file(&first.netns).unwrap();
    let second = net.setup(id, "l", &ports, &state).await.unwrap();
    assert_eq!(
        addrs_in(&second.netns, "eth0"),
        vec![(second.ip.clone(), 24)]
    );
    // netavark's port forwards, whichever firewall driver it uses: iptables (`-j DNAT`,
    // `--dport P`) or nftables (`tcp dport P ... dnat ip to A:P'`). A tool that cannot run
    // fails the test rather than reading as "no rules".
    let rules = [
        run("iptables-save", &[]).unwrap_or_else(|e| panic!("{e}")),
        run("nft", &["list", "ruleset"]).unwrap_or_else(|e| panic!("{e}")),
    ]
    .join("\n");
    let forwards: Vec<&str> = rules
        .lines()
        .filter(|l| {
            (l.contains("-j DNAT") && l.contains(&format!("--dport {port} ")))
                || (l.contains("dnat ip to") && l.contains(&format!("dport {port} ")))
        })
        .collect();
    if first.ip != second.ip {
        assert!(
            !rules.contains(&format!("{}:8080", first.ip)),
            "stale forward to the lost address {}: {forwards:#?}",
            first.ip
        );
    }
    assert_eq!(
        forwards.len(),
        1,
        "port {port} must be forwarded exactly once, to {}: {forwards:#?}",
        second.ip
    );
    assert!(
        forwards[0].contains(&format!("{}:8080", second.ip)),
        "port {port} forwarded elsewhere than {}:8080: {forwards:#?}",
        second.ip
    );
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
    let ports = [tcp(t.free_port(), 80)];
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
