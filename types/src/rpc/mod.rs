//! The compute RPC contract: what the API sends to a compute host and what compute hosts report
//! back, versioned and typed. Transport-free; the `rpc` crate carries these over AMQP.
//!
//! Zun's shape is kept (a durable topic exchange `zun`, one queue per compute host
//! `zun-compute.<host>`, casts for create and delete), but no credentials, tokens or token
//! bodies travel in messages: an agent needs to know *what* to run, never *who* asked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::template::CapsuleTemplate;
use crate::CapsuleStatus;

mod container;

pub use container::{
    ArchiveStat, ContainerAction, ContainerCall, ContainerEvent, ContainerEventKind,
    ContainerReply, ContainerStats, StreamGrant,
};

/// Version of the message format; a receiver refuses envelopes of a newer major version.
pub const RPC_VERSION: u32 = 1;
/// The topic exchange every message goes through (Zun's control exchange).
pub const EXCHANGE: &str = "zun";
/// Topic prefix of compute hosts' queues.
pub const COMPUTE_TOPIC: &str = "zun-compute";
/// Queue (and routing key) of reports to the conductor.
pub const CONDUCTOR_QUEUE: &str = "zun-conductor";
/// The binary name compute services register as.
pub const COMPUTE_BINARY: &str = "zun-compute";

/// The queue and routing key of compute host `host`: `zun-compute.<host>`.
pub fn compute_queue(host: &str) -> String {
    format!("{COMPUTE_TOPIC}.{host}")
}

/// What every message is wrapped in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// [`RPC_VERSION`] of the sender.
    pub version: u32,
    /// Unique id of this message (a redelivery keeps it).
    pub id: Uuid,
    /// The API request that caused it, for tracing across services.
    #[serde(default)]
    pub request_id: Option<String>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// The message.
    pub body: T,
}

impl<T> Envelope<T> {
    /// Wraps `body` with a fresh id.
    pub fn new(body: T, request_id: Option<String>) -> Self {
        Self {
            version: RPC_VERSION,
            id: Uuid::new_v4(),
            request_id,
            sent_at: Utc::now(),
            body,
        }
    }
}

/// One container of a capsule as the compute host is told to run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerRef {
    /// The container's id (as the API shows it).
    pub uuid: Uuid,
    /// Its name (from the template, or generated).
    pub name: String,
    /// An init container?
    pub is_init: bool,
    /// Index into the template's `init_containers` or `containers`.
    pub position: usize,
}

/// A capsule to build and start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapsuleSpec {
    /// The capsule's id.
    pub uuid: Uuid,
    /// Its name.
    pub name: Option<String>,
    /// Owning project (for labels and accounting on the host; not a credential).
    pub project_id: String,
    /// The validated template.
    pub template: CapsuleTemplate,
    /// Ids and names of its containers, init containers first.
    pub containers: Vec<ContainerRef>,
    /// The volumes of `template.volumes`, each with the id of the volume it is.
    #[serde(default)]
    pub volumes: Vec<VolumeRef>,
}

/// One volume of a capsule, as its host is told to attach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRef {
    /// Its name in the template (what `volumeMounts` refer to).
    pub name: String,
    /// The volume's id.
    pub id: Uuid,
    /// Size, GiB.
    pub size_gib: u64,
    /// Made for this capsule (`cinder: {size}`): the host makes it if it does not have it yet.
    pub create: bool,
    /// Deleted with the capsule.
    pub auto_remove: bool,
}

