//! zun-api configuration: a TOML file whose every key has a default that works on one host.
//! The bottom of the crate: it imports no other module of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod oidc;

pub use oidc::OidcConfig;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[api]`: the HTTP listener and request limits.
    pub api: ApiConfig,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[keystone]`: token validation.
    pub keystone: KeystoneConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[limits]`: what a template may ask for.
    pub limits: LimitsConfig,
    /// `[rpc]`: the message broker to compute hosts.
    pub rpc: RpcConfig,
    /// `[conductor]`: handling of compute hosts' reports.
    pub conductor: ConductorConfig,
    /// `[scheduler]`: choosing a compute host.
    pub scheduler: SchedulerConfig,
    /// `[network_api]`: the Neutron-compatible security-group API.
    pub network_api: NetworkApiConfig,
    /// `[volume_api]`: the Cinder-compatible volume API.
    pub volume_api: VolumeApiConfig,
    /// `[volume]`: limits of volumes.
    pub volume: VolumeConfig,
    /// `[oidc]`: OpenID Connect bearer tokens (JWT access tokens) accepted beside Keystone's.
    pub oidc: OidcConfig,
    /// `[metrics]`: the Prometheus metrics.
    pub metrics: MetricsConfig,
}

/// `[metrics]`: where the Prometheus metrics are served (`GET /metrics`, OpenMetrics text).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address to listen on; none (the default): not served. The listener asks for no
    /// credentials: bind it to loopback or an operators' network.
    pub listen: Option<SocketAddr>,
}

/// `[volume_api]`: the subset of Cinder's v3 API that volumes need, on its own listener
/// (register it in Keystone as service type `block-storage` on a cloud without Cinder).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeApiConfig {
    /// Address to listen on; none (the default): not served.
    pub listen: Option<SocketAddr>,
    /// Base URL used in links; default: built from the request's `Host` header.
    pub public_url: Option<String>,
}

/// `[volume]`: how large volumes may be, alone and per project.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeConfig {
    /// Largest size of one volume, GiB.
    pub max_size_gib: i64,
    /// Gigabytes the volumes of one project may add up to (Cinder's `gigabytes` quota);
    /// `-1`: unlimited.
    pub project_gigabytes: i64,
    /// Volumes one project may have (Cinder's `volumes` quota); `-1`: unlimited.
    pub project_volumes: i64,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        Self {
            max_size_gib: 100,
            project_gigabytes: 1000,
            project_volumes: 10,
        }
    }
}

impl VolumeConfig {
    /// The limits a new volume must fit.
    pub fn limits(&self) -> db::volumes::VolumeLimits {
        db::volumes::VolumeLimits {
            max_size_gib: self.max_size_gib,
            project_gigabytes: self.project_gigabytes,
            project_volumes: self.project_volumes,
        }
    }
}

/// `[network_api]`: the subset of Neutron's API that security groups need, on its own
/// listener (register it in Keystone as service type `network` on a cloud without Neutron).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkApiConfig {
    /// Address to listen on; none (the default): not served.
    pub listen: Option<SocketAddr>,
    /// Base URL used in links; default: built from the request's `Host` header.
    pub public_url: Option<String>,
}

/// `[rpc]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// `amqp://user:password@host:port/vhost`. Without it there are no compute hosts: every
    /// capsule ends in `Error` ("There are not enough hosts available.").
    pub url: Option<String>,
    /// Most reports handled at once by this API process.
    pub prefetch: u16,
    /// How long a request waits for the broker to take a message before leaving it to the
    /// background publisher, seconds.
    pub publish_timeout_seconds: u64,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            url: None,
            prefetch: 32,
            publish_timeout_seconds: 2,
        }
    }
}

/// `[conductor]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConductorConfig {
    /// Consume compute hosts' reports in this process (any number of API processes may).
    pub enabled: bool,
    /// A compute service silent for this long is down (Zun's `service_down_time`).
    pub service_down_seconds: u64,
    /// How often to look for capsules stuck on hosts that are down, seconds.
    pub check_seconds: u64,
}

impl Default for ConductorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            service_down_seconds: 20,
            check_seconds: 5,
        }
    }
}

