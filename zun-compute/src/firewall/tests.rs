//! Unit tests: the rendered script, checked as text (nft itself parses it in
//! `tests/firewall.rs`), the configuration checks and the choice of driver, and running a
//! stand-in nft.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use capsule_types::secgroup::{Cidr, Direction, Ethertype, FirewallRule, HostFirewall};
use uuid::Uuid;

use super::nft::command_line;
use super::render::chain_name;
use super::*;

const A: Uuid = Uuid::from_u128(0x0a0a0a0a_0000_4000_8000_000000000001);
const B: Uuid = Uuid::from_u128(0x0b0b0b0b_0000_4000_8000_000000000002);
const C: Uuid = Uuid::from_u128(0x0c0c0c0c_0000_4000_8000_000000000003);

fn subnet() -> Cidr {
    cidr("10.89.0.0/24")
}

fn gw() -> Ipv4Addr {
    Ipv4Addr::new(10, 89, 0, 1)
}

/// The capsule network of these tests: `subnet()`, `gw()`, bridge `capsule0`.
fn net() -> CapsuleNet {
    CapsuleNet {
        subnet: subnet(),
        gateway: gw(),
        bridge: "capsule0".into(),
    }
}

fn cidr(s: &str) -> Cidr {
    Cidr::parse(s).expect("test CIDR")
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 89, 0, last)
}

fn rule(
    direction: Direction,
    protocol: Option<u8>,
    ports: (Option<u16>, Option<u16>),
) -> FirewallRule {
    FirewallRule {
        direction,
        ethertype: Ethertype::IPv4,
        protocol,
        port_range_min: ports.0,
        port_range_max: ports.1,
        remote: None,
    }
}

fn ingress(
    protocol: Option<u8>,
    min: Option<u16>,
    max: Option<u16>,
    remote: &[&str],
) -> FirewallRule {
    FirewallRule {
        remote: Some(remote.iter().map(|s| cidr(s)).collect()),
        ..rule(Direction::Ingress, protocol, (min, max))
    }
}

/// Neutron's default group of a group whose members are at `members`: ingress from the
/// members (IPv4 and IPv6), egress anywhere (IPv4 and IPv6).
fn neutron_default(members: &[&str]) -> Vec<FirewallRule> {
    let v6 = |r: FirewallRule| FirewallRule {
        ethertype: Ethertype::IPv6,
        ..r
    };
    vec![
        ingress(None, None, None, members),
        v6(ingress(None, None, None, &[])),
        rule(Direction::Egress, None, (None, None)),
        v6(rule(Direction::Egress, None, (None, None))),
    ]
}

fn doc(capsules: &[(Uuid, &[&str])], groups: &[(&str, Vec<FirewallRule>)]) -> HostFirewall {
    HostFirewall {
        epoch: 7,
        incarnation: "test".into(),
        capsules: capsules
            .iter()
            .map(|(id, g)| (*id, g.iter().map(|s| s.to_string()).collect()))
            .collect(),
        groups: groups
            .iter()
            .map(|(id, r)| (id.to_string(), r.clone()))
            .collect(),
    }
}

fn local(entries: &[(Uuid, u8)]) -> BTreeMap<Uuid, Ipv4Addr> {
    entries.iter().map(|(id, last)| (*id, ip(*last))).collect()
}

fn script(d: &HostFirewall, l: &BTreeMap<Uuid, Ipv4Addr>) -> String {
    render("capsule_sg", &net(), d, l)
}

/// The body of chain `name` (the lines between its braces, trimmed).
fn chain(script: &str, name: &str) -> Vec<String> {
    let head = format!("\tchain {name} {{");
    let mut lines = script.lines().skip_while(|l| *l != head);
    assert!(lines.next().is_some(), "no chain {name} in\n{script}");
    lines
        .take_while(|l| *l != "\t}")
        .map(|l| l.trim().to_owned())
        .collect()
}

fn ingress_of(script: &str, id: Uuid) -> Vec<String> {
    chain(script, &chain_name("in", id))
}

fn egress_of(script: &str, id: Uuid) -> Vec<String> {
    chain(script, &chain_name("eg", id))
}

/// The ingress chain of capsule A in group `g` with `rules`.
fn ingress_with(rules: Vec<FirewallRule>) -> Vec<String> {
    let s = script(&doc(&[(A, &["g"])], &[("g", rules)]), &local(&[(A, 2)]));
    ingress_of(&s, A)
}

