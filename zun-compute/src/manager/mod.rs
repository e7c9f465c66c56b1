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
mod firewall;
pub mod volume;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use capsule_types::rpc::{ComputeRequest, ContainerReply};
use rpc::RpcError;
use serde::Serialize;
use uuid::Uuid;

use crate::firewall::SecurityGroups;
use crate::reporter::Reporter;
use crate::runtime::RuntimeDriver;
use crate::store::{Store, StoreError};
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
    reporter: Reporter,
    locks: StdMutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

impl Manager {
    /// A manager over `drivers`, remembering in `store`, reporting through `reporter`.
    pub fn new(drivers: Drivers, store: Store, reporter: Reporter) -> Self {
        Self {
            runtime: drivers.capsules,
            volumes: drivers.volumes,
            firewall: drivers.firewall,
            store,
            reporter,
            locks: StdMutex::new(HashMap::new()),
        }
    }

    /// The reporter (for heartbeats).
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// Serializes work on one capsule or volume.
    fn lock(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id).or_default().clone()
    }

    /// Carries out one request, cast or call.
    pub async fn handle(&self, req: ComputeRequest) -> Result<Outcome, ManagerError> {
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
            // The contract is ahead of this agent: its container operations come next.
            ComputeRequest::ContainerAction {
                capsule, action, ..
            } => {
                tracing::warn!(%capsule, action = action.zun_name(), "container actions are not supported by this agent yet");
            }
            ComputeRequest::ContainerCall { call, .. } => {
                return Ok(Outcome::reply(&ContainerReply::Unavailable {
                    message: format!("This compute host cannot {} yet.", call.name()),
                }))
            }
        }
        Ok(Outcome::Done)
    }
}
