//! The pod runtime: images from the image part, a network namespace with published ports from
//! the network part, and one shim per capsule that runs the sandbox and the containers; the
//! capsule's volumes, writable layer and security groups; every capsule's [`Bounds`]. It only
//! orchestrates: each host part is a driver
//! (`Arc<dyn ...Driver>`) tested for real on its own, and a create is a list of named steps
//! with their undo (module `steps`), run by a small saga executor (module `saga`), so its
//! ordering and rollback are unit-tested with the parts' fakes (module `tests`).

mod archive;
mod error;
mod figures;
pub mod layout;
mod operate;
mod plan;
mod probe;
mod saga;
mod state;
mod steps;
#[cfg(test)]
mod tests;
mod top;
mod usage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use capsule_types::rpc::{
    CapsuleSpec, CapsuleState, ContainerCall, ContainerRef, ContainerReply, LogQuery, LogsReply,
};
use capsule_types::CapsuleStatus;
use tokio::sync::broadcast;
use tracing::{info, warn};
use uuid::Uuid;

pub use error::{CapsulesDirError, CreateFailed, StepError, TeardownError, UndoError};
pub use layout::CapsuleDirs;
pub use steps::{Step, CREATE, TEARDOWN};

pub(crate) use top::ps_words;

use super::{Act, ActOutcome, ExecOutcome, RuntimeDriver, RuntimeError, RuntimeEvent};
use crate::chain::Chain;
use crate::config::{LimitsConfig, LogsConfig, PodConfig};
use crate::firewall::SecurityGroups;
use crate::image::ImageDriver;
use crate::layer::LayerDriver;
use crate::network::NetworkDriver;
use crate::shim::{CapsuleLimits, LogRotation, Phase, ShimDriver, Status};
use crate::volume::VolumeDriver;
use layout::NETWORK_FILE;
pub use plan::shim_name;
use state::capsule_state;
use steps::{Make, Unmake};

/// The host parts the pod runtime orchestrates.
#[derive(Clone, Debug)]
pub struct Parts {
    /// Images and root filesystems.
    pub images: Arc<dyn ImageDriver>,
    /// The capsule network.
    pub network: Arc<dyn NetworkDriver>,
    /// The capsules' shims.
    pub shims: Arc<dyn ShimDriver>,
    /// Volumes.
    pub volumes: Arc<dyn VolumeDriver>,
    /// The security groups in force (shared with the manager, which receives them).
    pub firewall: Arc<SecurityGroups>,
    /// The capsules' writable layers.
    pub layers: Arc<dyn LayerDriver>,
}

/// What the pod runtime gives every capsule of the host at most, whatever its template asks
/// (`[limits]`, `[logs]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// What the shim enforces: the capsule's pids limit, its containers' log rotation.
    pub shim: CapsuleLimits,
    /// Bytes of the capsule's writable layer; 0: none (writes go to containerd's snapshots).
    pub layer_bytes: u64,
}

impl Bounds {
    /// The bounds `limits` and `logs` configure.
    pub fn from_config(limits: &LimitsConfig, logs: &LogsConfig) -> Self {
        Self {
            shim: CapsuleLimits {
                pids_max: Some(limits.pids_per_capsule),
                logs: Some(LogRotation {
                    max_bytes: logs.max_bytes,
                    max_files: logs.max_files,
                }),
            },
            layer_bytes: limits.writable_layer_mib << 20,
        }
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Self::from_config(&LimitsConfig::default(), &LogsConfig::default())
    }
}

/// The pod runtime.
#[derive(Debug)]
pub struct PodRuntime {
    images: Arc<dyn ImageDriver>,
    network: Arc<dyn NetworkDriver>,
    shims: Arc<dyn ShimDriver>,
    volumes: Arc<dyn VolumeDriver>,
    firewall: Arc<SecurityGroups>,
    layers: Arc<dyn LayerDriver>,
    bounds: Bounds,
    dirs: CapsuleDirs,
    cfg: PodConfig,
    changes: broadcast::Sender<Uuid>,
    watchers: Mutex<HashMap<Uuid, tokio::task::JoinHandle<()>>>,
}