#[test]
fn empty_doc_fails_closed() {
    let s = script(&HostFirewall::default(), &local(&[(A, 2)]));
    let expected = "\
# Security groups of this host's capsules (document epoch 0).
table inet capsule_sg {}
delete table inet capsule_sg
table inet capsule_sg {
\t# The capsules that have chains; any other address of the subnet but the gateway
\t# takes and makes no new connections.
\tset capsules {
\t\ttype ipv4_addr
\t}
\tmap egress {
\t\ttype ipv4_addr : verdict
\t}
\tmap ingress {
\t\ttype ipv4_addr : verdict
\t}
\t# Routed, DNAT'd (published ports) and bridged (br_netfilter) traffic.
\tchain forward {
\t\ttype filter hook forward priority filter - 5; policy accept;
\t\tct state established,related accept
\t\tip saddr vmap @egress
\t\tip saddr 10.89.0.0/24 ip saddr != 10.89.0.1 ip saddr != @capsules counter drop
\t\tip daddr vmap @ingress
\t\tip daddr 10.89.0.0/24 ip daddr != 10.89.0.1 ip daddr != @capsules counter drop
\t}
\t# To the host itself: its loopback only from itself; from capsules only what is
\t# published (DNAT'd to a capsule, so never seen here) and replies.
\tchain input {
\t\ttype filter hook input priority filter - 5; policy accept;
\t\tct state established,related accept
\t\tiifname != \"lo\" ip daddr 127.0.0.0/8 ct status & dnat == 0 counter drop
\t\tiifname != \"lo\" ip saddr 127.0.0.0/8 ct status & dnat == 0 counter drop
\t\tiifname \"capsule0\" ct status & dnat == 0 counter drop
\t\tip saddr 10.89.0.0/24 ip saddr != 10.89.0.1 ct status & dnat == 0 counter drop
\t}
\t# From the host to capsules, 127.0.0.1:hostPort included (DNAT'd in nat output).
\tchain output {
\t\ttype filter hook output priority filter - 5; policy accept;
\t\tct state established,related accept
\t\tip daddr vmap @ingress
\t\tip daddr 10.89.0.0/24 ip daddr != 10.89.0.1 ip daddr != @capsules counter drop
\t}
}
";
    assert_eq!(s, expected);
    assert!(!s.contains("jump"));
}

#[test]
fn neutron_default_group() {
    let d = doc(
        &[(A, &["default"]), (B, &["default"])],
        &[(
            "default",
            neutron_default(&["10.89.0.3/32", "10.89.0.2/32"]),
        )],
    );
    let s = script(&d, &local(&[(A, 2), (B, 3)]));
    let a = "0a0a0a0a_0000_4000_8000_000000000001";
    let b = "0b0b0b0b_0000_4000_8000_000000000002";
    assert!(
        s.contains("\t\telements = { 10.89.0.2, 10.89.0.3 }\n"),
        "{s}"
    );
    assert!(s.contains(&format!(
        "\t\telements = {{ 10.89.0.2 : jump eg_{a}, 10.89.0.3 : jump eg_{b} }}\n"
    )));
    assert!(s.contains(&format!(
        "\t\telements = {{ 10.89.0.2 : jump in_{a}, 10.89.0.3 : jump in_{b} }}\n"
    )));
    let chains = format!(
        "\tchain eg_{a} {{
\t\treturn
\t\tcounter drop
\t}}
\tchain in_{a} {{
\t\tip saddr {{ 10.89.0.2/32, 10.89.0.3/32 }} accept
\t\tcounter drop
\t}}
\tchain eg_{b} {{
\t\treturn
\t\tcounter drop
\t}}
\tchain in_{b} {{
\t\tip saddr {{ 10.89.0.2/32, 10.89.0.3/32 }} accept
\t\tcounter drop
\t}}
}}
"
    );
    assert!(s.ends_with(&chains), "{s}");
}

#[test]
fn tcp_80_from_anywhere() {
    let r = ingress(Some(6), Some(80), Some(80), &["0.0.0.0/0"]);
    assert_eq!(
        ingress_with(vec![r]),
        ["meta l4proto 6 th dport 80 accept", "counter drop"]
    );
    // No remote at all is the same.
    let r = rule(Direction::Ingress, Some(6), (Some(80), Some(80)));
    assert_eq!(
        ingress_with(vec![r]),
        ["meta l4proto 6 th dport 80 accept", "counter drop"]
    );
}

