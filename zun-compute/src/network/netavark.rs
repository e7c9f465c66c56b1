//! netavark's JSON contract (the subset podman uses for one bridge network with addresses it
//! allocated itself) and running the binary: `netavark --config DIR setup|teardown NETNS` with
//! the options on stdin, a status block (setup) or `{"error": ...}` on stdout.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// `NetworkOptions`: what one container needs on which networks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Options {
    /// 64 hex characters; netavark names firewall chains and comments after it.
    pub container_id: String,
    /// A readable name.
    pub container_name: String,
    /// The host name (netavark 2 gives it to aardvark-dns; 1.4 ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_hostname: Option<String>,
    /// Per network name: the container's options on it.
    pub networks: BTreeMap<String, PerNetwork>,
    /// Per network name: the network's definition.
    pub network_info: BTreeMap<String, NetworkInfo>,
    /// Published ports.
    #[serde(default)]
    pub port_mappings: Vec<PortMap>,
}

/// `PerNetworkOptions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PerNetwork {
    /// The interface name inside the namespace.
    pub interface_name: String,
    /// The addresses to give it (we allocate; netavark assigns).
    #[serde(default)]
    pub static_ips: Vec<Ipv4Addr>,
}

/// A network's definition (podman's `types.Network`, the fields a bridge needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NetworkInfo {
    /// Name.
    pub name: String,
    /// 64 hex characters.
    pub id: String,
    /// `bridge`.
    pub driver: String,
    /// The bridge's name on the host.
    pub network_interface: String,
    /// Its subnets.
    pub subnets: Vec<SubnetInfo>,
    /// Always false here.
    pub ipv6_enabled: bool,
    /// Always false here (published ports need external routes).
    pub internal: bool,
    /// Always false here (no aardvark-dns).
    pub dns_enabled: bool,
    /// `{"driver": "host-local"}`: addresses come in `static_ips`.
    pub ipam_options: BTreeMap<String, String>,
}

/// A subnet with its gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SubnetInfo {
    /// CIDR.
    pub subnet: String,
    /// The bridge's address.
    pub gateway: Ipv4Addr,
}

/// `PortMapping`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PortMap {
    /// Host address; empty means all.
    pub host_ip: String,
    /// Port in the container.
    pub container_port: u16,
    /// Port on the host.
    pub host_port: u16,
    /// Number of consecutive ports; always 1 here.
    pub range: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// `StatusBlock`, per network name, as setup prints it.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusBlock {
    /// Per interface name.
    #[serde(default)]
    pub interfaces: BTreeMap<String, NetInterface>,
}

/// `NetInterface`.
#[derive(Debug, Deserialize)]
pub(crate) struct NetInterface {
    /// Its MAC address.
    pub mac_address: String,
    /// Its addresses.
    #[serde(default)]
    pub subnets: Vec<NetAddress>,
}

/// `NetAddress`.
#[derive(Debug, Deserialize)]
pub(crate) struct NetAddress {
    /// `a.b.c.d/n` (the interface's address, with the prefix of its subnet).
    pub ipnet: String,
    /// The gateway, if the network has one.
    #[serde(default)]
    pub gateway: Option<String>,
}

/// `{"error": "..."}`, printed on failure.
#[derive(Debug, Deserialize)]
struct JsonError {
    error: String,
}

/// How a run of netavark ended.
#[derive(Debug)]
pub(crate) enum RunFailure {
    /// It could not be started or talked to.
    Spawn(std::io::Error),
    /// It exited non-zero.
    Failed {
        /// Exit code; `None` if killed by a signal.
        code: Option<i32>,
        /// Its JSON error message, else its stdout.
        message: String,
        /// Its stderr (logs), trimmed.
        stderr: String,
    },
}

/// The subcommands used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// `setup`.
    Setup,
    /// `teardown`.
    Teardown,
}

impl Command {
    /// The subcommand's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Command::Setup => "setup",
            Command::Teardown => "teardown",
        }
    }
}

/// `PATH` for netavark: it runs `iptables`/`nft`, which Debian keeps in `/usr/sbin`.
fn path_env() -> OsString {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    let has = |dir: &str| std::env::split_paths(&path).any(|p| p == Path::new(dir));
    let mut extra = Vec::new();
    for dir in ["/usr/sbin", "/sbin"] {
        if !has(dir) {
            extra.push(PathBuf::from(dir));
        }
    }
    if !extra.is_empty() {
        let joined = std::env::join_paths(std::env::split_paths(&path).chain(extra));
        if let Ok(p) = joined {
            path = p;
        }
    }
    path
}