impl PodRuntime {
    /// A runtime over `parts` keeping capsules in `dirs`, following every capsule whose shim
    /// runs (after an agent restart they are still running).
    pub fn new(dirs: CapsuleDirs, cfg: PodConfig, parts: Parts) -> Result<Self, CapsulesDirError> {
        let dir_error = |action| {
            let path = dirs.root().to_owned();
            move |source| CapsulesDirError {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(dirs.root()).map_err(dir_error("create"))?;
        let found = dirs.list().map_err(dir_error("list"))?;
        let rt = Self {
            images: parts.images,
            network: parts.network,
            shims: parts.shims,
            volumes: parts.volumes,
            firewall: parts.firewall,
            layers: parts.layers,
            bounds: Bounds::default(),
            dirs,
            cfg,
            changes: broadcast::channel(1024).0,
            watchers: Mutex::default(),
        };
        for (id, dir) in found {
            if rt.shims.is_alive(&dir) {
                rt.watch(id);
            }
        }
        Ok(rt)
    }

    /// The runtime with `bounds` for the capsules it creates from now on (default: the
    /// configuration's defaults).
    pub fn with_bounds(mut self, bounds: Bounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// Runs the create's steps; on failure, the steps done are undone and the error says
    /// which step failed and what the undo did.
    pub async fn build(&self, spec: &CapsuleSpec) -> Result<CapsuleState, CreateFailed> {
        let make = Make::new(self, spec);
        match saga::run(&make, CREATE).await {
            Ok(()) => {
                // Set by the shim step, which succeeded.
                let status = make.status.get().cloned().unwrap_or(Status {
                    phase: Phase::Starting,
                    reason: None,
                    sandbox_pid: None,
                    containers: Vec::new(),
                });
                Ok(capsule_state(
                    spec,
                    &status,
                    make.attachment.get(),
                    self.network.name(),
                ))
            }
            Err(failed) => {
                for (step, e) in &failed.also {
                    warn!(capsule = %spec.uuid, step = step.name(), error = %Chain(e), "create step failed too");
                }
                let undone: Vec<&str> = failed.undone.steps.iter().map(|s| s.name()).collect();
                info!(capsule = %spec.uuid, step = failed.step.name(), undone = %undone.join(","), errors = failed.undone.errors.len(), "create undone");
                Err(CreateFailed {
                    capsule: spec.uuid,
                    step: failed.step,
                    error: failed.error,
                    undone: failed.undone.steps,
                    undo_errors: failed.undone.errors,
                })
            }
        }
    }

    /// Undoes every step of capsule `id`, from its directory: best effort, every error kept.
    pub async fn teardown(&self, id: Uuid) -> Result<(), TeardownError> {
        let started = Instant::now();
        let unmake = Unmake::new(self, id);
        let undone = saga::undo_rows(&unmake, TEARDOWN).await;
        if undone.errors.is_empty() {
            let ms = started.elapsed().as_millis() as u64;
            info!(capsule = %id, ms, "capsule torn down");
            Ok(())
        } else {
            Err(TeardownError {
                capsule: id,
                errors: undone.errors.into_iter().map(|(_, e)| e).collect(),
            })
        }
    }

    /// Follows the capsule's shim and announces every change it reports.
    fn watch(&self, id: Uuid) {
        let dir = self.dirs.dir(id);
        let tx = self.changes.clone();
        let shims = self.shims.clone();
        let task = tokio::spawn(async move {
            let Ok(mut rx) = shims.watch(&dir).await else {
                let _ = tx.send(id);
                return;
            };
            while rx.recv().await.is_some() {
                let _ = tx.send(id);
            }
            // The shim went away: whoever listens finds out how things stand.
            let _ = tx.send(id);
        });
        let mut w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = w.insert(id, task) {
            old.abort();
        }
    }

    fn unwatch(&self, id: Uuid) {
        let mut w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = w.remove(&id) {
            t.abort();
        }
    }
}

#[async_trait]
impl RuntimeDriver for PodRuntime {
    async fn create(&self, spec: &CapsuleSpec) -> Result<CapsuleState, RuntimeError> {
        Ok(self.build(spec).await?)
    }

    async fn delete(&self, capsule: Uuid) -> Result<(), RuntimeError> {
        Ok(self.teardown(capsule).await?)
    }

    async fn inspect(&self, spec: &CapsuleSpec) -> Result<Option<CapsuleState>, RuntimeError> {
        let dir = self.dirs.dir(spec.uuid);
        if !dir.exists() {
            return Ok(None);
        }
        let attachment = self
            .network
            .recorded_attachment(spec.uuid, &dir.join(NETWORK_FILE))
            .await
            .ok()
            .flatten();
        match self.shims.status(&dir).await {
            Ok(status) => Ok(Some(capsule_state(
                spec,
                &status,
                attachment.as_ref(),
                self.network.name(),
            ))),
            Err(e) => Ok(Some(CapsuleState {
                capsule: spec.uuid,
                status: CapsuleStatus::Error,
                status_reason: Some(format!("The capsule's shim is gone: {e}")),
                containers: Vec::new(),
                addresses: serde_json::json!({}),
                volumes_released: false,
            })),
        }
    }

    async fn logs(&self, capsule: Uuid, container: &ContainerRef, query: &LogQuery) -> LogsReply {
        let path = self
            .shims
            .log_path(&self.dirs.dir(capsule), &shim_name(container.uuid));
        let container = &container.name;
        let query = query.clone();
        let read = tokio::task::spawn_blocking(move || crate::logs::read(&path, &query)).await;
        match read {
            Ok(Ok(text)) => LogsReply::Logs { text },
            Ok(Err(e)) => LogsReply::Unavailable {
                message: format!("Cannot read the logs of {container}: {e}"),
            },
            Err(e) => LogsReply::Unavailable {
                message: format!("Cannot read the logs of {container}: {e}"),
            },
        }
    }

    fn changes(&self) -> broadcast::Receiver<Uuid> {
        self.changes.subscribe()
    }

    async fn act(
        &self,
        spec: &CapsuleSpec,
        containers: &[ContainerRef],
        act: Act,
    ) -> Result<Vec<ActOutcome>, RuntimeError> {
        self.act_on(spec, containers, act).await
    }

    async fn events(
        &self,
        spec: &CapsuleSpec,
        after: u64,
    ) -> Result<Vec<RuntimeEvent>, RuntimeError> {
        self.events_of(spec, after).await
    }

    async fn exec(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        command: Vec<String>,
        tty: bool,
        stdin: bool,
    ) -> Result<ExecOutcome, RuntimeError> {
        self.exec_in(spec, container, command, tty, stdin).await
    }

    async fn call(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        call: &ContainerCall,
    ) -> ContainerReply {
        self.answer(spec, container, call).await
    }

    async fn usage(&self) -> Vec<super::CapsuleUsage> {
        self.usage_of_all().await
    }

    async fn probe(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        action: &capsule_types::template::ProbeAction,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        self.probe_container(spec, container, action, timeout).await
    }
}

impl Drop for PodRuntime {
    fn drop(&mut self) {
        let w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        for t in w.values() {
            t.abort();
        }
    }
}