#[test]
fn port_range_and_udp() {
    let rules = vec![
        ingress(Some(6), Some(3000), Some(3010), &["192.168.0.0/16"]),
        rule(Direction::Ingress, Some(17), (Some(53), Some(53))),
        rule(Direction::Ingress, Some(17), (None, None)),
        rule(Direction::Ingress, Some(132), (Some(9), None)),
        // Inverted: no port at all.
        rule(Direction::Ingress, Some(6), (Some(10), Some(9))),
    ];
    assert_eq!(
        ingress_with(rules),
        [
            "ip saddr { 192.168.0.0/16 } meta l4proto 6 th dport 3000-3010 accept",
            "meta l4proto 17 th dport 53 accept",
            "meta l4proto 17 accept",
            "meta l4proto 132 th dport 9 accept",
            "counter drop",
        ]
    );
}

#[test]
fn icmp_type_and_code() {
    let rules = vec![
        rule(Direction::Ingress, Some(1), (Some(8), Some(0))),
        rule(Direction::Ingress, Some(1), (Some(3), None)),
        rule(Direction::Ingress, Some(1), (None, None)),
        // Not an ICMP type: matches nothing.
        rule(Direction::Ingress, Some(1), (Some(300), None)),
    ];
    assert_eq!(
        ingress_with(rules),
        [
            "meta l4proto icmp icmp type 8 icmp code 0 accept",
            "meta l4proto icmp icmp type 3 accept",
            "meta l4proto icmp accept",
            "counter drop",
        ]
    );
}

#[test]
fn other_protocol_by_number() {
    let r = rule(Direction::Egress, Some(47), (None, None));
    let s = script(&doc(&[(A, &["g"])], &[("g", vec![r])]), &local(&[(A, 2)]));
    assert_eq!(egress_of(&s, A), ["meta l4proto 47 return", "counter drop"]);
    assert_eq!(ingress_of(&s, A), ["counter drop"]);
}

#[test]
fn ipv6_and_empty_remotes_are_skipped() {
    let v6 = FirewallRule {
        ethertype: Ethertype::IPv6,
        ..rule(Direction::Ingress, Some(6), (Some(22), Some(22)))
    };
    let rules = vec![
        v6,
        ingress(Some(6), Some(80), Some(80), &[]),
        ingress(Some(6), Some(81), Some(81), &["2001:db8::/32"]),
        ingress(
            Some(6),
            Some(82),
            Some(82),
            &["2001:db8::/32", "10.1.2.3/32"],
        ),
    ];
    assert_eq!(
        ingress_with(rules),
        [
            "ip saddr { 10.1.2.3/32 } meta l4proto 6 th dport 82 accept",
            "counter drop"
        ]
    );
}

#[test]
fn egress_remote_is_the_destination() {
    let r = FirewallRule {
        remote: Some(vec![cidr("10.89.0.3/32")]),
        ..rule(Direction::Egress, Some(6), (Some(5432), Some(5432)))
    };
    let s = script(&doc(&[(A, &["g"])], &[("g", vec![r])]), &local(&[(A, 2)]));
    assert_eq!(
        egress_of(&s, A),
        [
            "ip daddr { 10.89.0.3/32 } meta l4proto 6 th dport 5432 return",
            "counter drop"
        ]
    );
}

#[test]
fn nested_prefixes_are_merged() {
    let r = ingress(
        None,
        None,
        None,
        &[
            "10.1.0.0/16",
            "10.0.0.0/8",
            "10.2.3.4/32",
            "192.168.1.7/32",
            "192.168.1.7",
        ],
    );
    assert_eq!(
        ingress_with(vec![r]),
        [
            "ip saddr { 10.0.0.0/8, 192.168.1.7/32 } accept",
            "counter drop"
        ]
    );
    let any = ingress(None, None, None, &["10.0.0.0/8", "0.0.0.0/0"]);
    assert_eq!(ingress_with(vec![any]), ["accept", "counter drop"]);
}

