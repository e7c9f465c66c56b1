//! The conductor: consumes compute hosts' reports (`zun-conductor`) and writes them to the
//! database (capsule states, deletions, volumes, containers' history, heartbeats with their
//! stream addresses); reconciles each heartbeat with what the database places on that host (orphans on
//! the host are deleted, capsules the host lost are marked `Error`); fails capsules stuck in
//! `Creating` on hosts that stopped reporting; and runs the outbox's background publisher.
//! Any number of API processes may run it: reports are applied idempotently and in order.
//! It runs on a whole [`AppState`], so unlike the rest of `compute` it sits above the state.

use std::collections::HashSet;
use std::time::Duration;

use capsule_types::rpc::{ConductorEvent, Envelope, Heartbeat, COMPUTE_BINARY, CONDUCTOR_QUEUE};
use db::ReportOutcome;
use rpc::{Delivery, Disposition, QueueSpec, TypedHandler};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::placement::service_is_up;
use super::Dispatcher;
use crate::error::ErrorChain;
use crate::state::AppState;

/// How long a report waits before a retry when the database is unavailable.
const DB_RETRY: Duration = Duration::from_secs(1);

/// What the conductor runs; stop it with [`Conductor::stop`].
#[derive(Debug)]
pub struct Conductor {
    consumer: Option<rpc::ConsumerHandle>,
    tasks: Vec<JoinHandle<()>>,
}

impl Conductor {
    /// Starts the report consumer (if `[conductor] enabled`), the outbox publisher and the
    /// periodic check, on the state's bus.
    pub fn start(state: &AppState, dispatcher: &Dispatcher) -> Self {
        let cfg = &state.config.conductor;
        let mut tasks = vec![dispatcher.clone().spawn(Duration::from_secs(1))];
        let consumer = cfg.enabled.then(|| {
            let st = state.clone();
            let handler = TypedHandler::new(move |env: Envelope<ConductorEvent>, d: Delivery| {
                let st = st.clone();
                async move { handle(&st, env, d).await }
            });
            dispatcher.bus().consume(
                QueueSpec::named(CONDUCTOR_QUEUE, state.config.rpc.prefetch),
                handler,
            )
        });
        if cfg.enabled {
            tasks.push(spawn_checks(state.clone()));
        }
        Self { consumer, tasks }
    }

