//! The one typed client of compute hosts: a method per compute operation, owning the envelope,
//! the host's queue (`zun-compute.<host>`), whether the operation is a cast or a call, and the
//! timeouts. Two kinds of methods:
//!
//! - operations that must survive a broker or API outage go through the transactional outbox:
//!   their method only *builds* the outbox entry ([`NewOutbox`]), which the caller writes in the
//!   same transaction as the rows the operation is about, and the [`Dispatcher`] publishes
//!   (`create_capsule`, `delete_capsule`, `create_volume`, `delete_volume`; the last is
//!   addressed inside the transaction that finds the volume's host);
//!   The lifecycle actions of containers (`container_action`) go the same way, written with
//!   the action's history row and the container's task state;
//! - casts that are made good later anyway (a firewall, an orphan's delete) and calls that
//!   answer the caller (logs, exec, top, stats, archives) go straight to the bus.
//!
//! [`Dispatcher`]: super::Dispatcher

use std::time::Duration;

use capsule_types::rpc::{
    compute_queue, CapsuleSpec, ComputeRequest, ContainerAction, ContainerCall, ContainerReply,
    Envelope, LogQuery, LogsReply,
};
use capsule_types::secgroup::HostFirewall;
use db::NewOutbox;
use rpc::{Bus, RpcError};
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// How long a firewall cast may wait for the broker (a host that misses one gets the next
/// when its heartbeat shows an old epoch).
const FIREWALL_PATIENCE: Duration = Duration::from_secs(2);
/// How long the cast telling a host to delete an orphan may wait for the broker (the next
/// heartbeat finds the orphan again).
const ORPHAN_PATIENCE: Duration = Duration::from_secs(5);
/// How long a call for a container's logs waits for the host's answer.
const LOGS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a non-interactive exec waits for the host's answer (the host bounds the command's
/// run below this).
const EXEC_TIMEOUT: Duration = Duration::from_secs(70);
/// How long the other calls on a container (top, stats, archives, resize, an interactive
/// exec's start) wait for the host's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a compute host could not be told or asked something.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// There is no message bus (`[rpc] url` is not set): no host can be reached.
    #[error("no message bus is configured")]
    NoBus,
    /// The request could not be encoded.
    #[error("cannot encode a request for the compute hosts")]
    Encode(#[source] serde_json::Error),
    /// The bus did not take the message, or the host did not answer in time.
    #[error("compute host {host} could not be reached")]
    Unreachable {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: RpcError,
    },
    /// The host's answer could not be read.
    #[error("malformed answer from compute host {host}")]
    BadReply {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: RpcError,
    },
}

/// A message for a host not chosen yet: encoded once, then addressed to each host tried.
#[derive(Clone, Debug)]
pub struct Unaddressed {
    payload: String,
    capsule_uuid: Option<String>,
}

impl Unaddressed {
    /// The outbox entry sending it to `host`.
    pub fn to(&self, host: &str) -> NewOutbox {
        NewOutbox {
            routing_key: compute_queue(host),
            payload: self.payload.clone(),
            capsule_uuid: self.capsule_uuid.clone(),
        }
    }
}

/// The client. Cheap to clone; without a bus it still builds outbox entries (they wait in the
/// outbox), but casts and calls fail with [`ComputeError::NoBus`].
#[derive(Clone, Debug, Default)]
pub struct ComputeClient {
    bus: Option<Bus>,
}

fn envelope(request: ComputeRequest, request_id: Option<&str>) -> Envelope<ComputeRequest> {
    Envelope::new(request, request_id.map(str::to_owned))
}

/// The outbox's form of a request: the envelope as JSON text.
fn encode(request: ComputeRequest, request_id: Option<&str>) -> Result<String, ComputeError> {
    serde_json::to_string(&envelope(request, request_id)).map_err(ComputeError::Encode)
}

/// The bus's form of a request: the envelope as JSON bytes (what `rpc::encode` writes).
fn encode_bytes(
    request: ComputeRequest,
    request_id: Option<&str>,
) -> Result<Vec<u8>, ComputeError> {
    serde_json::to_vec(&envelope(request, request_id)).map_err(ComputeError::Encode)
}

