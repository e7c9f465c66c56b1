//! The real network driver: the host's bridge network through netavark, with this module's own
//! address leases and port claims, and each capsule's `network.json` record.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::ipam::{self, Ipam, IpamFailure, Ipv4Subnet, PortClaim};
use super::netavark::{self, Command, RunFailure};
use super::netns::{self, NetnsFailure};
use super::{Attachment, NetworkConfig, NetworkError, PortMapping, Protocol};

/// The interface name inside every capsule's namespace.
const INTERFACE: &str = "eth0";
/// The lock file in `config_dir` that serializes netavark runs.
const NETAVARK_LOCK: &str = "zun-netavark.lock";

/// What `network.json` holds: everything teardown needs, written before netavark runs.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// The namespace file used.
    netns: PathBuf,
    /// The options given to netavark.
    options: netavark::Options,
    /// Set once setup succeeded; `None` means setup was started and did not finish.
    #[serde(default)]
    attachment: Option<Attachment>,
    /// The firewall driver the setup ran with (`None`: netavark's default), so teardown
    /// removes the rules from where they are even after `firewall_driver` changed.
    #[serde(default)]
    firewall_driver: Option<String>,
}

/// The host's capsule network. Cheap to clone; clones share the netavark lock.
#[derive(Clone, Debug)]
pub struct Network(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    cfg: NetworkConfig,
    subnet: Ipv4Subnet,
    gateway: Ipv4Addr,
    network_id: String,
    ipam: Ipam,
    /// Serializes this process's netavark runs before the cross-process `flock`, so waiting
    /// setups do not each hold a blocking thread.
    run_lock: tokio::sync::Mutex<()>,
}