/// `[scheduler]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// CPUs of a host may be promised this many times over (Nova's default 16).
    pub cpu_allocation_ratio: f64,
    /// Memory of a host may be promised this many times over.
    pub ram_allocation_ratio: f64,
    /// Zone of hosts that report none, and of capsules that ask for none (Zun's `nova`).
    pub default_availability_zone: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.0,
            default_availability_zone: "nova".into(),
        }
    }
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Base URL used in links and `Location` (may carry a path prefix). Default: built from
    /// the request's `Host` header.
    pub public_url: Option<String>,
    /// Largest page of a list, and its default size (Zun's `[api] max_limit`).
    pub max_limit: u64,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Memory for rendered list pages reused while their project is unchanged, MiB (0: off).
    pub list_cache_mib: u64,
    /// Largest archive `put_archive` takes and `get_archive` gives, in bytes before base64
    /// (413 beyond); the body limit of `put_archive` is raised to fit one.
    pub archive_max_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9517)),
            public_url: None,
            max_limit: 1000,
            max_body_bytes: 1024 * 1024,
            list_cache_mib: 256,
            archive_max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// `[database]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://<path>` or `postgres://user:password@host/db`.
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite:///var/lib/zun/zun.db".into(),
        }
    }
}

/// How requests are authenticated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthStrategy {
    /// Keystone tokens in `X-Auth-Token` (the default).
    #[default]
    Keystone,
    /// No authentication: identity from `X-User-Id`, `X-Project-Id` and `X-Roles`. For tests.
    Noauth,
}

/// `[auth]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `keystone` or `noauth`.
    pub strategy: AuthStrategy,
}

/// `[keystone]`: the service user that validates tokens, as keystonemiddleware's
/// `[keystone_authtoken]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeystoneConfig {
    /// Identity v3 endpoint used to validate tokens.
    pub auth_url: String,
    /// Public identity endpoint advertised in `WWW-Authenticate`.
    pub www_authenticate_uri: String,
    /// Service user.
    pub username: String,
    /// Its password.
    pub password: String,
    /// Its domain.
    pub user_domain_name: String,
    /// Its project.
    pub project_name: String,
    /// The project's domain.
    pub project_domain_name: String,
    /// Longest time a validated token is trusted without asking Keystone again, in seconds
    /// (never beyond the token's own expiry). Bounds how long a revoked token keeps working.
    pub token_cache_seconds: u64,
    /// How long a token Keystone refused is refused without asking again, in seconds.
    pub negative_cache_seconds: u64,
    /// Most tokens kept in the cache.
    pub token_cache_size: u64,
    /// Timeout of each call to Keystone, in seconds.
    pub timeout_seconds: u64,
}

impl Default for KeystoneConfig {
    fn default() -> Self {
        Self {
            auth_url: "http://127.0.0.1:5000/v3".into(),
            www_authenticate_uri: "http://127.0.0.1:5000".into(),
            username: "zun".into(),
            password: String::new(),
            user_domain_name: "Default".into(),
            project_name: "service".into(),
            project_domain_name: "Default".into(),
            token_cache_seconds: 300,
            negative_cache_seconds: 10,
            token_cache_size: 10_000,
            timeout_seconds: 10,
        }
    }
}

/// `[policy]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// A YAML or JSON policy file overriding the defaults (oslo.policy format).
    pub file: Option<PathBuf>,
}

/// `[limits]`: Zun's `[DEFAULT] minimum_cpus` and friends, plus our own bounds.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Smallest CPU request of a container.
    pub minimum_cpus: f64,
    /// Largest CPU request of a container.
    pub maximum_cpus: f64,
    /// Smallest memory request of a container, MiB.
    pub minimum_memory: u64,
    /// Largest memory request of a container, MiB.
    pub maximum_memory: u64,
    /// Largest new volume, GiB.
    pub maximum_volume_size: u64,
    /// CPUs given to a container whose template asks for none (Zun's `default_cpu`): the
    /// scheduler claims them, the host enforces them (CFS quota and shares), the view shows
    /// them.
    pub default_cpu: f64,
    /// Memory (MiB) given to a container whose template asks for none (Zun's
    /// `default_memory`): claimed, enforced as its memory limit, shown.
    pub default_memory: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = capsule_types::template::Limits::default();
        Self {
            minimum_cpus: d.min_cpu,
            maximum_cpus: d.max_cpu,
            minimum_memory: d.min_memory_mib,
            maximum_memory: d.max_memory_mib,
            maximum_volume_size: d.max_volume_size_gib,
            default_cpu: 1.0,
            default_memory: 512,
        }
    }
}