/// Runs `binary --config config_dir <command> netns` with `options` on stdin (and
/// `NETAVARK_FW=firewall` when given, else whatever the agent's environment says); returns
/// stdout.
pub(crate) async fn run(
    binary: &Path,
    config_dir: &Path,
    firewall: Option<&str>,
    command: Command,
    netns: &Path,
    options: &Options,
) -> Result<String, RunFailure> {
    let started = std::time::Instant::now();
    let out = async {
        let input = serde_json::to_vec(options).map_err(|e| RunFailure::Spawn(e.into()))?;
        let mut cmd = tokio::process::Command::new(binary);
        if let Some(fw) = firewall {
            cmd.env("NETAVARK_FW", fw);
        }
        let mut child = cmd
            .arg("--config")
            .arg(config_dir)
            .arg(command.as_str())
            .arg(netns)
            .env("PATH", path_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(RunFailure::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            // netavark reads all of stdin before doing anything; a write error shows as its exit.
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        }
        let out = child.wait_with_output().await.map_err(RunFailure::Spawn)?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let message = serde_json::from_str::<JsonError>(&stdout)
            .map(|e| e.error)
            .unwrap_or(stdout);
        Err(RunFailure::Failed {
            code: out.status.code(),
            message,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
    .await;
    crate::metrics::metrics().tool("netavark", command.as_str(), out.is_ok(), started.elapsed());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_have_podmans_shape() {
        let mut networks = BTreeMap::new();
        networks.insert(
            "capsule".to_owned(),
            PerNetwork {
                interface_name: "eth0".into(),
                static_ips: vec![Ipv4Addr::new(10, 89, 0, 2)],
            },
        );
        let mut info = BTreeMap::new();
        info.insert(
            "capsule".to_owned(),
            NetworkInfo {
                name: "capsule".into(),
                id: "ab".repeat(32),
                driver: "bridge".into(),
                network_interface: "capsule0".into(),
                subnets: vec![SubnetInfo {
                    subnet: "10.89.0.0/24".into(),
                    gateway: Ipv4Addr::new(10, 89, 0, 1),
                }],
                ipv6_enabled: false,
                internal: false,
                dns_enabled: false,
                ipam_options: [("driver".to_owned(), "host-local".to_owned())].into(),
            },
        );
        let o = Options {
            container_id: "cd".repeat(32),
            container_name: "capsule-x".into(),
            container_hostname: None,
            networks,
            network_info: info,
            port_mappings: vec![PortMap {
                host_ip: String::new(),
                container_port: 80,
                host_port: 8080,
                range: 1,
                protocol: "tcp".into(),
            }],
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["networks"]["capsule"]["static_ips"][0], "10.89.0.2");
        assert_eq!(
            v["network_info"]["capsule"]["subnets"][0]["gateway"],
            "10.89.0.1"
        );
        assert_eq!(
            v["network_info"]["capsule"]["ipam_options"]["driver"],
            "host-local"
        );
        assert_eq!(v["port_mappings"][0]["range"], 1);
        assert!(v.get("container_hostname").is_none());
        let back: Options = serde_json::from_value(v).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn parses_the_probed_status_block() {
        let out = r#"{"pnnet1":{"dns_search_domains":[],"dns_server_ips":[],"interfaces":{"eth0":{"mac_address":"02:3e:c8:f5:98:e7","subnets":[{"gateway":"10.89.1.1","ipnet":"10.89.1.2/24"}]}}}}"#;
        let s: BTreeMap<String, StatusBlock> = serde_json::from_str(out).unwrap();
        let eth0 = &s["pnnet1"].interfaces["eth0"];
        assert_eq!(eth0.mac_address, "02:3e:c8:f5:98:e7");
        assert_eq!(eth0.subnets[0].ipnet, "10.89.1.2/24");
        assert_eq!(eth0.subnets[0].gateway.as_deref(), Some("10.89.1.1"));
    }

    #[test]
    fn path_gains_sbin() {
        let p = path_env();
        assert!(std::env::split_paths(&p).any(|d| d == Path::new("/usr/sbin")));
    }

    #[tokio::test]
    async fn failure_carries_the_json_error() {
        // A stand-in binary that fails the way netavark does.
        let dir = std::env::temp_dir().join(format!("zun-nv-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("netavark");
        std::fs::write(
            &bin,
            "#!/bin/sh\ncat >/dev/null\necho '{\"error\":\"boom\"}'\necho log >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let opts = Options {
            container_id: "0".repeat(64),
            container_name: "x".into(),
            container_hostname: None,
            networks: BTreeMap::new(),
            network_info: BTreeMap::new(),
            port_mappings: vec![],
        };
        // A fork elsewhere in this test process may briefly hold the script open for writing.
        let mut busy = 0;
        let result = loop {
            let r = run(
                &bin,
                &dir,
                None,
                Command::Setup,
                Path::new("/nonexistent"),
                &opts,
            )
            .await;
            match &r {
                Err(RunFailure::Spawn(e))
                    if e.raw_os_error() == Some(libc::ETXTBSY) && busy < 50 =>
                {
                    busy += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                _ => break r,
            }
        };
        match result {
            Err(RunFailure::Failed {
                message, stderr, ..
            }) => assert_eq!((message.as_str(), stderr.as_str()), ("boom", "log")),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
