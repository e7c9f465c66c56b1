//! zun-compute configuration: a TOML file whose every key has a default that works on one host.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[compute]`.
    pub compute: ComputeConfig,
    /// `[rpc]`.
    pub rpc: RpcConfig,
    /// `[runtime]`.
    pub runtime: RuntimeConfig,
    /// `[resources]`: what the host offers, when not what it has.
    pub resources: ResourcesConfig,
    /// `[pod]`: the pod driver's shim and timeouts.
    pub pod: PodConfig,
    /// `[stream]`: the stream listener.
    pub stream: StreamConfig,
    /// `[image]`: containerd and registries (pod driver).
    pub image: crate::image::ImageConfig,
    /// `[network]`: the host's capsule network (pod driver).
    pub network: crate::network::NetworkConfig,
    /// `[firewall]`: security groups in nftables (pod driver).
    pub firewall: crate::firewall::FirewallConfig,
    /// `[volume]`: where volumes are kept (pod driver).
    pub volume: crate::volume::VolumeConfig,
}

/// `[pod]`: settings of the pod driver.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodConfig {
    /// The shim binary; default: `capsule-shim` next to `zun-compute`.
    pub shim: Option<PathBuf>,
    /// Seconds a container gets between SIGTERM and SIGKILL on delete.
    pub stop_grace_seconds: u64,
    /// Seconds a create may take until every container runs (image pulls included).
    pub start_timeout_seconds: u64,
    /// Seconds a non-interactive exec may run before it is killed.
    pub exec_timeout_seconds: u64,
    /// Bytes of output a non-interactive exec answers; the rest is dropped (with a note).
    pub exec_output_max_bytes: usize,
    /// The largest archive copied into or out of a container, bytes.
    pub archive_max_bytes: u64,
}

impl Default for PodConfig {
    fn default() -> Self {
        Self {
            shim: None,
            stop_grace_seconds: 10,
            start_timeout_seconds: 300,
            exec_timeout_seconds: 60,
            exec_output_max_bytes: 1 << 20,
            archive_max_bytes: 16 << 20,
        }
    }
}

/// `[stream]`: the host's stream listener (interactive exec).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Where it listens (`127.0.0.1:0`: an ephemeral port on loopback); empty: no listener.
    pub listen: String,
    /// The host part heartbeats report (`None`: the listen address's).
    pub advertise: Option<String>,
    /// Seconds a grant stays good unused.
    pub grant_seconds: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            advertise: None,
            grant_seconds: 60,
        }
    }
}

/// `[compute]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeConfig {
    /// This host's name; its queue is `zun-compute.<host>`. Default: the system host name.
    pub host: Option<String>,
    /// Where the agent keeps what it must remember across restarts.
    pub state_dir: PathBuf,
    /// Availability zone of the host.
    pub availability_zone: String,
    /// Seconds between heartbeats.
    pub heartbeat_seconds: u64,
    /// Seconds between reconciliations of reported and actual state.
    pub reconcile_seconds: u64,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self {
            host: None,
            state_dir: PathBuf::from("/var/lib/zun-compute"),
            availability_zone: "nova".into(),
            heartbeat_seconds: 5,
            reconcile_seconds: 10,
        }
    }
}

/// `[rpc]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// Most requests handled at once.
    pub prefetch: u16,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            url: "amqp://127.0.0.1:5672/zun".into(),
            prefetch: 16,
        }
    }
}

/// Which runtime driver runs capsules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Records capsules and reports them running without running anything (tests, and hosts
    /// without a container runtime yet).
    #[default]
    Fake,
    /// Real pods: containerd images, netavark networking, a libcontainer shim per capsule.
    Pod,
}

/// `[runtime]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The driver.
    pub driver: DriverKind,
    /// Fake driver: how long a create takes, milliseconds (to exercise crashes mid-create).
    pub fake_create_ms: u64,
}

/// `[resources]`: overrides of what the host reports.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourcesConfig {
    /// CPUs offered.
    pub cpus: Option<f64>,
    /// Memory offered, MiB.
    pub memory_mib: Option<u64>,
    /// Disk offered, GiB.
    pub disk_gib: Option<u64>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML of this shape.
    #[error("invalid config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
}

impl Config {
    /// Loads `path`, or the defaults without one.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(p) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: p.to_owned(),
            source,
        })
    }

    /// The host name: configured, else the system's.
    pub fn host(&self) -> String {
        self.compute.host.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: Config =
            toml::from_str("[compute]\nhost = \"c1\"\n[resources]\ncpus = 4.0\n").unwrap();
        assert_eq!(c.host(), "c1");
        assert_eq!(c.resources.cpus, Some(4.0));
        assert_eq!(c.runtime.driver, DriverKind::Fake);
        assert!(toml::from_str::<Config>("[compute]\nhots = 1\n").is_err());
    }
}
