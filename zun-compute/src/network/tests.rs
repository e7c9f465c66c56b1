//! Unit tests of the network module that need no root and touch no kernel state.

use super::*;

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("zun-net-unit-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cfg(dir: &Path) -> NetworkConfig {
    NetworkConfig {
        config_dir: dir.join("netavark"),
        netns_dir: dir.join("netns"),
        netavark: dir.join("no-netavark"),
        ..NetworkConfig::default()
    }
}

#[test]
fn config_defaults_and_toml() {
    let c: NetworkConfig = toml::from_str("").unwrap();
    assert_eq!(c.netavark, Path::new("/usr/lib/podman/netavark"));
    assert_eq!(c.network_name, "capsule");
    assert_eq!(c.bridge, "capsule0");
    assert_eq!(c.subnet, "10.89.0.0/24");
    assert_eq!(c.netns_dir, Path::new("/run/netns"));
    assert_eq!(c.firewall_driver, None);
    let c: NetworkConfig =
        toml::from_str("subnet = \"10.90.0.0/16\"\ngateway = \"10.90.0.254\"").unwrap();
    let n = Network::new(c).unwrap();
    assert_eq!(n.0.gateway, Ipv4Addr::new(10, 90, 0, 254));
    assert!(toml::from_str::<NetworkConfig>("nope = 1").is_err());
}

#[test]
fn config_is_checked() {
    let base = NetworkConfig::default();
    for bad in [
        NetworkConfig {
            subnet: "10.89.0.1/24".into(),
            ..base.clone()
        },
        NetworkConfig {
            gateway: Some("10.89.1.1".into()),
            ..base.clone()
        },
        NetworkConfig {
            gateway: Some("10.89.0.255".into()),
            ..base.clone()
        },
        NetworkConfig {
            bridge: "a-bridge-name-too-long".into(),
            ..base.clone()
        },
        NetworkConfig {
            bridge: "br/0".into(),
            ..base.clone()
        },
        NetworkConfig {
            network_name: String::new(),
            ..base.clone()
        },
        NetworkConfig {
            firewall_driver: Some("firewalld".into()),
            ..base.clone()
        },
    ] {
        let e = Network::new(bad.clone()).unwrap_err();
        assert!(matches!(e, NetworkError::Config { .. }), "{bad:?}: {e}");
    }
    assert_eq!(
        Network::new(base).unwrap().0.gateway,
        Ipv4Addr::new(10, 89, 0, 1)
    );
}

#[test]
fn netns_path_and_container_id() {
    let n = Network::new(NetworkConfig::default()).unwrap();
    let id = Uuid::parse_str("0b7e5c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b").unwrap();
    assert_eq!(
        n.netns_path(id),
        Path::new("/run/netns/capsule-0b7e5c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b")
    );
    let cid = container_id(id);
    assert_eq!(cid.len(), 64);
    assert!(cid.starts_with("0b7e5c1a2f3d4e5f8a9b0c1d2e3f4a5b"));
    assert_eq!(n.0.network_id.len(), 64);
}

#[test]
fn options_for_a_capsule() {
    let n = Network::new(NetworkConfig::default()).unwrap();
    let id = Uuid::new_v4();
    let ports = [
        PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: None,
        },
        PortMapping {
            host_port: 5353,
            container_port: 53,
            protocol: Protocol::Udp,
            host_ip: Some("127.0.0.1".into()),
        },
    ];
    let o = n.options(id, "web", Ipv4Addr::new(10, 89, 0, 9), &ports);
    let v = serde_json::to_value(&o).unwrap();
    assert_eq!(v["container_name"], format!("capsule-{id}"));
    assert_eq!(v["container_hostname"], "web");
    assert_eq!(v["networks"]["capsule"]["interface_name"], "eth0");
    assert_eq!(v["networks"]["capsule"]["static_ips"][0], "10.89.0.9");
    let info = &v["network_info"]["capsule"];
    assert_eq!(info["network_interface"], "capsule0");
    assert_eq!(info["driver"], "bridge");
    assert_eq!(info["subnets"][0]["subnet"], "10.89.0.0/24");
    assert_eq!(info["subnets"][0]["gateway"], "10.89.0.1");
    assert_eq!(v["port_mappings"][0]["host_ip"], "");
    assert_eq!(v["port_mappings"][1]["protocol"], "udp");
    assert_eq!(v["port_mappings"][1]["host_ip"], "127.0.0.1");
}