#[test]
fn capsule_missing_from_local_or_doc() {
    // A: in both; B: in the document only (ignored); C: local only (no chains).
    let d = doc(
        &[(A, &["g"]), (B, &["g"])],
        &[("g", vec![rule(Direction::Ingress, None, (None, None))])],
    );
    let s = script(&d, &local(&[(A, 2), (C, 4)]));
    assert!(s.contains("\t\telements = { 10.89.0.2 }\n"), "{s}");
    assert!(!s.contains("10.89.0.4"), "{s}");
    assert!(!s.contains(&chain_name("in", B)) && !s.contains(&chain_name("eg", B)));
    assert!(!s.contains(&chain_name("in", C)) && !s.contains(&chain_name("eg", C)));
    assert_eq!(ingress_of(&s, A), ["accept", "counter drop"]);
    // The fail-closed lines cover C.
    assert!(s.contains(
        "ip daddr 10.89.0.0/24 ip daddr != 10.89.0.1 ip daddr != @capsules counter drop"
    ));
}

#[test]
fn missing_group_gives_fewer_rules() {
    let d = doc(
        &[(A, &["gone", "g"])],
        &[("g", vec![rule(Direction::Egress, Some(17), (None, None))])],
    );
    let s = script(&d, &local(&[(A, 2)]));
    assert_eq!(egress_of(&s, A), ["meta l4proto 17 return", "counter drop"]);
    assert_eq!(ingress_of(&s, A), ["counter drop"]);
}

#[test]
fn identical_rules_once() {
    let web = ingress(Some(6), Some(80), Some(80), &["0.0.0.0/0"]);
    let same = rule(Direction::Ingress, Some(6), (Some(80), Some(80)));
    let d = doc(
        &[(A, &["g", "h", "g"])],
        &[
            ("g", vec![web.clone(), web.clone(), same]),
            (
                "h",
                vec![web, rule(Direction::Ingress, Some(6), (Some(81), None))],
            ),
        ],
    );
    let s = script(&d, &local(&[(A, 2)]));
    assert_eq!(
        ingress_of(&s, A),
        [
            "meta l4proto 6 th dport 80 accept",
            "meta l4proto 6 th dport 81 accept",
            "counter drop"
        ]
    );
}

#[test]
fn shared_address_gets_no_chains() {
    let d = doc(&[(A, &[]), (B, &[])], &[]);
    let s = script(&d, &local(&[(A, 2), (B, 2)]));
    assert!(!s.contains("jump"), "{s}");
}

#[test]
fn table_name_is_the_given_one() {
    let d = doc(&[(A, &[])], &[]);
    let s = render("other_t", &net(), &d, &local(&[(A, 2)]));
    assert!(!s.contains("capsule_sg"));
    assert!(s.starts_with("# Security groups of this host's capsules (document epoch 7).\ntable inet other_t {}\ndelete table inet other_t\ntable inet other_t {\n"));
}

#[test]
fn deterministic() {
    let d = doc(
        &[(C, &["g"]), (A, &["g"]), (B, &["g"])],
        &[("g", neutron_default(&["10.89.0.9/32", "10.89.0.2/32"]))],
    );
    let l = local(&[(C, 5), (B, 9), (A, 2)]);
    assert_eq!(script(&d, &l), script(&d.clone(), &l.clone()));
    let s = script(&d, &l);
    let pos = |id: Uuid| s.find(&format!("chain {}", chain_name("eg", id)));
    assert!(pos(A) < pos(B) && pos(B) < pos(C));
    assert!(s.contains("elements = { 10.89.0.2, 10.89.0.5, 10.89.0.9 }"));
}