    /// Stops consuming and the background tasks.
    pub async fn stop(self) {
        if let Some(c) = self.consumer {
            c.stop().await;
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

async fn handle(state: &AppState, env: Envelope<ConductorEvent>, d: Delivery) -> Disposition {
    let span = tracing::info_span!(
        "report",
        message = %env.id,
        redelivered = d.redelivered,
    );
    async {
        let result = match &env.body {
            ConductorEvent::CapsuleState { host, seq, state: s } => {
                let r = state.db.apply_capsule_state_with(host, *seq, s).await;
                tracing::debug!(capsule = %s.capsule, %host, seq, status = %s.status, outcome = ?r.as_ref().ok(), "state report");
                if let (Ok((_, Some(project))), Some(fw)) = (&r, &state.firewall) {
                    // Its address changed: its groups' members did.
                    fw.project_changed(project).await;
                }
                r.map(|(o, _)| orphan(host, s.capsule, o))
            }
            ConductorEvent::CapsuleDeleted { host, seq, capsule } => {
                let r = state
                    .db
                    .apply_capsule_deleted_with(host, *seq, &capsule.to_string())
                    .await;
                tracing::debug!(%capsule, %host, seq, outcome = ?r.as_ref().ok(), "deletion report");
                if let (Ok((_, Some(project))), Some(fw)) = (&r, &state.firewall) {
                    // Its groups lost a member, and its host no longer has it.
                    fw.hosts_changed([host.clone()]);
                    fw.project_changed(project).await;
                }
                r.map(|_| None)
            }
            ConductorEvent::VolumeState {
                host,
                volume,
                state: vs,
                reason,
            } => {
                let r = state
                    .db
                    .apply_volume_state(host, &volume.to_string(), *vs, reason.as_deref())
                    .await;
                tracing::info!(%volume, %host, state = ?vs, reason = reason.as_deref().unwrap_or(""), applied = ?r.as_ref().ok(), "volume report");
                r.map(|_| None)
            }
            // The container's history: idempotent per (host, seq).
            ConductorEvent::ContainerEvent {
                host,
                seq,
                happened,
            } => {
                let r = state.db.apply_container_event(host, *seq, happened).await;
                tracing::debug!(%host, seq, container = %happened.container, kind = ?happened.kind, request_id = ?happened.request_id, outcome = ?r.as_ref().ok(), "container event");
                r.map(|_| None)
            }
            ConductorEvent::Heartbeat(hb) => heartbeat(state, hb)
                .await
                .map(|orphans| (!orphans.is_empty()).then(|| (hb.host.clone(), orphans))),
        };
        let lag = (chrono::Utc::now() - env.sent_at)
            .to_std()
            .unwrap_or_default();
        state
            .metrics
            .report(env.body.kind(), result.is_ok(), lag);
        match result {
            Ok(Some((host, orphans))) => {
                tell_delete(state, &host, &orphans).await;
                Disposition::Ack
            }
            Ok(None) => Disposition::Ack,
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot apply report; retrying");
                Disposition::Retry(DB_RETRY)
            }
        }
    }
    .instrument(span)
    .await
}

/// A report about a capsule the host should not have: tell the host to delete it.
fn orphan(
    host: &str,
    capsule: uuid::Uuid,
    outcome: ReportOutcome,
) -> Option<(String, Vec<uuid::Uuid>)> {
    matches!(
        outcome,
        ReportOutcome::UnknownCapsule | ReportOutcome::OtherHost
    )
    .then(|| (host.to_owned(), vec![capsule]))
}

/// Records a heartbeat and compares the host's capsules with the database's. Returns the
/// host's orphans (capsules the database does not place there).
async fn heartbeat(state: &AppState, hb: &Heartbeat) -> Result<Vec<uuid::Uuid>, db::DbError> {
    state.db.record_heartbeat(hb).await?;
    if let Some(fw) = &state.firewall {
        fw.heartbeat(
            &hb.host,
            hb.firewall_incarnation.as_deref(),
            hb.firewall_epoch,
        )
        .await?;
    }
    let placed = state.db.capsules_on_host(&hb.host).await?;
    let on_host: HashSet<String> = hb.capsules.iter().map(|u| u.to_string()).collect();
    let placed_ids: HashSet<&str> = placed.iter().map(|(u, ..)| u.as_str()).collect();
    let orphans = hb
        .capsules
        .iter()
        .filter(|u| !placed_ids.contains(u.to_string().as_str()))
        .copied()
        .collect();
    // Capsules the host should have but does not: only settled ones (a create may still be on
    // its way to the host), and only if this heartbeat is newer than the capsule's last report
    // (a heartbeat may have waited in the queue while the broker was away).
    let hb_seq = i64::try_from(hb.seq).unwrap_or(i64::MAX);
    let missing: Vec<String> = placed
        .into_iter()
        .filter(|(u, status, _, report_seq)| {
            !on_host.contains(u)
                && !matches!(status.as_str(), "Creating" | "Deleting" | "Error")
                && *report_seq > 0
                && *report_seq < hb_seq
        })
        .map(|(u, ..)| u)
        .collect();
    if !missing.is_empty() {
        tracing::warn!(host = %hb.host, ?missing, "capsules missing from their host");
        state
            .db
            .mark_missing_on_host(&hb.host, hb.seq, &missing)
            .await?;
    }
    Ok(orphans)
}

/// Tells `host` to delete `capsules` (best effort: the next heartbeat finds them again).
async fn tell_delete(state: &AppState, host: &str, capsules: &[uuid::Uuid]) {
    for &capsule in capsules {
        tracing::info!(%capsule, %host, "deleting an orphan capsule on its host");
        if let Err(e) = state.compute.delete_orphan(host, capsule).await {
            tracing::warn!(%capsule, %host, error = %ErrorChain(&e), "cannot send orphan delete");
        }
    }
}

/// Every `check_seconds`: capsules still `Creating` on a host that is down are failed.
fn spawn_checks(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let cfg = state.config.conductor.clone();
        let down_after = Duration::from_secs(cfg.service_down_seconds);
        loop {
            tokio::time::sleep(Duration::from_secs(cfg.check_seconds.max(1))).await;
            let candidates = match state.db.placement_candidates(COMPUTE_BINARY, &[]).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "cannot check hosts");
                    continue;
                }
            };
            let down: Vec<String> = candidates
                .into_iter()
                .filter(|c| !service_is_up(&c.service, down_after))
                .map(|c| c.service.host)
                .collect();
            if down.is_empty() {
                continue;
            }
            let secs = cfg.service_down_seconds;
            match state
                .db
                .fail_creating_on_hosts(&down, |h| {
                    format!("Compute host {h} stopped reporting (no heartbeat for {secs} s) while creating the capsule.")
                })
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::warn!(hosts = ?down, failed = n, "failed capsules of hosts that are down"),
                Err(e) => tracing::warn!(error = %ErrorChain(&e), "cannot fail stuck capsules"),
            }
        }
    })
}
