//! A recording fake of the shim part: a "started" capsule runs every container of its plan at
//! once, in memory. For unit tests of the pod runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    ActReply, ActResult, Action, ContainerState, ContainerStatus, ExecRequest, ExecStart, Phase,
    Plan, ShimDriver, ShimError, ShimEvent, Status,
};
use crate::recorder::Recorder;

/// The fake. Its calls are `shim.spawn`, `shim.status`, `shim.watch`, `shim.shutdown`,
/// `shim.events`, `shim.exec` (detail: the capsule directory) and `shim.act` (detail: the
/// directory, the container or `*`, the action).
#[derive(Debug)]
pub struct FakeShims {
    calls: Recorder,
    sandbox_rootfs: PathBuf,
    running: Mutex<HashMap<PathBuf, Status>>,
}

impl FakeShims {
    /// A fake recording into `calls`.
    pub fn new(calls: Recorder) -> Self {
        Self {
            calls,
            sandbox_rootfs: PathBuf::from("/nonexistent/sandbox-rootfs"),
            running: Mutex::default(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Status>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, name: &'static str, dir: &Path) -> Result<(), ShimError> {
        self.calls
            .call(name, dir.display())
            .map_err(ShimError::Start)
    }

    fn not_running(dir: &Path) -> ShimError {
        ShimError::NotRunning {
            path: dir.join(super::SOCKET_FILE),
            source: std::io::ErrorKind::NotFound.into(),
        }
    }
}

/// Every container of `plan` as the fake runs it: init containers done, the others running.
fn running(plan: &Plan) -> Status {
    let containers = plan
        .init_containers
        .iter()
        .map(|c| (c, true))
        .chain(plan.containers.iter().map(|c| (c, false)))
        .map(|(c, init)| ContainerStatus {
            name: c.name.clone(),
            uuid: c.uuid,
            init,
            state: if init {
                ContainerState::Exited
            } else {
                ContainerState::Running
            },
            pid: (!init).then_some(4242),
            exit_code: init.then_some(0),
            restart_count: 0,
            oom_kills: 0,
            reason: init.then(|| "Completed".into()),
            started_at: None,
            finished_at: None,
        })
        .collect();
    Status {
        phase: Phase::Running,
        reason: None,
        sandbox_pid: Some(4241),
        containers,
    }
}

/// What `action` makes of a container in `state`, as the real shim does it.
fn fake_act(state: ContainerState, action: Action, name: &str) -> (ContainerState, Option<String>) {
    use ContainerState::*;
    match (action, state) {
        (Action::Stop { .. }, _) => (Stopped, None),
        (Action::Restart { .. }, _) | (Action::Start, Stopped | Exited | Failed) => (Running, None),
        (Action::Start, Paused) => (Paused, Some(format!("{name} is paused"))),
        (Action::Start, s) => (s, None),
        (Action::Kill { .. } | Action::Fail, Running) => (Running, None),
        (Action::Kill { .. } | Action::Fail, s) => (s, Some(format!("{name} is not running"))),
        (Action::Pause, Running | Paused) => (Paused, None),
        (Action::Pause, s) => (s, Some(format!("{name} is not running"))),
        (Action::Unpause, Paused | Running) => (Running, None),
        (Action::Unpause, s) => (s, Some(format!("{name} is not paused"))),
    }
}

#[async_trait]
impl ShimDriver for FakeShims {
    fn sandbox_rootfs(&self) -> &Path {
        &self.sandbox_rootfs
    }

    async fn spawn(&self, dir: &Path) -> Result<(), ShimError> {
        self.call("shim.spawn", dir)?;
        let plan = Plan::load(dir).map_err(|e| ShimError::Start(crate::chain::chain(&e)))?;
        self.running().insert(dir.to_owned(), running(&plan));
        Ok(())
    }

    async fn status(&self, dir: &Path) -> Result<Status, ShimError> {
        self.call("shim.status", dir)?;
        self.running()
            .get(dir)
            .cloned()
            .ok_or_else(|| Self::not_running(dir))
    }

    async fn watch(&self, dir: &Path) -> Result<mpsc::Receiver<Status>, ShimError> {
        self.call("shim.watch", dir)?;
        let status = self
            .running()
            .get(dir)
            .cloned()
            .ok_or_else(|| Self::not_running(dir))?;
        // One status, then the channel closes, as when a shim exits.
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(status);
        Ok(rx)
    }

    async fn act(
        &self,
        dir: &Path,
        container: Option<&str>,
        action: Action,
    ) -> Result<ActReply, ShimError> {
        self.calls
            .call(
                "shim.act",
                format!("{} {} {action:?}", dir.display(), container.unwrap_or("*")),
            )
            .map_err(ShimError::Start)?;
        let mut running = self.running();
        let status = running.get_mut(dir).ok_or_else(|| Self::not_running(dir))?;
        let mut results = Vec::new();
        for c in status.containers.iter_mut().filter(|c| !c.init) {
            if container.is_some_and(|n| n != c.name) {
                continue;
            }
            let (state, error) = fake_act(c.state, action, &c.name);
            let conflict = error.is_some();
            c.state = state;
            c.pid = (state == ContainerState::Running || state == ContainerState::Paused)
                .then_some(4242);
            results.push(ActResult {
                name: c.name.clone(),
                error,
                conflict,
            });
        }
        if results.is_empty() {
            let name = container.unwrap_or("*").to_owned();
            results.push(ActResult {
                error: Some(format!("no container {name} in this capsule")),
                name,
                conflict: false,
            });
        }
        Ok(ActReply { results })
    }

    async fn events(&self, dir: &Path, after: u64) -> Result<Vec<ShimEvent>, ShimError> {
        self.call("shim.events", dir)?;
        let _ = after;
        Ok(Vec::new())
    }

    async fn exec(&self, dir: &Path, _req: &ExecRequest) -> Result<ExecStart, ShimError> {
        self.call("shim.exec", dir)?;
        Ok(ExecStart::Refused {
            message: "the fake shim runs no process".into(),
            conflict: false,
        })
    }

    async fn shutdown(&self, dir: &Path, _grace: Duration) -> Result<(), ShimError> {
        self.call("shim.shutdown", dir)?;
        self.running().remove(dir);
        Ok(())
    }

    fn is_alive(&self, dir: &Path) -> bool {
        self.running().contains_key(dir)
    }
}
