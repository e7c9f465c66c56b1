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
    /// `[metrics]`: the metrics and health listener.
    pub metrics: MetricsConfig,
    /// `[image]`: containerd and registries (pod driver).
    pub image: crate::image::ImageConfig,
    /// `[network]`: the host's capsule network (pod driver).
    pub network: crate::network::NetworkConfig,
    /// `[firewall]`: security groups in nftables (pod driver).
    pub firewall: crate::firewall::FirewallConfig,
    /// `[volume]`: where volumes are kept (pod driver).
    pub volume: crate::volume::VolumeConfig,
    /// `[limits]`: what one capsule may take of the host (pod driver).
    pub limits: LimitsConfig,
    /// `[logs]`: how much of its containers' output the host keeps (pod driver).
    pub logs: LogsConfig,
}

/// `[limits]`: the host-side bounds of every capsule, whatever its template asks.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// `pids.max` of each capsule's cgroup (`/capsule/<uuid>`): its processes and threads
    /// together (podman's default `pids_limit`, the kubelet's `podPidsLimit`).
    pub pids_per_capsule: u64,
    /// MiB of each capsule's writable layer: the containers' overlay upper and work
    /// directories live on an ext4 file system of this size, made for the capsule (a sparse
    /// file on a loop device); a container that writes more gets `ENOSPC`.
    pub writable_layer_mib: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            pids_per_capsule: 2048,
            writable_layer_mib: 1024,
        }
    }
}

/// The smallest `[logs] max_bytes`: a log record is at most 16 KiB of text and its prefix.
pub const MIN_LOG_BYTES: u64 = 64 << 10;

/// `[logs]`: each container's log file is rotated as docker's json-file `max-size` /
/// `max-file` and the kubelet's `containerLogMaxSize` / `containerLogMaxFiles` do.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// A log file is rotated before it grows past this many bytes.
    pub max_bytes: u64,
    /// Files kept per container, the one being written included (at least 2).
    pub max_files: u32,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            max_bytes: 10 << 20,
            max_files: 3,
        }
    }
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

/// `[metrics]`: the agent's Prometheus metrics (`GET /metrics`) and health (`GET /healthz`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where it listens; empty: no listener. It asks for no credentials: keep it on loopback
    /// or an operators' network.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9520".into(),
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

/// `[resources]`: overrides of what the host reports, and what it keeps for itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourcesConfig {
    /// CPUs offered.
    pub cpus: Option<f64>,
    /// Memory offered to capsules, MiB; default: the host's less `reserved_memory_mib`.
    pub memory_mib: Option<u64>,
    /// Disk offered, GiB.
    pub disk_gib: Option<u64>,
    /// MiB of the host's memory that capsules may never take: kept for the agent, the shims,
    /// containerd and the rest of the host. The `/capsule` cgroup (every capsule's parent) is
    /// limited to the host's memory less this (pod driver), and unless `memory_mib` names the
    /// offer, the memory reported to the scheduler is the host's less this.
    pub reserved_memory_mib: u64,
}

impl Default for ResourcesConfig {
    fn default() -> Self {
        Self {
            cpus: None,
            memory_mib: None,
            disk_gib: None,
            reserved_memory_mib: 512,
        }
    }
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
    /// A value out of its range.
    #[error("invalid config file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which key, and why.
        reason: String,
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
        let config: Self = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: p.to_owned(),
            source,
        })?;
        config.check().map_err(|reason| ConfigError::Invalid {
            path: p.to_owned(),
            reason,
        })?;
        Ok(config)
    }

    /// The ranges of the values whose type allows more than makes sense.
    pub fn check(&self) -> Result<(), String> {
        let (limits, logs) = (&self.limits, &self.logs);
        if limits.pids_per_capsule == 0 {
            return Err("[limits] pids_per_capsule must be at least 1".into());
        }
        let min_layer = crate::volume::MIN_VOLUME_BYTES >> 20;
        if limits.writable_layer_mib != 0 && limits.writable_layer_mib < min_layer {
            return Err(format!(
                "[limits] writable_layer_mib must be 0 (no bound) or at least {min_layer}"
            ));
        }
        if logs.max_bytes < MIN_LOG_BYTES {
            return Err(format!("[logs] max_bytes must be at least {MIN_LOG_BYTES}"));
        }
        if logs.max_files < 2 {
            return Err("[logs] max_files must be at least 2".into());
        }
        Ok(())
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

    #[test]
    fn limits_logs_and_the_reserve_have_defaults_and_ranges() {
        let c = Config::default();
        assert_eq!(c.limits.pids_per_capsule, 2048);
        assert_eq!(c.limits.writable_layer_mib, 1024);
        assert_eq!((c.logs.max_bytes, c.logs.max_files), (10 << 20, 3));
        assert_eq!(c.resources.reserved_memory_mib, 512);
        c.check().unwrap();
        let c: Config = toml::from_str(
            "[limits]\npids_per_capsule = 64\nwritable_layer_mib = 0\n\
             [logs]\nmax_bytes = 65536\nmax_files = 2\n[resources]\nreserved_memory_mib = 0\n",
        )
        .unwrap();
        c.check().unwrap();
        assert_eq!(c.limits.pids_per_capsule, 64);
        for bad in [
            "[limits]\npids_per_capsule = 0\n",
            "[limits]\nwritable_layer_mib = 4\n",
            "[logs]\nmax_bytes = 100\n",
            "[logs]\nmax_files = 1\n",
        ] {
            let c: Config = toml::from_str(bad).unwrap();
            assert!(c.check().is_err(), "{bad}");
        }
        assert!(toml::from_str::<Config>("[limits]\npids = 1\n").is_err());
        assert!(toml::from_str::<Config>("[logs]\nmax_size = 1\n").is_err());
    }
}
