//! The validated, normalized capsule template: what the API stores and the compute agent runs.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::probe::Probe;
use super::security::{Capability, SecurityContext};

/// A validated capsule template (`{"kind": "capsule", "metadata": ..., "spec": ...}`).
///
/// Only [`crate::template::parse_template`] and [`crate::template::parse_create_body`] build
/// one from user input; the serde derives exist to store it in the database and send it over RPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapsuleTemplate {
    /// `metadata.name`, the capsule's name.
    pub name: Option<String>,
    /// `metadata.labels`; scalar values are coerced to strings as Zun's `DictOfStrings` does
    /// (`true` becomes `"True"`, `1` becomes `"1"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`, kept verbatim (an object); `None` when absent or null.
    #[serde(default)]
    pub annotations: Option<serde_json::Value>,
    /// `availabilityZone`; `None` when absent or null.
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// `spec.restartPolicy`, else the deprecated top-level `restartPolicy`, else `Always`.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// `spec.terminationGracePeriodSeconds` (0..=3600): how long a stopped container gets
    /// between its stop signal and SIGKILL; `None`: the host's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u64>,
    /// `spec.initContainers`, run one at a time, in order, before the application containers.
    #[serde(default)]
    pub init_containers: Vec<ContainerSpec>,
    /// `spec.containers`, the application containers (at least one).
    pub containers: Vec<ContainerSpec>,
    /// `spec.volumes`; every one is mounted by at least one container.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    /// `spec.securityGroups`, names or ids; `["default"]` when not given.
    #[serde(default = "default_security_groups")]
    pub security_groups: Vec<String>,
}

/// The security groups of a capsule whose template names none.
pub fn default_security_groups() -> Vec<String> {
    vec![String::from("default")]
}

impl CapsuleTemplate {
    /// CPUs the capsule needs, by Zun's rule: the sum of the application containers' requests,
    /// then the maximum of that and each init container's request; `0.0` when nothing asks.
    pub fn total_cpu(&self) -> f64 {
        // Not `sum()`: an empty float sum is -0.0, which some databases keep and show.
        let sum: f64 = self
            .containers
            .iter()
            .filter_map(|c| c.cpu)
            .fold(0.0, |a, b| a + b);
        self.init_containers
            .iter()
            .filter_map(|c| c.cpu)
            .fold(sum, f64::max)
    }

    /// Memory (MiB) the capsule needs, by the same rule as [`Self::total_cpu`].
    pub fn total_memory_mib(&self) -> u64 {
        let sum = self
            .containers
            .iter()
            .filter_map(|c| c.memory_mib)
            .fold(0u64, u64::saturating_add);
        self.init_containers
            .iter()
            .filter_map(|c| c.memory_mib)
            .fold(sum, u64::max)
    }

    /// Every published host port with its protocol, init containers first, in template order.
    /// Validation guarantees there are no duplicates.
    pub fn host_ports(&self) -> Vec<(u16, Protocol)> {
        self.all_containers()
            .flat_map(|c| c.ports.iter())
            .filter_map(|p| p.host_port.map(|h| (h, p.protocol)))
            .collect()
    }

    /// Init containers, then application containers.
    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.init_containers.iter().chain(self.containers.iter())
    }

    /// The volume declared under `name`, if any.
    pub fn volume(&self, name: &str) -> Option<&VolumeSpec> {
        self.volumes.iter().find(|v| v.name == name)
    }
}

/// What to do when a container of the capsule exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Restart whatever the exit status (`Always`).
    #[default]
    Always,
    /// Restart only after a non-zero exit status (`OnFailure`).
    OnFailure,
    /// Never restart (`Never`).
    Never,
}

impl RestartPolicy {
    /// The template spelling: `Always`, `OnFailure` or `Never`.
    pub fn as_template_str(&self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::OnFailure => "OnFailure",
            Self::Never => "Never",
        }
    }

    /// The name Zun stores in `restart_policy.Name`: `always`, `on-failure` or `no`.
    pub fn zun_name(&self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::OnFailure => "on-failure",
            Self::Never => "no",
        }
    }

    /// Parses the template spelling (exactly `Always`, `OnFailure` or `Never`, as Zun's schema).
    pub fn from_template_str(s: &str) -> Option<Self> {
        match s {
            "Always" => Some(Self::Always),
            "OnFailure" => Some(Self::OnFailure),
            "Never" => Some(Self::Never),
            _ => None,
        }
    }
}

