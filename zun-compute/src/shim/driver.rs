//! The shim part as the pod runtime sees it: start a capsule's shim from the plan in its
//! directory, wait until its containers run, ask and watch it, stop it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::exec_client::{ExecRequest, ExecStart};
use super::protocol::{ActReply, Action, ShimEvent};
use super::{client, Phase, ShimError, Status};

/// The capsules' shims. Real: [`Shims`] (one `capsule-shim` process per capsule); fake:
/// [`super::fake::FakeShims`].
#[async_trait]
pub trait ShimDriver: Send + Sync + std::fmt::Debug + 'static {
    /// The sandbox's root filesystem, shared by every capsule (a plan names it).
    fn sandbox_rootfs(&self) -> &Path;

    /// Starts the shim of the capsule whose plan is `<dir>/plan.json`; returns once it answers.
    async fn spawn(&self, dir: &Path) -> Result<(), ShimError>;

    /// The capsule's current status.
    async fn status(&self, dir: &Path) -> Result<Status, ShimError>;

    /// The capsule's status now, then after every change, until the shim exits.
    async fn watch(&self, dir: &Path) -> Result<mpsc::Receiver<Status>, ShimError>;

    /// Stops every container (SIGTERM, SIGKILL after `grace`) and the shim; cleans up after a
    /// shim that is gone. Idempotent.
    async fn shutdown(&self, dir: &Path, grace: Duration) -> Result<(), ShimError>;

    /// Whether a shim runs for the capsule in `dir`.
    fn is_alive(&self, dir: &Path) -> bool;

    /// Does `action` to app container `container` (all of them when `None`) of the capsule
    /// in `dir`; answers once it is done.
    async fn act(
        &self,
        dir: &Path,
        container: Option<&str>,
        action: Action,
    ) -> Result<ActReply, ShimError>;

    /// The events the capsule's shim numbered above `after`.
    async fn events(&self, dir: &Path, after: u64) -> Result<Vec<ShimEvent>, ShimError>;

    /// Runs a command in a container of the capsule in `dir`.
    async fn exec(&self, dir: &Path, req: &ExecRequest) -> Result<ExecStart, ShimError>;

    /// Where container `name` of the capsule in `dir` logs.
    fn log_path(&self, dir: &Path, name: &str) -> PathBuf {
        super::log_path(dir, name)
    }

    /// Waits until the capsule in `dir` left `starting` (every app container runs, or it
    /// stopped by itself), or failed (its reason), or its shim exited, or `timeout` passed.
    async fn wait_started(&self, dir: &Path, timeout: Duration) -> Result<Status, ShimError> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.watch(dir).await?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(status)) => match status.phase {
                    Phase::Starting => continue,
                    Phase::Failed => {
                        return Err(ShimError::Failed {
                            reason: status
                                .reason
                                .unwrap_or_else(|| "the capsule failed to start".into()),
                        })
                    }
                    _ => return Ok(status),
                },
                Ok(None) => return Err(ShimError::ExitedWhileStarting),
                Err(_) => {
                    return Err(ShimError::StartTimeout {
                        seconds: timeout.as_secs(),
                    })
                }
            }
        }
    }
}

/// The real shims: `capsule-shim start` per capsule, talked to on its socket.
#[derive(Clone, Debug)]
pub struct Shims {
    binary: PathBuf,
    sandbox_rootfs: PathBuf,
}

impl Shims {
    /// Shims run from `binary` (default: `capsule-shim` next to this program), with the
    /// sandbox rootfs laid out at `sandbox_rootfs` now.
    pub fn new(binary: Option<PathBuf>, sandbox_rootfs: PathBuf) -> Result<Self, ShimError> {
        let binary = match binary {
            Some(p) => p,
            None => std::env::current_exe()
                .map_err(ShimError::OwnBinary)?
                .with_file_name("capsule-shim"),
        };
        if !binary.is_file() {
            return Err(ShimError::NoBinary { path: binary });
        }
        super::ensure_sandbox_rootfs(&sandbox_rootfs).map_err(|source| {
            ShimError::SandboxRootfs {
                path: sandbox_rootfs.clone(),
                source,
            }
        })?;
        Ok(Self {
            binary,
            sandbox_rootfs,
        })
    }
}

#[async_trait]
impl ShimDriver for Shims {
    fn sandbox_rootfs(&self) -> &Path {
        &self.sandbox_rootfs
    }

    async fn spawn(&self, dir: &Path) -> Result<(), ShimError> {
        client::spawn(&self.binary, dir).await
    }

    async fn status(&self, dir: &Path) -> Result<Status, ShimError> {
        client::status(dir).await
    }

    async fn watch(&self, dir: &Path) -> Result<mpsc::Receiver<Status>, ShimError> {
        client::watch(dir).await
    }

    async fn shutdown(&self, dir: &Path, grace: Duration) -> Result<(), ShimError> {
        client::shutdown(dir, grace).await
    }

    fn is_alive(&self, dir: &Path) -> bool {
        client::is_alive(dir)
    }

    async fn act(
        &self,
        dir: &Path,
        container: Option<&str>,
        action: Action,
    ) -> Result<ActReply, ShimError> {
        client::act(dir, container, action).await
    }

    async fn events(&self, dir: &Path, after: u64) -> Result<Vec<ShimEvent>, ShimError> {
        client::events(dir, after).await
    }

    async fn exec(&self, dir: &Path, req: &ExecRequest) -> Result<ExecStart, ShimError> {
        super::exec_client::exec(dir, req).await
    }
}
