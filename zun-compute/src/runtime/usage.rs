//! What a host's capsules use, as the runtime reads it for the metrics: per container its CPU
//! time, working set, memory limit, restarts and OOM kills; per capsule its network bytes.

use uuid::Uuid;

/// One capsule's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapsuleUsage {
    /// The capsule.
    pub capsule: Uuid,
    /// Bytes received on the capsule's network interfaces (not loopback).
    pub network_rx_bytes: u64,
    /// Bytes sent on the capsule's network interfaces (not loopback).
    pub network_tx_bytes: u64,
    /// Its containers, init containers included.
    pub containers: Vec<ContainerUsage>,
}

/// One container's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerUsage {
    /// The container.
    pub container: Uuid,
    /// Whether its process runs now.
    pub running: bool,
    /// CPU time of its cgroup (its current process and what was exec'd into it), seconds.
    pub cpu_seconds: f64,
    /// Memory in use less the inactive file cache (the kubelet's working set), bytes.
    pub memory_working_set_bytes: u64,
    /// Its memory limit, bytes (the host's memory when unlimited).
    pub memory_limit_bytes: u64,
    /// Restarts its restart policy made.
    pub restarts: u32,
    /// Times the kernel killed it for lack of memory.
    pub oom_kills: u32,
}