/// One container of the capsule, init or application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The user's `name`, unique within the capsule (Zun discards it; we keep it).
    #[serde(default)]
    pub name: Option<String>,
    /// `image`, a valid image reference, as written.
    pub image: String,
    /// `command`; empty when not given.
    #[serde(default)]
    pub command: Vec<String>,
    /// `args`; empty when not given.
    #[serde(default)]
    pub args: Vec<String>,
    /// `workDir`, an absolute path.
    #[serde(default)]
    pub work_dir: Option<String>,
    /// `env`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `ports`.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// `resources.requests.cpu`, within the configured limits, rounded to 1e-9 CPU (Docker's
    /// `NanoCpus` resolution) so that it survives a JSON round trip exactly.
    #[serde(default)]
    pub cpu: Option<f64>,
    /// `resources.requests.memory`, in MiB, within the configured limits.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// `volumeMounts`; each names a volume of the capsule.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// `imagePullPolicy`; `None` when absent or null (Zun then uses `always`).
    #[serde(default)]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// `stdin` (Zun's `interactive`).
    #[serde(default)]
    pub stdin: bool,
    /// `tty`.
    #[serde(default)]
    pub tty: bool,
    /// `securityContext`; `None` when absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// `livenessProbe`: failing, the container is killed and its restart policy applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// `readinessProbe`: whether the container is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// `startupProbe`: holds the other probes off until it passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
}

impl ContainerSpec {
    /// A container running `image` with everything else unset.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            name: None,
            image: image.into(),
            command: Vec::new(),
            args: Vec::new(),
            work_dir: None,
            env: BTreeMap::new(),
            ports: Vec::new(),
            cpu: None,
            memory_mib: None,
            volume_mounts: Vec::new(),
            image_pull_policy: None,
            stdin: false,
            tty: false,
            security_context: None,
            liveness_probe: None,
            readiness_probe: None,
            startup_probe: None,
        }
    }

    /// Whether it asks for `CAP_NET_RAW` (`securityContext.capabilities.add: [NET_RAW]`).
    pub fn adds_net_raw(&self) -> bool {
        self.security_context
            .as_ref()
            .is_some_and(|s| s.adds(Capability::NetRaw))
    }

    /// The command as Zun shows it: `command` followed by `args` (Zun folds `args` into it).
    pub fn zun_command(&self) -> Vec<String> {
        self.command
            .iter()
            .chain(self.args.iter())
            .cloned()
            .collect()
    }

    /// Zun's `exposed_ports` keys: `"<containerPort>/<protocol>"`, e.g. `"80/tcp"`.
    pub fn exposed_ports(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("{}/{}", p.container_port, p.protocol.as_str()))
            .collect()
    }
}

/// One entry of a container's `ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// `name`, informational.
    #[serde(default)]
    pub name: Option<String>,
    /// `containerPort`, 1..65535.
    pub container_port: u16,
    /// `hostPort`, 1..65535, published on the host when set.
    #[serde(default)]
    pub host_port: Option<u16>,
    /// `protocol`, TCP unless given.
    #[serde(default)]
    pub protocol: Protocol,
}

/// Transport protocol of a port.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    /// Lower-case name, as in Zun's `exposed_ports` keys: `tcp` or `udp`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// When the compute host pulls a container's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImagePullPolicy {
    /// Pull every time the container is created.
    Always,
    /// Pull only when the image is not already on the host.
    IfNotPresent,
    /// Never pull; the image must be on the host.
    Never,
}

impl ImagePullPolicy {
    /// Zun's stored spelling: `always`, `ifnotpresent` or `never`.
    pub fn as_zun_str(&self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::IfNotPresent => "ifnotpresent",
            Self::Never => "never",
        }
    }

    /// Parses any capitalisation of `always`, `ifnotpresent` or `never`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Always, Self::IfNotPresent, Self::Never]
            .into_iter()
            .find(|p| p.as_zun_str().eq_ignore_ascii_case(s))
    }
}

/// One entry of a container's `volumeMounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// `name` of a volume in `spec.volumes`.
    pub name: String,
    /// `mountPath`, absolute and normalized (no trailing `/`, no empty or `.` components).
    pub mount_path: String,
    /// `readOnly`.
    #[serde(default)]
    pub read_only: bool,
}

/// One entry of `spec.volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// `name`, unique in the capsule, referenced by `volumeMounts`.
    pub name: String,
    /// Where the volume comes from (`cinder`).
    pub source: VolumeSource,
}

