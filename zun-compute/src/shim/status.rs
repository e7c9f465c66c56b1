//! What the shim reports: the capsule's phase and each container's state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The capsule as the shim sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Where the capsule is in its life.
    pub phase: Phase,
    /// Why it is `failed` (or `succeeded`/`stopped`), in words a user can act on.
    pub reason: Option<String>,
    /// The pause process (host pid namespace), once the sandbox runs.
    pub sandbox_pid: Option<i32>,
    /// Init containers first (in order), then app containers.
    pub containers: Vec<ContainerStatus>,
}

/// The capsule's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Sandbox, init containers or app containers are being started.
    Starting,
    /// Every app container has been started; at least one runs or will be restarted.
    Running,
    /// Every app container exited with code 0 and none will be restarted.
    Succeeded,
    /// The sandbox or an init container failed, or every app container stopped for good and
    /// one of them failed.
    Failed,
    /// A shutdown is under way.
    Stopping,
    /// Shut down: nothing of the capsule runs any more.
    Stopped,
}

/// One container's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Not started yet (init containers waiting their turn, app containers waiting for them).
    Created,
    /// Its process runs.
    Running,
    /// It exited and will not be restarted.
    Exited,
    /// It exited (or could not be created) and will be restarted after a back-off.
    Restarting,
    /// It could not be created and will not be retried.
    Failed,
    /// Stopped by a user: its restart policy leaves it alone until it is started again.
    Stopped,
    /// Frozen by a user (cgroup freezer).
    Paused,
}

/// One container as the shim sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// Its name in the capsule.
    pub name: String,
    /// Its id in the API.
    pub uuid: Uuid,
    /// Whether it is an init container.
    pub init: bool,
    /// Its state.
    pub state: ContainerState,
    /// Its init process (host pid namespace) while it runs.
    pub pid: Option<i32>,
    /// The code of its last exit; a death by signal N is 128+N.
    pub exit_code: Option<i32>,
    /// How many times it was restarted.
    pub restart_count: u32,
    /// How many times the kernel killed it for lack of memory (0 from a shim that predates
    /// the count).
    #[serde(default)]
    pub oom_kills: u32,
    /// Why it last stopped: `Completed`, `Error`, `OOMKilled`, `Signaled`, or why it could not
    /// be created.
    pub reason: Option<String>,
    /// When its current (or last) process started.
    pub started_at: Option<DateTime<Utc>>,
    /// When its last process ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Status {
    /// The container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Whether every app container is `running`.
    pub fn all_running(&self) -> bool {
        self.containers
            .iter()
            .filter(|c| !c.init)
            .all(|c| c.state == ContainerState::Running)
    }
}