#[test]
fn config_defaults_and_checks() {
    let cfg: FirewallConfig = toml::from_str("").expect("empty config");
    assert!(cfg.enabled);
    assert_eq!(cfg.nft, PathBuf::from("nft"));
    assert_eq!(cfg.table, "capsule_sg");
    assert_eq!(cfg.netns, None);
    assert_eq!(cfg.check_seconds, 2);
    assert!(toml::from_str::<FirewallConfig>("tabel = \"x\"").is_err());

    let with = |table: &str| FirewallConfig {
        table: table.into(),
        ..FirewallConfig::default()
    };
    assert!(NftFirewall::new(with("capsule_sg"), net()).is_ok());
    for bad in ["", "1abc", "a-b", "a b", "a;b"] {
        let e = NftFirewall::new(with(bad), net()).expect_err(bad);
        assert!(matches!(e, FirewallError::Config { .. }), "{e}");
    }
    let v6 = CapsuleNet {
        subnet: cidr("fd00::/64"),
        ..net()
    };
    let e = NftFirewall::new(with("t"), v6).expect_err("IPv6 subnet");
    assert!(e.to_string().contains("not IPv4"), "{e}");
    let elsewhere = CapsuleNet {
        gateway: Ipv4Addr::new(10, 90, 0, 1),
        ..net()
    };
    let e = NftFirewall::new(with("t"), elsewhere).expect_err("gateway");
    assert!(e.to_string().contains("table inet t"), "{e}");
    for bad in ["", "a\"b", "sixteen-chars-xx", "br 0", "br;0"] {
        let bridge = CapsuleNet {
            bridge: bad.into(),
            ..net()
        };
        let e = NftFirewall::new(with("t"), bridge).expect_err(bad);
        assert!(e.to_string().contains("interface name"), "{e}");
    }
}

#[test]
fn command_line_in_a_namespace() {
    let stdin = ["-f", "-"].map(std::ffi::OsString::from);
    let (p, a) = command_line(Path::new("nft"), None, &stdin);
    assert_eq!(
        (p.as_os_str(), a),
        ("nft".as_ref(), vec!["-f".into(), "-".into()])
    );
    let (p, a) = command_line(
        Path::new("/usr/sbin/nft"),
        Some(Path::new("/run/netns/x")),
        &stdin,
    );
    assert_eq!(p, "nsenter");
    let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    assert_eq!(a, ["--net=/run/netns/x", "/usr/sbin/nft", "-f", "-"]);
}

#[tokio::test]
async fn disabled_does_nothing() {
    let cfg = FirewallConfig {
        enabled: false,
        nft: PathBuf::from("/nonexistent/nft"),
        ..FirewallConfig::default()
    };
    let fw = from_config(cfg, net()).expect("config");
    fw.apply(&HostFirewall::default(), &BTreeMap::new())
        .await
        .expect("apply when disabled");
    fw.remove().await.expect("remove when disabled");
    fw.remove().await.expect("remove when disabled, again");
}

#[tokio::test]
async fn spawn_failure_names_the_table() {
    let cfg = FirewallConfig {
        nft: PathBuf::from("/nonexistent/nft"),
        table: "t_spawn".into(),
        ..FirewallConfig::default()
    };
    let fw = NftFirewall::new(cfg, net()).expect("config");
    let e = fw.remove().await.expect_err("no such binary");
    assert!(matches!(e, FirewallError::Spawn { .. }), "{e}");
    assert!(e.to_string().contains("table inet t_spawn"), "{e}");
    assert!(e.to_string().contains("/nonexistent/nft -f -"), "{e}");
}

#[tokio::test]
async fn failure_carries_stderr_and_the_script_went_to_stdin() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("zun-fw-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("nft");
    let seen = dir.join("stdin");
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"-f -\" ] || exit 9\ncat > {}\necho 'Error: refused' >&2\nexit 1\n",
            seen.display()
        ),
    )
    .expect("write stand-in");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let cfg = FirewallConfig {
        nft: bin.clone(),
        table: "t_fail".into(),
        ..FirewallConfig::default()
    };
    let fw = NftFirewall::new(cfg, net()).expect("config");
    let d = doc(&[(A, &[])], &[]);
    let l = local(&[(A, 2)]);
    // A fork elsewhere in this test process may briefly hold the script open for writing.
    let mut busy = 0;
    let result = loop {
        let r = fw.apply(&d, &l).await;
        match &r {
            Err(FirewallError::Spawn { source, .. })
                if source.raw_os_error() == Some(libc::ETXTBSY) && busy < 50 =>
            {
                busy += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            _ => break r,
        }
    };
    match result {
        Err(FirewallError::Nft {
            table,
            action,
            code,
            stderr,
            ..
        }) => {
            assert_eq!(
                (table.as_str(), action, code, stderr.as_str()),
                ("t_fail", "apply", Some(1), "Error: refused")
            );
        }
        other => panic!("{other:?}"),
    }
    let got = std::fs::read_to_string(&seen).expect("stdin copy");
    assert_eq!(got, render("t_fail", &net(), &d, &l));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