/// The `cinder` part of a volume: a new volume or an existing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VolumeSource {
    /// `cinder: {size, autoRemove}`: create a new volume.
    New {
        /// Size in GiB, at least 1.
        size_gib: u64,
        /// Delete the volume with the capsule.
        auto_remove: bool,
    },
    /// `cinder: {volumeID}`: attach an existing volume; it is never removed with the capsule.
    Existing {
        /// The volume's id.
        volume_id: uuid::Uuid,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(cpu: Option<f64>, memory: Option<u64>) -> ContainerSpec {
        ContainerSpec {
            cpu,
            memory_mib: memory,
            ..ContainerSpec::new("busybox")
        }
    }

    fn template(init: Vec<ContainerSpec>, app: Vec<ContainerSpec>) -> CapsuleTemplate {
        CapsuleTemplate {
            name: None,
            labels: BTreeMap::new(),
            annotations: None,
            availability_zone: None,
            restart_policy: RestartPolicy::Always,
            termination_grace_period_seconds: None,
            init_containers: init,
            containers: app,
            volumes: Vec::new(),
            security_groups: default_security_groups(),
        }
    }

    #[test]
    fn totals_sum_app_then_max_with_init() {
        let t = template(
            vec![container(Some(2.0), Some(1024)), container(Some(0.1), None)],
            vec![
                container(Some(0.5), Some(256)),
                container(Some(0.25), Some(256)),
            ],
        );
        assert_eq!(t.total_cpu(), 2.0);
        assert_eq!(t.total_memory_mib(), 1024);

        let t = template(
            vec![container(Some(0.1), Some(128))],
            vec![container(Some(0.5), Some(512)), container(None, None)],
        );
        assert_eq!(t.total_cpu(), 0.5);
        assert_eq!(t.total_memory_mib(), 512);
    }

    #[test]
    fn totals_default_to_zero() {
        let t = template(vec![], vec![container(None, None)]);
        assert_eq!(t.total_cpu(), 0.0);
        assert!(t.total_cpu().is_sign_positive(), "0.0, not -0.0");
        assert_eq!(t.total_memory_mib(), 0);
    }

    #[test]
    fn host_ports_init_first() {
        let mut init = ContainerSpec::new("busybox");
        init.ports.push(PortSpec {
            name: None,
            container_port: 53,
            host_port: Some(5353),
            protocol: Protocol::Udp,
        });
        let mut app = ContainerSpec::new("nginx");
        app.ports.push(PortSpec {
            name: None,
            container_port: 80,
            host_port: Some(8080),
            protocol: Protocol::Tcp,
        });
        app.ports.push(PortSpec {
            name: None,
            container_port: 81,
            host_port: None,
            protocol: Protocol::Tcp,
        });
        let t = template(vec![init], vec![app.clone()]);
        assert_eq!(
            t.host_ports(),
            vec![(5353, Protocol::Udp), (8080, Protocol::Tcp)]
        );
        assert_eq!(app.exposed_ports(), vec!["80/tcp", "81/tcp"]);
    }

    #[test]
    fn zun_command_concatenates() {
        let mut c = ContainerSpec::new("busybox");
        assert!(c.zun_command().is_empty());
        c.args = vec!["-c".into(), "echo hi".into()];
        assert_eq!(c.zun_command(), vec!["-c", "echo hi"]);
        c.command = vec!["sh".into()];
        assert_eq!(c.zun_command(), vec!["sh", "-c", "echo hi"]);
    }

    #[test]
    fn enum_spellings() {
        assert_eq!(RestartPolicy::Always.zun_name(), "always");
        assert_eq!(RestartPolicy::OnFailure.zun_name(), "on-failure");
        assert_eq!(RestartPolicy::Never.zun_name(), "no");
        for p in [
            RestartPolicy::Always,
            RestartPolicy::OnFailure,
            RestartPolicy::Never,
        ] {
            assert_eq!(
                RestartPolicy::from_template_str(p.as_template_str()),
                Some(p)
            );
        }
        assert_eq!(RestartPolicy::from_template_str("always"), None);
        assert_eq!(Protocol::Udp.as_str(), "udp");
        assert_eq!(
            ImagePullPolicy::parse("IFNOTPRESENT"),
            Some(ImagePullPolicy::IfNotPresent)
        );
        assert_eq!(
            ImagePullPolicy::parse("Never").map(|p| p.as_zun_str()),
            Some("never")
        );
        assert_eq!(ImagePullPolicy::parse("sometimes"), None);
    }

    #[test]
    fn serde_shape() {
        let v = VolumeSpec {
            name: "data".into(),
            source: VolumeSource::New {
                size_gib: 1,
                auto_remove: true,
            },
        };
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "data", "source": {"type": "new", "size_gib": 1, "auto_remove": true}})
        );
        let back: VolumeSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, v);
        assert_eq!(serde_json::to_value(Protocol::Udp).unwrap(), "UDP");
    }
}