/// A request to a compute host, on queue `zun-compute.<host>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ComputeRequest {
    /// Build and start a capsule. Legal once the API has scheduled the capsule to this host
    /// (claimed its resources and ports there). Idempotent: a capsule the host already has is
    /// not built again, its state is reported again; a capsule the host has deleted is not
    /// brought back.
    CreateCapsule {
        /// What to run.
        capsule: Box<CapsuleSpec>,
    },
    /// Tear a capsule down and report it deleted. Legal at any time, including for a capsule
    /// the host never heard of (then only the report is sent); idempotent.
    DeleteCapsule {
        /// The capsule.
        capsule: Uuid,
    },
    /// Compare these capsules (or all the host has, when empty) with the runtime, finish any
    /// create or delete a restart interrupted, and report what changed or is still owed; a
    /// capsule whose last report stands is not reported again. Legal at any time, idempotent.
    /// The agent runs it itself when its runtime reports a change and on its reconcile timer;
    /// no other service sends it today.
    SyncCapsules {
        /// Capsules to report.
        capsules: Vec<Uuid>,
    },
    /// Enforce these security groups from now on: the host's whole firewall, replacing the
    /// last one unless that one has a newer epoch. Legal at any time; idempotent.
    SetFirewall {
        /// The firewall.
        firewall: Box<crate::secgroup::HostFirewall>,
    },
    /// Make volume `volume` of `size_gib` on this host and report it with a
    /// [`ConductorEvent::VolumeState`]. Legal once the API has placed the volume here;
    /// idempotent (a volume the host has is reported again, its data untouched).
    CreateVolume {
        /// The volume.
        volume: Uuid,
        /// Its size, GiB.
        size_gib: u64,
    },
    /// Remove volume `volume` and its data, then report it deleted. Legal for a volume no
    /// capsule uses; idempotent (a volume the host does not have is reported deleted).
    DeleteVolume {
        /// The volume.
        volume: Uuid,
    },
    /// Do `action` to container `container` of capsule `capsule` (every application container
    /// of it when `None`), then report the containers' new state and, for each container, a
    /// [`ConductorEvent::ContainerEvent`] carrying the envelope's request id (the action's id in
    /// the API's history), with the error if it failed. A cast (through the API's outbox).
    /// Legal for a capsule placed on this host; idempotent: stopping a stopped container,
    /// starting a running one, pausing a paused one change nothing and report success.
    ContainerAction {
        /// The capsule.
        capsule: Uuid,
        /// The container (`None`: every application container of the capsule).
        container: Option<Uuid>,
        /// What to do.
        action: ContainerAction,
    },
    /// Ask container `container` of capsule `capsule` something, or run something in it:
    /// exec, top, stats, archives. Legal only as a call (with a reply queue), for a capsule
    /// placed on this host; answered with a [`ContainerReply`]. Idempotent except `Exec` (which
    /// runs the command once per delivery: a redelivered call has lost its caller, who gets a
    /// timeout).
    ContainerCall {
        /// The capsule.
        capsule: Uuid,
        /// The container.
        container: Uuid,
        /// What to ask.
        call: ContainerCall,
    },
    /// Read a container's logs. Legal only as a call (with a reply queue), for a capsule placed
    /// on this host; answered with a [`LogsReply`]. Reads only.
    ContainerLogs {
        /// The capsule.
        capsule: Uuid,
        /// The container's name in the capsule.
        container: String,
        /// Which lines.
        query: LogQuery,
    },
}

/// Which log lines a caller wants (Zun's `GET /v1/containers/{id}/logs` query).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// Lines the container wrote to standard output.
    pub stdout: bool,
    /// Lines the container wrote to standard error.
    pub stderr: bool,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    /// Only the last this many lines (`None`: all).
    pub tail: Option<usize>,
    /// Only lines written at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl Default for LogQuery {
    fn default() -> Self {
        Self {
            stdout: true,
            stderr: true,
            timestamps: false,
            tail: None,
            since: None,
        }
    }
}

/// The answer to [`ComputeRequest::ContainerLogs`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LogsReply {
    /// The lines, joined, each ending in a newline.
    Logs {
        /// The text.
        text: String,
    },
    /// The host has no such capsule or container.
    NotFound {
        /// Why, for users.
        message: String,
    },
    /// The host cannot read logs now (or its runtime keeps none).
    Unavailable {
        /// Why, for users.
        message: String,
    },
}

