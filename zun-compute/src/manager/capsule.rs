//! The manager's capsules: create, delete, sync and reconcile them through the runtime, and
//! answer for their logs. A redelivered create re-reports instead of rebuilding, a create for a
//! capsule deleted here is not honoured, a delete of an unknown capsule just reports it gone,
//! and a create interrupted by a restart is cleared and done again.

use capsule_types::rpc::{CapsuleSpec, CapsuleState, LogQuery, LogsReply};
use capsule_types::CapsuleStatus;
use tracing::Instrument;
use uuid::Uuid;

use super::{Manager, ManagerError};
use crate::chain::Chain;
use crate::store::{Record, StoreError};

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

impl Manager {
    /// The capsules this host has.
    pub fn capsules(&self) -> Result<Vec<Uuid>, StoreError> {
        Ok(self
            .store
            .list()?
            .into_iter()
            .map(|r| r.spec.uuid)
            .collect())
    }

    /// The logs of container `container` (its name) of capsule `id`, if this host has it.
    pub(super) async fn logs(&self, id: Uuid, container: &str, query: &LogQuery) -> LogsReply {
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
        self.runtime.logs(id, c, query).await
    }

    /// The runtime's stream of capsules that changed by themselves.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Uuid> {
        self.runtime.changes()
    }

    /// Creates the capsule unless this host has it or deleted it (`CreateCapsule`).
    pub(super) async fn create(&self, spec: CapsuleSpec) -> Result<(), ManagerError> {
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
            // A create was under way when the agent stopped.
            return self.redo(spec, "redoing an interrupted create").await;
        }
        self.build(spec).await
    }

    /// Clears the leftovers of an interrupted create and does it again.
    async fn redo(&self, spec: CapsuleSpec, why: &'static str) -> Result<(), ManagerError> {
        let id = spec.uuid;
        tracing::warn!(capsule = %id, "{why}");
        if let Err(e) = self.runtime.delete(id).await {
            tracing::warn!(capsule = %id, error = %Chain(&e), "cleanup of the interrupted create");
        }
        self.build(spec).await
    }

    /// Runs the runtime's create, remembering the intent first so a crash midway is redone.
    async fn build(&self, spec: CapsuleSpec) -> Result<(), ManagerError> {
        let id = spec.uuid;
        self.store.put(&Record {
            state: creating(&spec),
            spec: spec.clone(),
            settled: false,
            unreported: false,
            deleting: false,
            events_seen: 0,
        })?;
        let state = match self
            .runtime
            .create(&spec)
            .instrument(tracing::info_span!("create", capsule = %id))
            .await
        {
            Ok(s) => {
                tracing::info!(capsule = %id, status = %s.status, "capsule created");
                s
            }
            Err(e) => {
                tracing::warn!(capsule = %id, error = %Chain(&e), "capsule create failed");
                let mut s = error_state(&spec, Chain(&e).to_string());
                // The runtime undid the create: unless its undo left them, the volumes are
                // free for other capsules now.
                s.volumes_released = !self.volumes.held_by(id);
                s
            }
        };
        let mut state = state;
        if state.status != CapsuleStatus::Error {
            self.prober.watch(&spec);
        }
        self.prober.annotate(&mut state);
        let rec = Record {
            spec,
            state,
            settled: true,
            unreported: true,
            deleting: false,
            events_seen: 0,
        };
        self.store.put(&rec)?;
        self.report(rec).await?;
        // Created, started (or what went wrong since).
        self.report_runtime_events(id).await
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
                tracing::warn!(capsule = %rec.spec.uuid, error = %Chain(&e), "state report deferred");
                if !rec.unreported {
                    rec.unreported = true;
                    self.store.put(&rec)?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn delete(&self, id: Uuid) -> Result<(), ManagerError> {
        let lock = self.lock(id);
        let _g = lock.lock().await;
        self.delete_locked(id).await
    }

    /// Tears capsule `id` down and reports it deleted; the caller holds its lock. Marked
    /// `deleting` first, so that an agent killed half way finishes the delete when it starts
    /// again instead of reporting the half-torn-down capsule as broken.
    async fn delete_locked(&self, id: Uuid) -> Result<(), ManagerError> {
        if let Some(mut rec) = self.store.get(id)? {
            self.prober.forget(&rec.spec);
            if !rec.deleting {
                rec.deleting = true;
                self.store.put(&rec)?;
            }
        }
        let deleted = self
            .runtime
            .delete(id)
            .instrument(tracing::info_span!("delete", capsule = %id))
            .await;
        if let Err(e) = deleted {
            tracing::warn!(capsule = %id, error = %Chain(&e), "capsule delete failed");
            if let Some(mut rec) = self.store.get(id)? {
                rec.state = error_state(&rec.spec, format!("Delete failed: {}", Chain(&e)));
                rec.unreported = true;
                rec.deleting = false;
                self.store.put(&rec)?;
                return self.report(rec).await;
            }
        }
        // Report before forgetting: if the report fails, the request is retried and finds
        // the capsule still remembered (the runtime's delete is idempotent).
        self.reporter.deleted(id).await?;
        self.store.bury(id)?;
        tracing::info!(capsule = %id, "capsule deleted");
        Ok(())
    }

    pub(super) async fn sync(&self, ids: &[Uuid]) -> Result<(), ManagerError> {
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
        self.refresh_locked(id).await
    }

    /// [`Manager::refresh`] for a caller that holds the capsule's lock.
    pub(super) async fn refresh_locked(&self, id: Uuid) -> Result<(), ManagerError> {
        // Re-read under the lock: a request may have changed it meanwhile.
        let Some(mut rec) = self.store.get(id)? else {
            return Ok(());
        };
        if rec.deleting {
            tracing::warn!(capsule = %id, "finishing a delete interrupted by a restart");
            return self.delete_locked(id).await;
        }
        if !rec.settled {
            return self
                .redo(rec.spec, "finishing a create interrupted by a restart")
                .await;
        }
        let actual = match self.runtime.inspect(&rec.spec).await {
            Ok(Some(s)) => s,
            Ok(None) if rec.state.status == CapsuleStatus::Error => rec.state.clone(),
            Ok(None) => error_state(
                &rec.spec,
                "The capsule's containers are gone from this host.".into(),
            ),
            Err(e) => {
                tracing::warn!(capsule = %id, error = %Chain(&e), "cannot inspect capsule");
                return Ok(());
            }
        };
        let mut actual = actual;
        if actual.status != CapsuleStatus::Error {
            // After an agent restart too.
            self.prober.watch(&rec.spec);
        }
        self.prober.annotate(&mut actual);
        if actual != rec.state {
            tracing::info!(capsule = %id, status = %actual.status, "state changed");
            rec.state = actual;
            rec.unreported = true;
        }
        if rec.unreported {
            self.report(rec).await?;
        }
        self.report_runtime_events(id).await
    }

    /// Reports what the capsule's containers did by themselves since the last report; the
    /// runtime numbers its events, the store remembers the last one reported, so nothing is
    /// reported twice, across restarts too. The caller holds the capsule's lock.
    pub(super) async fn report_runtime_events(&self, id: Uuid) -> Result<(), ManagerError> {
        let Some(mut rec) = self.store.get(id)? else {
            return Ok(());
        };
        let events = match self.runtime.events(&rec.spec, rec.events_seen).await {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(capsule = %id, error = %Chain(&e), "no runtime events");
                return Ok(());
            }
        };
        let before = rec.events_seen;
        for e in events {
            let happened = capsule_types::rpc::ContainerEvent {
                capsule: id,
                container: e.container,
                kind: e.kind,
                started_at: e.at,
                finished_at: e.at,
                request_id: None,
                exit_code: e.exit_code,
                error: None,
            };
            if let Err(err) = self.reporter.container_event(happened).await {
                tracing::warn!(capsule = %id, error = %Chain(&err), "event report deferred");
                break;
            }
            rec.events_seen = rec.events_seen.max(e.seq);
        }
        if rec.events_seen != before {
            self.store.put(&rec)?;
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
