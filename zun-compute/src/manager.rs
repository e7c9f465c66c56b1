//! The capsule manager: carries out the API's requests for this host with the runtime driver,
//! remembers every capsule in the store, and reports every state change. Every handler is
//! idempotent: a redelivered create re-reports instead of rebuilding, a create for a capsule
//! deleted here is not honoured, a delete of an unknown capsule just reports it gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use capsule_types::rpc::{
    CapsuleSpec, CapsuleState, ComputeRequest, LogQuery, LogsReply, VolumeHostState,
};
use capsule_types::CapsuleStatus;
use rpc::RpcError;
use tracing::Instrument;
use uuid::Uuid;

use crate::driver::RuntimeDriver;
use crate::reporter::Reporter;
use crate::store::{Record, Store, StoreError};

/// Why a request must be retried later (nothing about it was lost).
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The state directory failed.
    #[error("local state")]
    Store(#[from] StoreError),
    /// A report that must precede the acknowledgement could not be sent.
    #[error("cannot report to the conductor")]
    Report(#[from] RpcError),
}

/// The manager of one host.
#[derive(Debug)]
pub struct Manager<D> {
    driver: D,
    store: Store,
    reporter: Reporter,
    locks: StdMutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

fn error_state(spec: &CapsuleSpec, reason: String) -> CapsuleState {
    CapsuleState {
        capsule: spec.uuid,
        status: CapsuleStatus::Error,
        status_reason: Some(reason),
        containers: Vec::new(),
        addresses: serde_json::json!({}),
        volumes_released: false,
    }
}

fn creating(spec: &CapsuleSpec) -> CapsuleState {
    CapsuleState {
        capsule: spec.uuid,
        status: CapsuleStatus::Creating,
        status_reason: None,
        containers: Vec::new(),
        addresses: serde_json::json!({}),
        volumes_released: false,
    }
}

impl<D: RuntimeDriver> Manager<D> {
    /// A manager over `driver`, remembering in `store`, reporting through `reporter`.
    pub fn new(driver: D, store: Store, reporter: Reporter) -> Self {
        Self {
            driver,
            store,
            reporter,
            locks: StdMutex::new(HashMap::new()),
        }
    }

    /// The reporter (for heartbeats).
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// The epoch of the newest firewall the API sent since start (for heartbeats).
    pub fn firewall_epoch(&self) -> Option<u64> {
        self.driver.firewall_epoch()
    }

    /// The capsules this host has.
    pub fn capsules(&self) -> Result<Vec<Uuid>, StoreError> {
        Ok(self
            .store
            .list()?
            .into_iter()
            .map(|r| r.spec.uuid)
            .collect())
    }

    /// Serializes work on one capsule.
    fn lock(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id).or_default().clone()
    }

    /// Carries out one request.
    pub async fn handle(&self, req: ComputeRequest) -> Result<(), ManagerError> {
        match req {
            ComputeRequest::CreateCapsule { capsule } => self.create(*capsule).await,
            ComputeRequest::DeleteCapsule { capsule } => self.delete(capsule).await,
            ComputeRequest::SyncCapsules { capsules } => self.sync(&capsules).await,
            ComputeRequest::SetFirewall { firewall } => {
                let epoch = firewall.epoch;
                // A firewall that cannot be applied now is not retried from the queue: the
                // next heartbeat still shows the old epoch, and the API sends it again.
                if let Err(e) = self.driver.set_firewall(*firewall).await {
                    tracing::error!(epoch, error = %e, "cannot apply the firewall");
                }
                Ok(())
            }
            ComputeRequest::CreateVolume { volume, size_gib } => {
                self.create_volume(volume, size_gib).await
            }
            ComputeRequest::DeleteVolume { volume } => self.delete_volume(volume).await,
            // A call: the agent answers it with `logs`; as a cast it has nothing to do.
            ComputeRequest::ContainerLogs { .. } => Ok(()),
        }
    }

    /// Makes a volume and reports it `available`, or `error` with why.
    async fn create_volume(&self, id: Uuid, size_gib: u64) -> Result<(), ManagerError> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        let started = std::time::Instant::now();
        let (state, reason) = match self.driver.create_volume(id, size_gib).await {
            Ok(()) => {
                tracing::info!(volume = %id, size_gib, ms = started.elapsed().as_millis() as u64, "volume made");
                (VolumeHostState::Available, None)
            }
            Err(e) => {
                tracing::warn!(volume = %id, size_gib, error = %e, "cannot make the volume");
                (VolumeHostState::Error, Some(e.to_string()))
            }
        };
        self.reporter.volume(id, state, reason).await?;
        Ok(())
    }

    /// Removes a volume and reports it gone, or `error` with why.
    async fn delete_volume(&self, id: Uuid) -> Result<(), ManagerError> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        let (state, reason) = match self.driver.delete_volume(id).await {
            Ok(()) => {
                tracing::info!(volume = %id, "volume removed");
                (VolumeHostState::Deleted, None)
            }
            Err(e) => {
                tracing::warn!(volume = %id, error = %e, "cannot remove the volume");
                (VolumeHostState::Error, Some(e.to_string()))
            }
        };
        self.reporter.volume(id, state, reason).await?;
        Ok(())
    }

    /// The logs of container `container` (its name) of capsule `id`, if this host has it.
    pub async fn logs(&self, id: Uuid, container: &str, query: &LogQuery) -> LogsReply {
        let rec = match self.store.get(id) {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                return LogsReply::NotFound {
                    message: format!("Capsule {id} is not on this host."),
                }
            }
            Err(e) => {
                return LogsReply::Unavailable {
                    message: format!("Cannot read this host's state: {e}"),
                }
            }
        };
        let Some(c) = rec.spec.containers.iter().find(|c| c.name == container) else {
            return LogsReply::NotFound {
                message: format!("Capsule {id} has no container {container}."),
            };
        };
        self.driver.logs(id, c, query).await
    }

    /// The driver's stream of capsules that changed by themselves.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Uuid> {
        self.driver.changes()
    }

    async fn create(&self, spec: CapsuleSpec) -> Result<(), ManagerError> {
        let id = spec.uuid;
        let lock = self.lock(id);
        let _g = lock.lock().await;
        if self.store.is_buried(id) {
            // Deleted here before this create arrived (or this is a late redelivery).
            tracing::info!(capsule = %id, "create for a deleted capsule: reporting it gone");
            self.reporter.deleted(id).await?;
            return Ok(());
        }
        if let Some(rec) = self.store.get(id)? {
            if rec.settled {
                tracing::info!(capsule = %id, "create redelivered: reporting the state again");
                return self.report(rec).await;
            }
            // A create was under way when the agent stopped: clear its leftovers, redo it.
            tracing::warn!(capsule = %id, "redoing an interrupted create");
            if let Err(e) = self.driver.delete(id).await {
                tracing::warn!(capsule = %id, error = %e, "cleanup of the interrupted create");
            }
        }
        self.build(spec).await
    }

    /// Runs the driver's create, remembering the intent first so a crash midway is redone.
    async fn build(&self, spec: CapsuleSpec) -> Result<(), ManagerError> {
        let id = spec.uuid;
        self.store.put(&Record {
            state: creating(&spec),
            spec: spec.clone(),
            settled: false,
            unreported: false,
            deleting: false,
        })?;
        let state = match self
            .driver
            .create(&spec)
            .instrument(tracing::info_span!("create", capsule = %id))
            .await
        {
            Ok(s) => {
                tracing::info!(capsule = %id, status = %s.status, "capsule created");
                s
            }
            Err(e) => {
                tracing::warn!(capsule = %id, error = %e, "capsule create failed");
                let mut s = error_state(&spec, e.to_string());
                // The driver undid the create: unless its undo left them, the volumes are
                // free for other capsules now.
                s.volumes_released = !self.driver.holds_volumes(id);
                s
            }
        };
        let rec = Record {
            spec,
            state,
            settled: true,
            unreported: true,
            deleting: false,
        };
        self.store.put(&rec)?;
        self.report(rec).await
    }

    /// Reports `rec`'s state; if the broker cannot take it now, the reconcile loop will.
    async fn report(&self, mut rec: Record) -> Result<(), ManagerError> {
        match self.reporter.state(&rec.state).await {
            Ok(()) => {
                if rec.unreported {
                    rec.unreported = false;
                    self.store.put(&rec)?;
                }
            }
            Err(e) => {
                tracing::warn!(capsule = %rec.spec.uuid, error = %e, "state report deferred");
                if !rec.unreported {
                    rec.unreported = true;
                    self.store.put(&rec)?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> Result<(), ManagerError> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        self.delete_locked(id).await
    }

    /// Tears capsule `id` down and reports it deleted; the caller holds its lock. Marked
    /// `deleting` first, so that an agent killed half way finishes the delete when it starts
    /// again instead of reporting the half-torn-down capsule as broken.
    async fn delete_locked(&self, id: Uuid) -> Result<(), ManagerError> {
        if let Some(mut rec) = self.store.get(id)? {
            if !rec.deleting {
                rec.deleting = true;
                self.store.put(&rec)?;
            }
        }
        let deleted = self
            .driver
            .delete(id)
            .instrument(tracing::info_span!("delete", capsule = %id))
            .await;
        if let Err(e) = deleted {
            tracing::warn!(capsule = %id, error = %e, "capsule delete failed");
            if let Some(mut rec) = self.store.get(id)? {
                rec.state = error_state(&rec.spec, format!("Delete failed: {e}"));
                rec.unreported = true;
                rec.deleting = false;
                self.store.put(&rec)?;
                return self.report(rec).await;
            }
        }
        // Report before forgetting: if the report fails, the request is retried and finds
        // the capsule still remembered (the driver's delete is idempotent).
        self.reporter.deleted(id).await?;
        self.store.bury(id)?;
        tracing::info!(capsule = %id, "capsule deleted");
        Ok(())
    }

    async fn sync(&self, ids: &[Uuid]) -> Result<(), ManagerError> {
        for rec in self.store.list()? {
            if ids.is_empty() || ids.contains(&rec.spec.uuid) {
                self.refresh(rec).await?;
            }
        }
        Ok(())
    }

    /// Compares a remembered capsule with the runtime and reports what changed (or what is
    /// still owed).
    async fn refresh(&self, rec: Record) -> Result<(), ManagerError> {
        let id = rec.spec.uuid;
        let lock = self.lock(id);
        let _g = lock.lock().await;
        // Re-read under the lock: a request may have changed it meanwhile.
        let Some(mut rec) = self.store.get(id)? else {
            return Ok(());
        };
        if rec.deleting {
            tracing::warn!(capsule = %id, "finishing a delete interrupted by a restart");
            return self.delete_locked(id).await;
        }
        if !rec.settled {
            tracing::warn!(capsule = %id, "finishing a create interrupted by a restart");
            if let Err(e) = self.driver.delete(id).await {
                tracing::warn!(capsule = %id, error = %e, "cleanup of the interrupted create");
            }
            return self.build(rec.spec).await;
        }
        let actual = match self.driver.inspect(&rec.spec).await {
            Ok(Some(s)) => s,
            Ok(None) if rec.state.status == CapsuleStatus::Error => rec.state.clone(),
            Ok(None) => error_state(
                &rec.spec,
                "The capsule's containers are gone from this host.".into(),
            ),
            Err(e) => {
                tracing::warn!(capsule = %id, error = %e, "cannot inspect capsule");
                return Ok(());
            }
        };
        if actual != rec.state {
            tracing::info!(capsule = %id, status = %actual.status, "state changed");
            rec.state = actual;
            rec.unreported = true;
        }
        if rec.unreported {
            self.report(rec).await?;
        }
        Ok(())
    }

    /// Reconciles every remembered capsule with the runtime: on start, and on a timer.
    pub async fn reconcile(&self) -> Result<(), ManagerError> {
        for rec in self.store.list()? {
            self.refresh(rec).await?;
        }
        Ok(())
    }

    /// Reports every capsule's state again (on start, so the API hears of what happened while
    /// the agent was away).
    pub async fn report_all(&self) -> Result<(), ManagerError> {
        for mut rec in self.store.list()? {
            rec.unreported = true;
            self.store.put(&rec)?;
        }
        self.reconcile().await
    }
}
