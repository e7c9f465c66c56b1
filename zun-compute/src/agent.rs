//! The agent: consumes this host's queue, hands every request to the manager and turns its
//! outcome into the message's disposition (ack, reply, drop or retry), and keeps heartbeats
//! and reconciliation going, until told to stop. Capsules keep running while the agent is down
//! (their runtime does not depend on it); on start it reports every capsule it has again.

use std::sync::Arc;
use std::time::Duration;

use capsule_types::rpc::{compute_queue, ComputeRequest, Envelope, Heartbeat, COMPUTE_BINARY};
use rpc::{Bus, Delivery, Disposition, QueueSpec, TypedHandler};
use tokio::sync::watch;
use tracing::Instrument;

use crate::chain::Chain;
use crate::config::Config;
use crate::manager::{Manager, Outcome};
use crate::metrics::metrics;
use crate::metrics::server::{self as metrics_server, Health};

/// The next change the driver announces; never, once its channel closed.
async fn next_change(
    changes: &mut Option<tokio::sync::broadcast::Receiver<uuid::Uuid>>,
) -> Result<uuid::Uuid, tokio::sync::broadcast::error::RecvError> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Where a change comes from: the runtime (a container exited, restarted...) or the prober
/// (a readiness changed, an unhealthy container was killed).
const RUNTIME: &str = "runtime";
const PROBER: &str = "prober";

/// The next capsule the runtime or the prober announces, with where it came from.
async fn next_of(
    runtime: &mut Option<tokio::sync::broadcast::Receiver<uuid::Uuid>>,
    prober: &mut Option<tokio::sync::broadcast::Receiver<uuid::Uuid>>,
) -> (
    &'static str,
    Result<uuid::Uuid, tokio::sync::broadcast::error::RecvError>,
) {
    tokio::select! {
        c = next_change(runtime) => (RUNTIME, c),
        c = next_change(prober) => (PROBER, c),
    }
}

/// A running agent.
pub struct Agent {
    manager: Arc<Manager>,
    bus: Bus,
    config: Config,
    host: String,
    stream_listener: Option<std::net::TcpListener>,
    metrics_listener: Option<std::net::TcpListener>,
    health: Arc<Health>,
}