impl ComputeRequest {
    /// The capsule a request is about, if one.
    pub fn capsule(&self) -> Option<Uuid> {
        match self {
            ComputeRequest::CreateCapsule { capsule } => Some(capsule.uuid),
            ComputeRequest::DeleteCapsule { capsule } => Some(*capsule),
            ComputeRequest::SyncCapsules { .. }
            | ComputeRequest::SetFirewall { .. }
            | ComputeRequest::CreateVolume { .. }
            | ComputeRequest::DeleteVolume { .. } => None,
            ComputeRequest::ContainerLogs { capsule, .. }
            | ComputeRequest::ContainerAction { capsule, .. }
            | ComputeRequest::ContainerCall { capsule, .. } => Some(*capsule),
        }
    }

    /// The method name, for logs.
    pub fn method(&self) -> &'static str {
        match self {
            ComputeRequest::CreateCapsule { .. } => "create_capsule",
            ComputeRequest::DeleteCapsule { .. } => "delete_capsule",
            ComputeRequest::SyncCapsules { .. } => "sync_capsules",
            ComputeRequest::SetFirewall { .. } => "set_firewall",
            ComputeRequest::CreateVolume { .. } => "create_volume",
            ComputeRequest::DeleteVolume { .. } => "delete_volume",
            ComputeRequest::ContainerLogs { .. } => "container_logs",
            ComputeRequest::ContainerAction { .. } => "container_action",
            ComputeRequest::ContainerCall { .. } => "container_call",
        }
    }

    /// Whether the request is a call, answered with a reply (the others are casts).
    pub fn is_call(&self) -> bool {
        matches!(
            self,
            ComputeRequest::ContainerLogs { .. } | ComputeRequest::ContainerCall { .. }
        )
    }
}

/// The state of one container, as its host sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    /// The container.
    pub uuid: Uuid,
    /// Its status.
    pub status: CapsuleStatus,
    /// Why, for users.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// Exit code of its last exit.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Restarts done by the restart policy.
    #[serde(default)]
    pub restart_count: u32,
    /// The runtime's id for it.
    #[serde(default)]
    pub container_id: Option<String>,
    /// Whether it is ready (running, its startup and readiness probes passed); `None` from a
    /// host that does not tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

/// The state of one capsule on a host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapsuleState {
    /// The capsule.
    pub capsule: Uuid,
    /// Its status.
    pub status: CapsuleStatus,
    /// Why, for users.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// Its containers.
    #[serde(default)]
    pub containers: Vec<ContainerState>,
    /// Addresses in Zun's shape (`{network: [{addr, version, ...}]}`).
    #[serde(default)]
    pub addresses: serde_json::Value,
    /// The host undid the capsule's failed create and holds none of its volumes (it removed
    /// the ones made to be removed with it): the API gives them back at once.
    #[serde(default)]
    pub volumes_released: bool,
}

/// Resources of a compute host, as it reports them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeResources {
    /// CPUs.
    pub cpus: f64,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Disk for volumes and images, GiB.
    pub disk_gib: u64,
    /// CPU architecture (`x86_64`).
    pub architecture: String,
    /// OS name.
    pub os: String,
    /// Kernel version.
    pub kernel_version: String,
    /// Host labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A report from a compute host, on queue `zun-conductor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ConductorEvent {
    /// A capsule's state, after every change and when asked. Legal at any time: a report
    /// about a capsule the API no longer has is answered with a delete for the host.
    CapsuleState {
        /// The reporting host.
        host: String,
        /// Orders reports of one host: a report with a smaller `seq` than one already applied
        /// for the capsule is stale and ignored.
        seq: u64,
        /// The state.
        state: CapsuleState,
    },
    /// A capsule is gone from the host (deleted, or never there). Legal at any time; the API
    /// then removes its rows and releases what it held on the host.
    CapsuleDeleted {
        /// The reporting host.
        host: String,
        /// As in `CapsuleState`.
        seq: u64,
        /// The capsule.
        capsule: Uuid,
    },
    /// Liveness and resources, every few seconds; registers the service and compute node on
    /// first sight.
    Heartbeat(Heartbeat),
    /// Something happened to a container: an action of the API was done (or failed), or the
    /// runtime did something by itself (the container exited, was OOM-killed, was restarted by
    /// its policy). The API keeps it in the container's history (Zun's container actions and
    /// events). Legal at any time; a repeated report (same host, same `seq`) is kept once.
    ContainerEvent {
        /// The reporting host.
        host: String,
        /// As in `CapsuleState`.
        seq: u64,
        /// What happened.
        happened: ContainerEvent,
    },
    /// What became of a volume the host was asked to make or remove. Legal at any time;
    /// applied only where it moves the volume on (`creating` to `available` or `error`,
    /// `deleting` to gone), so a repeated or late report changes nothing.
    VolumeState {
        /// The reporting host.
        host: String,
        /// The volume.
        volume: Uuid,
        /// What the host has of it now.
        state: VolumeHostState,
        /// Why it failed, for users.
        #[serde(default)]
        reason: Option<String>,
    },
}

