//! A recording fake of the shim part: a "started" capsule runs every container of its plan at
//! once, in memory. For unit tests of the pod runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{ContainerState, ContainerStatus, Phase, Plan, ShimDriver, ShimError, Status};
use crate::recorder::Recorder;

/// The fake. Its calls are `shim.spawn`, `shim.status`, `shim.watch` and `shim.shutdown`
/// (detail: the capsule directory).
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

    async fn shutdown(&self, dir: &Path, _grace: Duration) -> Result<(), ShimError> {
        self.call("shim.shutdown", dir)?;
        self.running().remove(dir);
        Ok(())
    }

    fn is_alive(&self, dir: &Path) -> bool {
        self.running().contains_key(dir)
    }
}
