//! The capsule manager: carries out the API's requests for this host, remembers every capsule
//! in the store, and reports every state change. Every request, cast or call, goes through
//! [`Manager::handle`], which returns an [`Outcome`]: done, or a reply to send. Adding a call
//! is one arm there and one method here.
//!
//! Its members, one per kind of request: capsules through the runtime ([`RuntimeDriver`],
//! module `capsule`), volumes ([`volume::Volumes`]) and the host's security groups
//! ([`SecurityGroups`], shared with the pod runtime; module `firewall`). Every handler is
//! idempotent.

mod capsule;
mod container;
mod firewall;
pub mod volume;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use capsule_types::rpc::ComputeRequest;
use rpc::RpcError;
use serde::Serialize;
use uuid::Uuid;

use crate::firewall::SecurityGroups;
use crate::reporter::Reporter;
use crate::runtime::RuntimeDriver;
use crate::store::{Store, StoreError};
use crate::stream::Streams;
pub use container::{ExecLimits, EXEC_TIMED_OUT, MAX_EXEC_ARGS, MAX_EXEC_BYTES};
use volume::Volumes;

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

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// Done (a cast, or a call with nothing to answer).
    Done,
    /// A call's answer: the reply's body.
    Reply(serde_json::Value),
    /// A call that cannot be answered: why (the request is dropped).
    Unanswerable(String),
}

impl Outcome {
    /// The answer `value` to a call.
    pub fn reply<T: Serialize>(value: &T) -> Self {
        match serde_json::to_value(value) {
            Ok(v) => Outcome::Reply(v),
            Err(e) => Outcome::Unanswerable(format!("cannot encode the reply: {e}")),
        }
    }
}

/// The host as the manager reaches it: one member per kind of request.
#[derive(Clone, Debug)]
pub struct Drivers {
    /// Capsules.
    pub capsules: Arc<dyn RuntimeDriver>,
    /// Volumes.
    pub volumes: Volumes,
    /// Security groups.
    pub firewall: Arc<SecurityGroups>,
}

/// The manager of one host.
#[derive(Debug)]
pub struct Manager {
    runtime: Arc<dyn RuntimeDriver>,
    volumes: Volumes,
    firewall: Arc<SecurityGroups>,
    store: Store,
    reporter: Arc<Reporter>,
    prober: crate::prober::Prober,
    locks: StdMutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    streams: std::sync::OnceLock<Arc<Streams>>,
    exec_limits: ExecLimits,
}

impl Manager {
    /// A manager over `drivers`, remembering in `store`, reporting through `reporter`.
    pub fn new(drivers: Drivers, store: Store, reporter: Reporter) -> Self {
        let reporter = Arc::new(reporter);
        Self {
            prober: crate::prober::Prober::new(drivers.capsules.clone(), reporter.clone()),
            runtime: drivers.capsules,
            volumes: drivers.volumes,
            firewall: drivers.firewall,
            store,
            reporter,
            locks: StdMutex::new(HashMap::new()),
            streams: std::sync::OnceLock::new(),
            exec_limits: ExecLimits::default(),
        }
    }

    /// The same manager with non-interactive execs bounded by `limits`.
    pub fn with_exec_limits(mut self, limits: ExecLimits) -> Self {
        self.exec_limits = limits;
        self
    }

    /// Gives the manager the host's stream listener (interactive execs); once.
    pub fn set_streams(&self, streams: Arc<Streams>) {
        let _ = self.streams.set(streams);
    }

    /// The stream listener's sessions, if the host has one.
    pub fn streams(&self) -> Option<Arc<Streams>> {
        self.streams.get().cloned()
    }

    /// The stream listener's address, if the host has one (for heartbeats).
    pub fn stream_address(&self) -> Option<String> {
        self.streams.get().map(|s| s.address().to_owned())
    }

    /// The runtime (the stream listener starts execs through it).
    pub fn runtime(&self) -> &Arc<dyn RuntimeDriver> {
        &self.runtime
    }

    /// The reporter (for heartbeats).
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// Capsules whose containers' readiness changed, or that the prober found unhealthy.
    pub fn probe_changes(&self) -> tokio::sync::broadcast::Receiver<Uuid> {
        self.prober.changes()
    }

    /// Serializes work on one capsule or volume.
    fn lock(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id).or_default().clone()
    }

    /// Carries out one request, cast or call; `request_id` is its envelope's (the API's
    /// request, which container events carry back).
    pub async fn handle(
        &self,
        req: ComputeRequest,
        request_id: Option<String>,
    ) -> Result<Outcome, ManagerError> {
        match req {
            ComputeRequest::CreateCapsule { capsule } => self.create(*capsule).await?,
            ComputeRequest::DeleteCapsule { capsule } => self.delete(capsule).await?,
            ComputeRequest::SyncCapsules { capsules } => self.sync(&capsules).await?,
            ComputeRequest::SetFirewall { firewall } => self.set_firewall(*firewall).await?,
            ComputeRequest::CreateVolume { volume, size_gib } => {
                self.create_volume(volume, size_gib).await?
            }
            ComputeRequest::DeleteVolume { volume } => self.delete_volume(volume).await?,
            ComputeRequest::ContainerLogs {
                capsule,
                container,
                query,
            } => {
                return Ok(Outcome::reply(
                    &self.logs(capsule, &container, &query).await,
                ))
            }
            ComputeRequest::ContainerAction {
                capsule,
                container,
                action,
            } => {
                self.container_action(capsule, container, action, request_id)
                    .await?
            }
            ComputeRequest::ContainerCall {
                capsule,
                container,
                call,
            } => {
                let reply = self
                    .container_call(capsule, container, call, request_id)
                    .await?;
                return Ok(Outcome::reply(&reply));
            }
        }
        Ok(Outcome::Done)
    }
}