impl ComputeClient {
    /// A client sending through `bus`, or through none.
    pub fn new(bus: Option<Bus>) -> Self {
        Self { bus }
    }

    /// Whether there is a bus, so a host can be reached at all (without one, no host can take
    /// a capsule or a volume).
    pub fn is_connected(&self) -> bool {
        self.bus.is_some()
    }

    fn bus(&self) -> Result<&Bus, ComputeError> {
        self.bus.as_ref().ok_or(ComputeError::NoBus)
    }

    /// `create_capsule` (outbox): build and start `spec`; addressed once a host is chosen.
    pub fn create_capsule(
        &self,
        spec: CapsuleSpec,
        request_id: &str,
    ) -> Result<Unaddressed, ComputeError> {
        let capsule_uuid = Some(spec.uuid.to_string());
        let request = ComputeRequest::CreateCapsule {
            capsule: Box::new(spec),
        };
        Ok(Unaddressed {
            payload: encode(request, Some(request_id))?,
            capsule_uuid,
        })
    }

    /// `delete_capsule` (outbox): `host` tears capsule `capsule` down and reports it deleted.
    pub fn delete_capsule(
        &self,
        host: &str,
        capsule: Uuid,
        request_id: &str,
    ) -> Result<NewOutbox, ComputeError> {
        let payload = encode(ComputeRequest::DeleteCapsule { capsule }, Some(request_id))?;
        Ok(NewOutbox {
            routing_key: compute_queue(host),
            payload,
            capsule_uuid: Some(capsule.to_string()),
        })
    }

    /// `create_volume` (outbox): `host` makes volume `volume` of `size_gib` and reports it.
    pub fn create_volume(
        &self,
        host: &str,
        volume: Uuid,
        size_gib: u64,
        request_id: &str,
    ) -> Result<NewOutbox, ComputeError> {
        let request = ComputeRequest::CreateVolume { volume, size_gib };
        Ok(NewOutbox {
            routing_key: compute_queue(host),
            payload: encode(request, Some(request_id))?,
            capsule_uuid: None,
        })
    }

    /// `delete_volume` (outbox): the volume's host removes volume `volume` and its data, and
    /// reports it gone; addressed once the transaction finds the host.
    pub fn delete_volume(
        &self,
        volume: Uuid,
        request_id: &str,
    ) -> Result<Unaddressed, ComputeError> {
        let request = ComputeRequest::DeleteVolume { volume };
        Ok(Unaddressed {
            payload: encode(request, Some(request_id))?,
            capsule_uuid: None,
        })
    }

    /// `delete_capsule` (cast, best effort): `host` has capsule `capsule`, which the database
    /// does not place there.
    pub async fn delete_orphan(&self, host: &str, capsule: Uuid) -> Result<(), ComputeError> {
        let request = ComputeRequest::DeleteCapsule { capsule };
        self.cast(host, request, ORPHAN_PATIENCE).await
    }

    /// `set_firewall` (cast): `host` enforces `firewall` from now on.
    pub async fn set_firewall(
        &self,
        host: &str,
        firewall: HostFirewall,
    ) -> Result<(), ComputeError> {
        let request = ComputeRequest::SetFirewall {
            firewall: Box::new(firewall),
        };
        self.cast(host, request, FIREWALL_PATIENCE).await
    }

    /// `container_logs` (call): the lines `query` asks for of container `container` (by its
    /// name in the capsule) of capsule `capsule` on `host`.
    pub async fn container_logs(
        &self,
        host: &str,
        capsule: Uuid,
        container: &str,
        query: LogQuery,
        request_id: &str,
    ) -> Result<LogsReply, ComputeError> {
        let request = ComputeRequest::ContainerLogs {
            capsule,
            container: container.to_owned(),
            query,
        };
        self.call(host, request, LOGS_TIMEOUT, request_id).await
    }