/// Runs blocking `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("blocking network task cancelled: {e}"),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Network {
    /// Checks `cfg` (subnet, gateway, names); touches nothing on the host.
    pub fn new(cfg: NetworkConfig) -> Result<Self, NetworkError> {
        let bad = |reason: String| NetworkError::Config { reason };
        let subnet: Ipv4Subnet = cfg.subnet.parse().map_err(bad)?;
        let gateway = match &cfg.gateway {
            None => subnet.first_host(),
            Some(g) => {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| bad(format!("gateway {g:?} is not an IPv4 address")))?;
                if !subnet.is_host(g) {
                    return Err(bad(format!(
                        "gateway {g} is not a host address of subnet {subnet}"
                    )));
                }
                g
            }
        };
        if !valid_name(&cfg.bridge) || cfg.bridge.len() > 15 {
            return Err(bad(format!(
                "bridge {:?} is not an interface name (1 to 15 of [A-Za-z0-9_.-])",
                cfg.bridge
            )));
        }
        if !valid_name(&cfg.network_name) {
            return Err(bad(format!(
                "network name {:?} must be made of [A-Za-z0-9_.-]",
                cfg.network_name
            )));
        }
        if let Some(fw) = &cfg.firewall_driver {
            if !matches!(fw.as_str(), "iptables" | "nftables") {
                return Err(bad(format!(
                    "firewall_driver {fw:?} must be \"iptables\" or \"nftables\""
                )));
            }
        }
        let network_id = hex::encode(Sha256::digest(format!(
            "zun-capsule-network:{}",
            cfg.network_name
        )));
        let ipam = Ipam::new(
            cfg.config_dir.join("ipam").join(&cfg.network_name),
            subnet,
            gateway,
        );
        Ok(Self(Arc::new(Inner {
            cfg,
            subnet,
            gateway,
            network_id,
            ipam,
            run_lock: tokio::sync::Mutex::new(()),
        })))
    }

    /// The configuration in use.
    pub fn config(&self) -> &NetworkConfig {
        &self.0.cfg
    }

    /// The network's name (the key of a capsule's `addresses`).
    pub fn name(&self) -> &str {
        &self.config().network_name
    }

    /// The attachment a finished setup recorded in `state_file`, if any.
    pub async fn recorded_attachment(
        &self,
        capsule: Uuid,
        state_file: &Path,
    ) -> Result<Option<Attachment>, NetworkError> {
        Ok(self
            .read_state(capsule, state_file)
            .await?
            .and_then(|s| s.attachment))
    }

    /// The namespace file of `capsule`: `<netns_dir>/capsule-<uuid>`.
    pub fn netns_path(&self, capsule: Uuid) -> PathBuf {
        self.0.cfg.netns_dir.join(format!("capsule-{capsule}"))
    }

    /// The address leased to `capsule` now, if any (for reconciliation and tests).
    pub fn leased_ip(&self, capsule: Uuid) -> Option<Ipv4Addr> {
        self.0.ipam.lease_of(capsule)
    }

    /// Every capsule's leased address (for the security-group firewall).
    pub fn leased_ips(&self) -> Result<BTreeMap<Uuid, Ipv4Addr>, NetworkError> {
        self.0
            .ipam
            .addresses()
            .map_err(|e| self.ipam_error(Uuid::nil(), e))
    }

    /// The subnet and the bridge's address.
    pub fn subnet(&self) -> (Ipv4Addr, u8, Ipv4Addr) {
        (self.0.subnet.addr(), self.0.subnet.prefix(), self.0.gateway)
    }

    /// Whether `0.0.0.0:port` can be bound now: a quick pre-check before a create (the
    /// scheduler's claim is the real guard; ports published by capsules are not bound, so they
    /// read as free here, and `setup` refuses them through its own claims).
    pub fn host_port_free(&self, port: u16, protocol: Protocol) -> bool {
        try_bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port, protocol).is_ok()
    }

    /// Connects `capsule`: creates its namespace (if not there), leases an address, claims the
    /// host ports, writes the options to `state_file`, runs netavark setup and returns the
    /// attachment. Idempotent: if `state_file` records a finished setup and the namespace has
    /// the interface, returns the recorded attachment without running anything; a record of an
    /// unfinished or broken setup is torn down first. On failure, undoes what it did. Calls for
    /// one capsule must not overlap (calls for different capsules may).
    pub async fn setup(
        &self,
        capsule: Uuid,
        hostname: &str,
        ports: &[PortMapping],
        state_file: &Path,
    ) -> Result<Attachment, NetworkError> {
        match self.read_state(capsule, state_file).await {
            Ok(None) => {}
            Ok(Some(state)) => {
                if let Some(att) = state.attachment {
                    let ns = state.netns.clone();
                    let present = blocking(move || netns::interfaces(&ns))
                        .await
                        .is_ok_and(|names| names.contains(&att.interface));
                    if present {
                        debug!(%capsule, "network already set up");
                        return Ok(att);
                    }
                }
                info!(%capsule, "tearing down an unfinished or broken network setup first");
                self.teardown(capsule, state_file).await?;
            }
            Err(e @ NetworkError::StateParse { .. }) => {
                warn!(%capsule, error = %crate::chain::Chain(&e), "replacing an unreadable network state file");
                if let Err(e) = self.teardown(capsule, state_file).await {
                    warn!(%capsule, error = %crate::chain::Chain(&e), "teardown of an unreadable state");
                }
            }
            Err(e) => return Err(e),
        }
        Self::check_ports(capsule, ports)?;
        let started = Instant::now();
        match self.setup_fresh(capsule, hostname, ports, state_file).await {
            Ok(att) => {
                info!(%capsule, ip = %att.ip, ms = started.elapsed().as_millis() as u64, "network set up");
                Ok(att)
            }
            Err(e) => {
                if let Err(undo) = self.teardown(capsule, state_file).await {
                    warn!(%capsule, error = %crate::chain::Chain(&undo), "undo of a failed network setup");
                }
                Err(e)
            }
        }
    }

    /// Refuses `ports` if one of them is 0 or taken on this host now (by anyone, a capsule's
    /// published port included): the check `setup` makes first, for callers that want it before
    /// they make anything else.
    pub fn check_ports(capsule: Uuid, ports: &[PortMapping]) -> Result<(), NetworkError> {
        for p in ports {
            let addr = host_ip(p).unwrap_or("0.0.0.0");
            let unavailable = |source| NetworkError::PortUnavailable {
                capsule,
                addr: addr.to_owned(),
                port: p.host_port,
                protocol: p.protocol,
                source,
            };
            let ip: IpAddr = addr.parse().map_err(|_| {
                unavailable(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not an IP address",
                ))
            })?;
            if p.host_port == 0 || p.container_port == 0 {
                return Err(unavailable(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "port 0",
                )));
            }
            try_bind(ip, p.host_port, p.protocol).map_err(unavailable)?;
        }
        Ok(())
    }

    async fn setup_fresh(
        &self,
        capsule: Uuid,
        hostname: &str,
        ports: &[PortMapping],
        state_file: &Path,
    ) -> Result<Attachment, NetworkError> {
        let claims: Vec<PortClaim> = ports
            .iter()
            .map(|p| PortClaim {
                protocol: p.protocol,
                port: p.host_port,
            })
            .collect();
        let ipam = self.0.ipam.clone();
        let ip = blocking(move || ipam.allocate(capsule, &claims))
            .await
            .map_err(|f| self.ipam_error(capsule, f))?;
        let netns = self.netns_path(capsule);
        let ns = netns.clone();
        blocking(move || netns::create(&ns))
            .await
            .map_err(|f| netns_error(capsule, &netns, f))?;
        let mut state = State {
            netns: netns.clone(),
            options: self.options(capsule, hostname, ip, ports),
            attachment: None,
            firewall_driver: self.0.cfg.firewall_driver.clone(),
        };
        self.write_state(capsule, state_file, &state).await?;
        let out = self
            .run_netavark(capsule, Command::Setup, &netns, &state)
            .await?;
        let att = self.attachment(capsule, &netns, &out)?;
        state.attachment = Some(att.clone());
        self.write_state(capsule, state_file, &state).await?;
        Ok(att)
    }

    /// Disconnects `capsule`: netavark teardown with the options recorded in `state_file` (if
    /// any), deletes the namespace, releases the lease, removes `state_file`. Absent is fine.
    /// Best-effort: carries on past each error and returns them all.
    pub async fn teardown(&self, capsule: Uuid, state_file: &Path) -> Result<(), NetworkError> {
        let started = Instant::now();
        let mut errors = Vec::new();
        let state = self
            .read_state(capsule, state_file)
            .await
            .unwrap_or_else(|e| {
                errors.push(e);
                None
            });
        let netns = state
            .as_ref()
            .map_or_else(|| self.netns_path(capsule), |s| s.netns.clone());
        if let Some(state) = &state {
            let ns = netns.clone();
            let existed = blocking(move || netns::is_netns(&ns)).await;
            // netavark needs a namespace to open; without the original one (lost mount, host
            // restart) an empty one lets it still remove the firewall rules.
            let ns = netns.clone();
            let usable = existed
                || match blocking(move || netns::create(&ns)).await {
                    Ok(()) => true,
                    Err(f) => {
                        errors.push(netns_error(capsule, &netns, f));
                        false
                    }
                };
            // A teardown cut short (agent killed while netavark ran) can leave the namespace
            // without its interface. netavark deletes it by name: a placeholder lets it run to
            // its end (netavark 1.4 keeps the bridge and the network's rules after a failed
            // veth delete; 2.x removes them but still fails on that veth alone).
            if let (Some(att), true) = (&state.attachment, existed) {
                let (ns, name) = (netns.clone(), att.interface.clone());
                let gone = blocking(move || netns::interfaces(&ns))
                    .await
                    .is_ok_and(|names| !names.contains(&name));
                if gone {
                    info!(%capsule, "interface already gone: finishing an interrupted teardown");
                    let (ns, name) = (netns.clone(), att.interface.clone());
                    if let Err(f) = blocking(move || netns::add_placeholder(&ns, &name)).await {
                        warn!(%capsule, error = %netns_error(capsule, &netns, f), "no placeholder");
                    }
                }
            }
            if usable {
                match self
                    .run_netavark(capsule, Command::Teardown, &netns, state)
                    .await
                {
                    Ok(_) => {}
                    // Setup never finished, or the interface went with the namespace: netavark
                    // complains about what is not there, after removing what is.
                    Err(e) if !existed || state.attachment.is_none() => {
                        debug!(%capsule, error = %crate::chain::Chain(&e), "netavark teardown of a partial setup");
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        let ns = netns.clone();
        if let Err(f) = blocking(move || netns::delete(&ns)).await {
            errors.push(netns_error(capsule, &netns, f));
        }
        let ipam = self.0.ipam.clone();
        if let Err(f) = blocking(move || ipam.release(capsule)).await {
            errors.push(self.ipam_error(capsule, f));
        }
        match std::fs::remove_file(state_file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => errors.push(NetworkError::Io {
                capsule,
                action: "remove",
                path: state_file.to_owned(),
                source: e,
            }),
            _ => {}
        }
        if errors.is_empty() {
            info!(%capsule, ms = started.elapsed().as_millis() as u64, "network torn down");
            Ok(())
        } else {
            Err(NetworkError::Teardown { capsule, errors })
        }
    }

    /// The netavark options for `capsule` at `ip`.
    fn options(
        &self,
        capsule: Uuid,
        hostname: &str,
        ip: Ipv4Addr,
        ports: &[PortMapping],
    ) -> netavark::Options {
        let cfg = &self.0.cfg;
        let name = cfg.network_name.clone();
        let per = netavark::PerNetwork {
            interface_name: INTERFACE.into(),
            static_ips: vec![ip],
        };
        let info = netavark::NetworkInfo {
            name: name.clone(),
            id: self.0.network_id.clone(),
            driver: "bridge".into(),
            network_interface: cfg.bridge.clone(),
            subnets: vec![netavark::SubnetInfo {
                subnet: self.0.subnet.to_string(),
                gateway: self.0.gateway,
            }],
            ipv6_enabled: false,
            internal: false,
            dns_enabled: false,
            ipam_options: BTreeMap::from([("driver".to_owned(), "host-local".to_owned())]),
        };
        netavark::Options {
            container_id: container_id(capsule),
            container_name: format!("capsule-{capsule}"),
            container_hostname: (!hostname.is_empty()).then(|| hostname.to_owned()),
            networks: BTreeMap::from([(name.clone(), per)]),
            network_info: BTreeMap::from([(name, info)]),
            port_mappings: ports
                .iter()
                .map(|p| netavark::PortMap {
                    host_ip: host_ip(p).unwrap_or_default().to_owned(),
                    container_port: p.container_port,
                    host_port: p.host_port,
                    range: 1,
                    protocol: p.protocol.as_str().into(),
                })
                .collect(),
        }
    }

    /// The attachment described by netavark setup's output.
    fn attachment(
        &self,
        capsule: Uuid,
        netns: &Path,
        output: &str,
    ) -> Result<Attachment, NetworkError> {
        let bad = |reason: String| NetworkError::NetavarkOutput {
            capsule,
            reason,
            output: output.to_owned(),
        };
        let blocks: BTreeMap<String, netavark::StatusBlock> =
            serde_json::from_str(output).map_err(|e| bad(format!("not a status block: {e}")))?;
        let name = &self.0.cfg.network_name;
        let iface = blocks
            .get(name)
            .ok_or_else(|| bad(format!("no network {name:?}")))?
            .interfaces
            .get(INTERFACE)
            .ok_or_else(|| bad(format!("no interface {INTERFACE}")))?;
        let (ip, prefix, gateway) = iface
            .subnets
            .iter()
            .find_map(|a| {
                let (ip, prefix) = a.ipnet.split_once('/')?;
                let ip: Ipv4Addr = ip.parse().ok()?;
                Some((ip, prefix.parse::<u8>().ok()?, a.gateway.clone()))
            })
            .ok_or_else(|| bad("no IPv4 address".into()))?;
        Ok(Attachment {
            netns: netns.to_owned(),
            interface: INTERFACE.into(),
            ip: ip.to_string(),
            prefix,
            gateway: gateway.unwrap_or_else(|| self.0.gateway.to_string()),
            mac: iface.mac_address.clone(),
        })
    }

    /// Runs netavark under the lock of `config_dir`.
    /// Runs netavark `command` with the options and firewall driver of `state`.
    async fn run_netavark(
        &self,
        capsule: Uuid,
        command: Command,
        netns: &Path,
        state: &State,
    ) -> Result<String, NetworkError> {
        let cfg = &self.0.cfg;
        let _in_process = self.0.run_lock.lock().await;
        let lock_path = cfg.config_dir.join(NETAVARK_LOCK);
        let path = lock_path.clone();
        let _flock = blocking(move || lock_file(&path))
            .await
            .map_err(|(action, source)| NetworkError::Io {
                capsule,
                action,
                path: lock_path,
                source,
            })?;
        debug!(%capsule, command = command.as_str(), netns = %netns.display(), "running netavark");
        let firewall = state.firewall_driver.as_deref();
        let started = Instant::now();
        let result = netavark::run(
            &cfg.netavark,
            &cfg.config_dir,
            firewall,
            command,
            netns,
            &state.options,
        )
        .await;
        let ms = started.elapsed().as_millis() as u64;
        debug!(%capsule, command = command.as_str(), ms, "netavark finished");
        result.map_err(|f| match f {
            RunFailure::Spawn(source) => NetworkError::NetavarkSpawn {
                capsule,
                binary: cfg.netavark.clone(),
                command: command.as_str(),
                source,
            },
            RunFailure::Failed {
                code,
                message,
                stderr,
            } => NetworkError::Netavark {
                capsule,
                command: command.as_str(),
                netns: netns.to_owned(),
                code,
                message,
                stderr,
            },
        })
    }

    async fn read_state(
        &self,
        capsule: Uuid,
        state_file: &Path,
    ) -> Result<Option<State>, NetworkError> {
        let bytes = match std::fs::read(state_file) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(NetworkError::Io {
                    capsule,
                    action: "read",
                    path: state_file.to_owned(),
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| NetworkError::StateParse {
                capsule,
                path: state_file.to_owned(),
                source,
            })
    }

    async fn write_state(
        &self,
        capsule: Uuid,
        state_file: &Path,
        state: &State,
    ) -> Result<(), NetworkError> {
        let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        let path = state_file.to_owned();
        blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            ipam::write_atomic(&path, &bytes)
        })
        .await
        .map_err(|source| NetworkError::Io {
            capsule,
            action: "write",
            path: state_file.to_owned(),
            source,
        })
    }

    fn ipam_error(&self, capsule: Uuid, f: IpamFailure) -> NetworkError {
        match f {
            IpamFailure::Io {
                action,
                path,
                source,
            } => NetworkError::Io {
                capsule,
                action,
                path,
                source,
            },
            IpamFailure::Exhausted => NetworkError::SubnetExhausted {
                capsule,
                subnet: self.0.subnet.to_string(),
            },
            IpamFailure::PortClaimed { claim, holder } => NetworkError::PortClaimed {
                capsule,
                port: claim.port,
                protocol: claim.protocol,
                holder,
            },
        }
    }
}

/// netavark's container id for `capsule`: 64 hex characters (the uuid's, twice), so firewall
/// rule comments name the capsule.
fn container_id(capsule: Uuid) -> String {
    let s = capsule.simple().to_string();
    format!("{s}{s}")
}

fn netns_error(capsule: Uuid, netns: &Path, f: NetnsFailure) -> NetworkError {
    NetworkError::Netns {
        capsule,
        action: f.action,
        netns: netns.to_owned(),
        source: f.source,
    }
}

/// Takes the exclusive lock on `path` (creating it and its directory).
fn lock_file(path: &Path) -> Result<Flock<File>, (&'static str, io::Error)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ("create the directory of", e))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ("open", e))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| ("lock", errno.into()))
}

/// The mapping's host address; `None` (or empty) means all.
fn host_ip(p: &PortMapping) -> Option<&str> {
    p.host_ip.as_deref().filter(|s| !s.is_empty())
}

/// Binds `ip:port` for `protocol` and lets go at once.
fn try_bind(ip: IpAddr, port: u16, protocol: Protocol) -> io::Result<()> {
    let addr = SocketAddr::new(ip, port);
    match protocol {
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