impl LimitsConfig {
    /// The template limits these settings give.
    pub fn template_limits(&self) -> capsule_types::template::Limits {
        capsule_types::template::Limits {
            min_cpu: self.minimum_cpus,
            max_cpu: self.maximum_cpus,
            min_memory_mib: self.minimum_memory,
            max_memory_mib: self.maximum_memory,
            max_volume_size_gib: self.maximum_volume_size,
            ..Default::default()
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of this shape.
    #[error("invalid config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads `path`; a missing `path` argument gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let cfg = match path {
            None => Self::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                Self::parse(&text).map_err(|e| match e {
                    ConfigError::Parse { source, .. } => ConfigError::Parse {
                        path: p.to_owned(),
                        source,
                    },
                    other => other,
                })?
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            source,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.api.max_limit == 0 {
            return Err(ConfigError::Invalid(
                "[api] max_limit must be positive".into(),
            ));
        }
        if self.auth.strategy == AuthStrategy::Keystone && self.keystone.password.is_empty() {
            return Err(ConfigError::Invalid(
                "[keystone] password is required with [auth] strategy = \"keystone\"".into(),
            ));
        }
        self.oidc.validate().map_err(ConfigError::Invalid)?;
        if self.scheduler.cpu_allocation_ratio <= 0.0 || self.scheduler.ram_allocation_ratio <= 0.0
        {
            return Err(ConfigError::Invalid(
                "[scheduler] allocation ratios must be positive".into(),
            ));
        }
        if self.limits.minimum_cpus > self.limits.maximum_cpus
            || self.limits.minimum_memory > self.limits.maximum_memory
        {
            return Err(ConfigError::Invalid(
                "[limits] minimums must not exceed maximums".into(),
            ));
        }
        let l = &self.limits;
        if !(l.minimum_cpus..=l.maximum_cpus).contains(&l.default_cpu)
            || !(l.minimum_memory..=l.maximum_memory).contains(&l.default_memory)
        {
            return Err(ConfigError::Invalid(
                "[limits] default_cpu and default_memory must lie between the minimum and the maximum"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.api.listen.port(), 9517);
        assert_eq!(c.api.max_limit, 1000);
        assert_eq!(c.auth.strategy, AuthStrategy::Keystone);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::parse("[api]\nlisten = \"127.0.0.1:1\"\nlistn = 3\n").unwrap_err();
        assert!(err.to_string().contains("invalid config"), "{err}");
    }

    #[test]
    fn oidc_issuers_are_checked() {
        let c = Config::parse(
            "[auth]\nstrategy = \"noauth\"\n[[oidc.issuers]]\nissuer = \"http://op\"\naudiences = []\n",
        )
        .unwrap();
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("needs audiences"), "{err}");
        assert!(!Config::parse("").unwrap().oidc.enabled());
    }

    #[test]
    fn keystone_needs_a_password() {
        let c = Config::parse("[auth]\nstrategy = \"keystone\"\n").unwrap();
        assert!(c.validate().is_err());
        let c = Config::parse("[auth]\nstrategy = \"noauth\"\n").unwrap();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn defaults_for_containers_without_requests_lie_within_the_limits() {
        let c = Config::parse("[auth]\nstrategy = \"noauth\"\n").unwrap();
        assert_eq!((c.limits.default_cpu, c.limits.default_memory), (1.0, 512));
        assert!(c.validate().is_ok());
        for bad in [
            "[limits]\ndefault_cpu = 0.0\n",
            "[limits]\ndefault_cpu = 100.0\n",
            "[limits]\ndefault_memory = 1\n",
            "[limits]\nmaximum_memory = 256\n",
        ] {
            let c = Config::parse(&format!("[auth]\nstrategy = \"noauth\"\n{bad}")).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