    /// `container_action` (outbox): `host` does `action` to container `container` of capsule
    /// `capsule` (every application container when `None`) and reports each container's
    /// event with `request_id`.
    pub fn container_action(
        &self,
        host: &str,
        capsule: Uuid,
        container: Option<Uuid>,
        action: ContainerAction,
        request_id: &str,
    ) -> Result<NewOutbox, ComputeError> {
        let request = ComputeRequest::ContainerAction {
            capsule,
            container,
            action,
        };
        Ok(NewOutbox {
            routing_key: compute_queue(host),
            payload: encode(request, Some(request_id))?,
            capsule_uuid: Some(capsule.to_string()),
        })
    }

    /// `container_call` `exec`: runs `command` in the container; not `interactive`: its output
    /// and exit code; interactive: a session to attach to (with a terminal when `tty`).
    #[allow(clippy::too_many_arguments)]
    pub async fn exec(
        &self,
        host: &str,
        capsule: Uuid,
        container: Uuid,
        command: Vec<String>,
        interactive: bool,
        tty: bool,
        request_id: &str,
    ) -> Result<ContainerReply, ComputeError> {
        let call = ContainerCall::Exec {
            command,
            interactive,
            tty,
        };
        let timeout = if interactive {
            CALL_TIMEOUT
        } else {
            EXEC_TIMEOUT
        };
        self.container_call(host, capsule, container, call, timeout, request_id)
            .await
    }

    /// `container_call` `exec_resize`: the terminal of session `exec_id` is now `width` x
    /// `height`.
    #[allow(clippy::too_many_arguments)]
    pub async fn exec_resize(
        &self,
        host: &str,
        capsule: Uuid,
        container: Uuid,
        exec_id: Uuid,
        width: u16,
        height: u16,
        request_id: &str,
    ) -> Result<ContainerReply, ComputeError> {
        let call = ContainerCall::ExecResize {
            exec_id,
            width,
            height,
        };
        self.container_call(host, capsule, container, call, CALL_TIMEOUT, request_id)
            .await
    }

    /// `container_call` `top`: the container's processes, `ps` run with `ps_args`.
    pub async fn top(
        &self,
        host: &str,
        capsule: Uuid,
        container: Uuid,
        ps_args: Option<String>,
        request_id: &str,
    ) -> Result<ContainerReply, ComputeError> {
        let call = ContainerCall::Top { ps_args };
        self.container_call(host, capsule, container, call, CALL_TIMEOUT, request_id)
            .await
    }

    /// `container_call` `stats`: the container's resource figures now.
    pub async fn stats(
        &self,
        host: &str,
        capsule: Uuid,
        container: Uuid,
        request_id: &str,
    ) -> Result<ContainerReply, ComputeError> {
        let call = ContainerCall::Stats;
        self.container_call(host, capsule, container, call, CALL_TIMEOUT, request_id)
            .await
    }

    /// `container_call` `get_archive`: a tar archive of `path` in the container.
    pub async fn get_archive(
        &self,
        host: &str,
        capsule: Uuid,
        container: Uuid,
        path: String,
        request_id: &str,
    ) -> Result<ContainerReply, ComputeError> {
        let call = ContainerCall::GetArchive { path };
        self.container_call(host, capsule, container, call, CALL_TIMEOUT, request_id)
            .await
    }

    /// `container_call` `put_archive`: extracts the tar archive `data` (base64) into directory
    /// `path` of the container.
    pub async fn put_archive(
        &self,
        host: &str,
        capsule: Uuid,
        container: Uuid,
        path: String,
        data: String,
        request_id: &str,
    ) -> Result<ContainerReply, ComputeError> {
        let call = ContainerCall::PutArchive { path, data };
        self.container_call(host, capsule, container, call, CALL_TIMEOUT, request_id)
            .await
    }

    async fn container_call(
        &self,
        host: &str,
        capsule: Uuid,
        container: Uuid,
        call: ContainerCall,
        timeout: Duration,
        request_id: &str,
    ) -> Result<ContainerReply, ComputeError> {
        let request = ComputeRequest::ContainerCall {
            capsule,
            container,
            call,
        };
        self.call(host, request, timeout, request_id).await
    }