#[test]
fn attachment_from_status() {
    let n = Network::new(NetworkConfig::default()).unwrap();
    let id = Uuid::new_v4();
    let ns = n.netns_path(id);
    let out = r#"{"capsule":{"dns_search_domains":[],"dns_server_ips":[],"interfaces":{"eth0":{"mac_address":"02:3e:c8:f5:98:e7","subnets":[{"gateway":"10.89.0.1","ipnet":"10.89.0.2/24"}]}}}}"#;
    let a = n.attachment(id, &ns, out).unwrap();
    assert_eq!(
        a,
        Attachment {
            netns: ns.clone(),
            interface: "eth0".into(),
            ip: "10.89.0.2".into(),
            prefix: 24,
            gateway: "10.89.0.1".into(),
            mac: "02:3e:c8:f5:98:e7".into(),
        }
    );
    for bad in [
        "nope",
        r#"{"other":{"interfaces":{}}}"#,
        r#"{"capsule":{"interfaces":{}}}"#,
        r#"{"capsule":{"interfaces":{"eth0":{"mac_address":"x","subnets":[{"ipnet":"fd00::2/64"}]}}}}"#,
    ] {
        let e = n.attachment(id, &ns, bad).unwrap_err();
        assert!(matches!(e, NetworkError::NetavarkOutput { .. }), "{bad}");
        assert!(e.to_string().contains(&id.to_string()));
    }
}

#[test]
fn teardown_display_lists_every_chain() {
    let id = Uuid::new_v4();
    let e = NetworkError::Teardown {
        capsule: id,
        errors: vec![
            NetworkError::Netns {
                capsule: id,
                action: "unmount",
                netns: "/run/netns/x".into(),
                source: io::Error::other("busy"),
            },
            NetworkError::Netavark {
                capsule: id,
                command: "teardown",
                netns: "/run/netns/x".into(),
                code: Some(1),
                message: "boom".into(),
                stderr: String::new(),
            },
        ],
    };
    let s = e.to_string();
    assert!(s.contains("2 error(s)"), "{s}");
    assert!(s.contains("unmount network namespace /run/netns/x"), "{s}");
    assert!(s.contains(": busy"), "{s}");
    assert!(s.contains("failed (exit code 1): boom"), "{s}");
}

#[tokio::test]
async fn teardown_of_nothing_is_ok() {
    let d = tmpdir();
    let n = Network::new(cfg(&d)).unwrap();
    let id = Uuid::new_v4();
    n.teardown(id, &d.join("network.json")).await.unwrap();
    n.teardown(id, &d.join("network.json")).await.unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}

#[tokio::test]
async fn setup_refuses_a_bound_port_and_leaves_nothing() {
    let d = tmpdir();
    let n = Network::new(cfg(&d)).unwrap();
    let l = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    assert!(!n.host_port_free(port, Protocol::Tcp));
    let id = Uuid::new_v4();
    let state = d.join("network.json");
    let ports = [PortMapping {
        host_port: port,
        container_port: 80,
        protocol: Protocol::Tcp,
        host_ip: None,
    }];
    let e = n.setup(id, "h", &ports, &state).await.unwrap_err();
    match &e {
        NetworkError::PortUnavailable {
            port: p, source, ..
        } => {
            assert_eq!(*p, port);
            assert_eq!(source.kind(), io::ErrorKind::AddrInUse);
        }
        other => panic!("{other}"),
    }
    assert!(!state.exists());
    assert!(!n.netns_path(id).exists());
    assert_eq!(n.leased_ip(id), None);
    drop(l);
    std::fs::remove_dir_all(&d).unwrap();
}

#[tokio::test]
async fn setup_refuses_port_zero_and_bad_host_ips_before_touching_anything() {
    let d = tmpdir();
    let n = Network::new(cfg(&d)).unwrap();
    let id = Uuid::new_v4();
    let state = d.join("network.json");
    for (host_port, host_ip) in [(0, None), (8080, Some("not-an-ip".to_owned()))] {
        let ports = [PortMapping {
            host_port,
            container_port: 80,
            protocol: Protocol::Udp,
            host_ip,
        }];
        match n.setup(id, "h", &ports, &state).await.unwrap_err() {
            NetworkError::PortUnavailable { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::InvalidInput)
            }
            other => panic!("{other}"),
        }
    }
    assert!(!d.join("netns").exists());
    assert!(!state.exists());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_empty_host_ip_means_all() {
    let n = Network::new(NetworkConfig::default()).unwrap();
    let p = PortMapping {
        host_port: 1,
        container_port: 2,
        protocol: Protocol::Tcp,
        host_ip: Some(String::new()),
    };
    let o = n.options(Uuid::new_v4(), "", Ipv4Addr::new(10, 89, 0, 2), &[p]);
    assert_eq!(o.port_mappings[0].host_ip, "");
    assert_eq!(o.container_hostname, None);
}