impl Agent {
    /// An agent for `config`'s host, with its stream listener bound (`[stream] listen`; a
    /// listener that cannot be bound is logged and the host goes without interactive exec).
    pub fn new(manager: Manager, bus: Bus, config: Config) -> Self {
        let host = config.host();
        let manager = manager.with_exec_limits(crate::manager::ExecLimits {
            timeout: Duration::from_secs(config.pod.exec_timeout_seconds.max(1)),
            output_max: config.pod.exec_output_max_bytes,
        });
        let stream_listener = match crate::stream::bind(&config.stream, manager.runtime().clone()) {
            Ok(Some((listener, streams))) => {
                tracing::info!(address = streams.address(), "stream listener bound");
                manager.set_streams(streams);
                Some(listener)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(listen = %config.stream.listen, "cannot bind the stream listener: {e}; no interactive exec on this host");
                None
            }
        };
        let metrics_listener = match metrics_server::bind(&config.metrics) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(listen = %config.metrics.listen, "cannot bind the metrics listener: {e}; no metrics or health from this host");
                None
            }
        };
        let health = Arc::new(Health::new(Duration::from_secs(
            config.compute.heartbeat_seconds.max(1),
        )));
        Self {
            manager: Arc::new(manager),
            bus,
            config,
            host,
            stream_listener,
            metrics_listener,
            health,
        }
    }

    /// Where the stream listener accepts connections, as heartbeats report it.
    pub fn stream_address(&self) -> Option<String> {
        self.manager.stream_address()
    }

    /// The manager (tests inspect it).
    pub fn manager(&self) -> &Arc<Manager> {
        &self.manager
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let host = self.host.clone();
        let streams = self.manager.streams();
        if let (Some(listener), Some(streams)) = (self.stream_listener.take(), streams) {
            let stop = stop.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::stream::serve(listener, streams, stop).await {
                    tracing::error!("stream listener failed: {e}");
                }
            });
        }
        if let Some(listener) = self.metrics_listener.take() {
            if let Ok(a) = listener.local_addr() {
                tracing::info!(address = %a, "metrics listener bound");
            }
            let source = metrics_server::Source {
                runtime: self.manager.runtime().clone(),
                bus: self.bus.clone(),
                health: self.health.clone(),
            };
            let stop = stop.clone();
            tokio::spawn(async move {
                if let Err(e) = metrics_server::serve(listener, source, stop).await {
                    tracing::error!("metrics listener failed: {e}");
                }
            });
        }
        tracing::info!(%host, queue = %compute_queue(&host), "zun-compute starting");
        // First tell the API how things stand: what happened while we were away.
        self.heartbeat().await;
        if let Err(e) = self.manager.report_all().await {
            tracing::warn!(error = %Chain(&e), "initial report incomplete; reconciliation retries");
        }
        let manager = self.manager.clone();
        let span_host = host.clone();
        let handler = TypedHandler::new(move |env: Envelope<ComputeRequest>, d: Delivery| {
            let manager = manager.clone();
            let span = tracing::info_span!(
                "rpc",
                host = %span_host,
                message = %env.id,
                method = env.body.method(),
                capsule = ?env.body.capsule(),
                request_id = env.request_id.as_deref().unwrap_or("-"),
                redelivered = d.redelivered,
            );
            async move {
                let method = env.body.method();
                let disposition = match manager.handle(env.body, env.request_id).await {
                    Ok(Outcome::Done) => Disposition::Ack,
                    Ok(Outcome::Reply(_)) if !d.wants_reply => {
                        Disposition::Drop(format!("{method} sent without a reply queue"))
                    }
                    Ok(Outcome::Reply(body)) => match rpc::encode(&Envelope::new(body, None)) {
                        Ok(body) => Disposition::Reply(body),
                        Err(e) => {
                            Disposition::Drop(format!("cannot encode the {method} reply: {e}"))
                        }
                    },
                    Ok(Outcome::Unanswerable(why)) => Disposition::Drop(why),
                    Err(e) => {
                        tracing::warn!(error = %Chain(&e), "request failed; it will be retried");
                        Disposition::Retry(Duration::from_secs(1))
                    }
                };
                let outcome = match &disposition {
                    Disposition::Ack => "ack",
                    Disposition::Reply(_) => "reply",
                    Disposition::Drop(_) => "drop",
                    Disposition::Retry(_) => "retry",
                };
                metrics().rpc_handled(method, outcome);
                disposition
            }
            .instrument(span)
        });
        let consumer = self.bus.consume(
            QueueSpec::named(&compute_queue(&host), self.config.rpc.prefetch),
            handler,
        );
        let hb_every = Duration::from_secs(self.config.compute.heartbeat_seconds.max(1));
        let rc_every = Duration::from_secs(self.config.compute.reconcile_seconds.max(1));
        let mut hb = tokio::time::interval(hb_every);
        let mut rc = tokio::time::interval(rc_every);
        hb.tick().await;
        rc.tick().await;
        // The firewall's kernel state, more often than the rest: a flushed table leaves every
        // capsule unprotected until it is back.
        let fw_every = self.config.firewall.check_seconds;
        let mut fw = tokio::time::interval(Duration::from_secs(fw_every.max(1)));
        fw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        fw.tick().await;
        let mut changes = Some(self.manager.changes());
        let mut probed = Some(self.manager.probe_changes());
        loop {
            tokio::select! {
                (from, changed) = next_of(&mut changes, &mut probed) => match changed {
                    Ok(capsule) => {
                        if let Err(e) = self.manager.handle(ComputeRequest::SyncCapsules {
                            capsules: vec![capsule],
                        }, None).await {
                            tracing::warn!(%capsule, from, error = %Chain(&e), "cannot report a change; reconciliation retries");
                        }
                    }
                    // Missed some: the reconcile timer catches up.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, from, "changes missed; reconciling");
                    }
                    // Its sender is gone (only at shutdown): the timer still reconciles.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) if from == RUNTIME => {
                        changes = None;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => probed = None,
                },
                _ = hb.tick() => self.heartbeat().await,
                _ = fw.tick(), if fw_every > 0 => self.manager.check_firewall().await,
                _ = rc.tick() => {
                    let passed = self.manager.reconcile().await;
                    if let Err(e) = &passed {
                        tracing::warn!(error = %Chain(e), "reconciliation failed");
                    }
                    metrics().reconcile(passed.is_ok());
                }
                _ = stop.changed() => break,
            }
        }
        consumer.stop().await;
        tracing::info!("zun-compute stopped");
    }

    async fn heartbeat(&self) {
        // Number first, list second (see `Reporter::seq`).
        let seq = self.manager.reporter().seq();
        let capsules = match self.manager.capsules() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "cannot list capsules for the heartbeat");
                self.health
                    .heartbeat(Err(format!("cannot list capsules: {}", Chain(&e))));
                metrics().heartbeat(false);
                return;
            }
        };
        let hb = Heartbeat {
            host: self.host.clone(),
            binary: COMPUTE_BINARY.into(),
            availability_zone: self.config.compute.availability_zone.clone(),
            resources: crate::host::resources(&self.config.resources),
            capsules,
            seq,
            firewall_epoch: self.manager.firewall_epoch(),
            firewall_incarnation: self.manager.firewall_incarnation(),
            stream_address: self.manager.stream_address(),
        };
        let sent = self.manager.reporter().heartbeat(hb).await;
        if let Err(e) = &sent {
            tracing::warn!(error = %Chain(e), "heartbeat not sent");
        }
        metrics().heartbeat(sent.is_ok());
        self.health
            .heartbeat(sent.map_err(|e| Chain(&e).to_string()));
    }
}