    /// Sends `request` to `host` and waits up to `timeout` for its answer.
    async fn call<R: DeserializeOwned>(
        &self,
        host: &str,
        request: ComputeRequest,
        timeout: Duration,
        request_id: &str,
    ) -> Result<R, ComputeError> {
        let bus = self.bus()?;
        let payload = encode_bytes(request, Some(request_id))?;
        let answer = bus
            .call(&compute_queue(host), &payload, timeout)
            .await
            .map_err(|source| ComputeError::Unreachable {
                host: host.to_owned(),
                source,
            })?;
        let reply: Envelope<R> = rpc::decode(&answer).map_err(|source| ComputeError::BadReply {
            host: host.to_owned(),
            source,
        })?;
        Ok(reply.body)
    }

    async fn cast(
        &self,
        host: &str,
        request: ComputeRequest,
        patience: Duration,
    ) -> Result<(), ComputeError> {
        let bus = self.bus()?;
        let payload = encode_bytes(request, None)?;
        bus.publish(&compute_queue(host), &payload, patience)
            .await
            .map_err(|source| ComputeError::Unreachable {
                host: host.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_types::rpc::COMPUTE_TOPIC;

    fn decoded(payload: &str) -> Envelope<ComputeRequest> {
        rpc::decode(payload.as_bytes()).unwrap()
    }

    #[test]
    fn outbox_entries_go_to_the_hosts_queue_with_the_request_id() {
        let c = ComputeClient::default();
        let capsule = Uuid::new_v4();
        let e = c.delete_capsule("h1", capsule, "req-1").unwrap();
        assert_eq!(e.routing_key, format!("{COMPUTE_TOPIC}.h1"));
        assert_eq!(e.capsule_uuid, Some(capsule.to_string()));
        let env = decoded(&e.payload);
        assert_eq!(env.request_id.as_deref(), Some("req-1"));
        assert_eq!(env.body, ComputeRequest::DeleteCapsule { capsule });

        let volume = Uuid::new_v4();
        let e = c.create_volume("h2", volume, 3, "req-2").unwrap();
        assert_eq!(e.routing_key, compute_queue("h2"));
        assert_eq!(e.capsule_uuid, None);
        assert_eq!(
            decoded(&e.payload).body,
            ComputeRequest::CreateVolume {
                volume,
                size_gib: 3
            }
        );
    }

    #[tokio::test]
    async fn without_a_bus_casts_and_calls_fail_and_entries_still_build() {
        let c = ComputeClient::new(None);
        assert!(!c.is_connected());
        let err = c.delete_orphan("h", Uuid::new_v4()).await.unwrap_err();
        assert!(matches!(err, ComputeError::NoBus), "{err}");
        let err = c
            .container_logs("h", Uuid::new_v4(), "c", LogQuery::default(), "r")
            .await
            .unwrap_err();
        assert!(matches!(err, ComputeError::NoBus), "{err}");
        assert!(c.delete_capsule("h", Uuid::new_v4(), "r").is_ok());
        let err = c.stats("h", Uuid::new_v4(), Uuid::new_v4(), "r").await;
        assert!(matches!(err, Err(ComputeError::NoBus)));
    }

    #[test]
    fn container_actions_go_to_the_capsules_host_with_the_request_id() {
        let c = ComputeClient::default();
        let capsule = Uuid::new_v4();
        let action = ContainerAction::Kill { signal: 15 };
        let e = c
            .container_action("h3", capsule, None, action.clone(), "req-9")
            .unwrap();
        assert_eq!(e.routing_key, compute_queue("h3"));
        assert_eq!(e.capsule_uuid, Some(capsule.to_string()));
        let env = decoded(&e.payload);
        assert_eq!(env.request_id.as_deref(), Some("req-9"));
        let want = ComputeRequest::ContainerAction {
            capsule,
            container: None,
            action,
        };
        assert_eq!(env.body, want);
    }
}