impl ConductorEvent {
    /// The report's kind, as a fixed name (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CapsuleState { .. } => "capsule_state",
            Self::CapsuleDeleted { .. } => "capsule_deleted",
            Self::Heartbeat(_) => "heartbeat",
            Self::ContainerEvent { .. } => "container_event",
            Self::VolumeState { .. } => "volume_state",
        }
    }
}

/// What a host has of a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeHostState {
    /// Made and ready to attach.
    Available,
    /// Making it failed.
    Error,
    /// Gone.
    Deleted,
}

/// Periodic liveness report of a compute service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Host name (its queue is `zun-compute.<host>`).
    pub host: String,
    /// Binary (`zun-compute`).
    pub binary: String,
    /// Availability zone of the host.
    pub availability_zone: String,
    /// Resources.
    pub resources: NodeResources,
    /// Capsules the host has (any state).
    pub capsules: Vec<Uuid>,
    /// From the same sequence as the host's state reports: a heartbeat older than a capsule's
    /// last report says nothing about that capsule (it may have been queued while the broker
    /// was away).
    #[serde(default)]
    pub seq: u64,
    /// The epoch of the last firewall the host got from the API since it started; `None`
    /// until it got one. The conductor sends a newer one when this is behind.
    #[serde(default)]
    pub firewall_epoch: Option<u64>,
    /// The incarnation of that firewall's epoch (see `HostFirewall::incarnation`); `None` with
    /// `firewall_epoch`.
    #[serde(default)]
    pub firewall_incarnation: Option<String>,
    /// Where the host's stream listener (interactive exec) accepts connections, `host:port`;
    /// `None` if it has none. The API connects only to the address a host's heartbeat named.
    #[serde(default)]
    pub stream_address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_shape_is_tagged_and_stable() {
        let req = ComputeRequest::DeleteCapsule {
            capsule: Uuid::nil(),
        };
        let v = serde_json::to_value(Envelope::new(req.clone(), Some("req-1".into()))).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(
            v["body"],
            json!({"method": "delete_capsule", "capsule": "00000000-0000-0000-0000-000000000000"})
        );
        let back: Envelope<ComputeRequest> = serde_json::from_value(v).unwrap();
        assert_eq!(back.body, req);

        let ev = ConductorEvent::CapsuleDeleted {
            host: "h".into(),
            seq: 3,
            capsule: Uuid::nil(),
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["event"], "capsule_deleted");
        assert_eq!(serde_json::from_value::<ConductorEvent>(v).unwrap(), ev);
    }

    #[test]
    fn no_credentials_on_the_wire() {
        // The only identity that travels is the owning project id.
        let text =
            serde_json::to_string(&ComputeRequest::SyncCapsules { capsules: vec![] }).unwrap();
        for word in ["token", "password", "auth"] {
            assert!(!text.contains(word));
        }
    }

    #[test]
    fn queue_names() {
        assert_eq!(compute_queue("c1"), "zun-compute.c1");
    }
}
