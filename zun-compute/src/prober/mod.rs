//! The host's prober: runs every container's liveness, readiness and startup probes, as the
//! kubelet does. One task per capsule with probes: it asks the runtime how the containers
//! stand, runs the probes that are due (through [`RuntimeDriver::probe`], at once), and acts
//! on the verdicts (module `state`): a container whose liveness (or startup) probe failed is
//! reported `unhealthy` in its history and killed, and its restart policy applies; a change
//! of readiness is announced, so the manager reports the capsule again. Every container's
//! readiness is set on the states the manager reports ([`Prober::annotate`]).

mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capsule_types::rpc::{CapsuleSpec, CapsuleState, ContainerEvent, ContainerEventKind};
use capsule_types::CapsuleStatus;
use chrono::Utc;
use futures_util::future::join_all;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::chain::Chain;
use crate::reporter::Reporter;
use crate::runtime::{Act, RuntimeDriver};
pub use state::{Consequence, ContainerProbes, Which};

/// The longest the prober waits between two looks at a capsule (to see restarts soon).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What the capsules' tasks share.
#[derive(Debug)]
struct Shared {
    runtime: Arc<dyn RuntimeDriver>,
    reporter: Arc<Reporter>,
    /// The readiness of every container that has probes.
    ready: Mutex<HashMap<Uuid, bool>>,
    changes: broadcast::Sender<Uuid>,
}

impl Shared {
    fn set_ready(&self, capsule: Uuid, container: Uuid, ready: bool) {
        let changed = {
            let mut r = self.ready.lock().unwrap_or_else(|p| p.into_inner());
            r.insert(container, ready) != Some(ready)
        };
        if changed {
            tracing::info!(%capsule, %container, ready, "readiness changed");
            let _ = self.changes.send(capsule);
        }
    }
}

/// The host's prober.
#[derive(Debug)]
pub struct Prober {
    shared: Arc<Shared>,
    tasks: Mutex<HashMap<Uuid, tokio::task::JoinHandle<()>>>,
}

impl Prober {
    /// A prober running probes through `runtime`, reporting through `reporter`.
    pub fn new(runtime: Arc<dyn RuntimeDriver>, reporter: Arc<Reporter>) -> Self {
        Self {
            shared: Arc::new(Shared {
                runtime,
                reporter,
                ready: Mutex::default(),
                changes: broadcast::channel(1024).0,
            }),
            tasks: Mutex::default(),
        }
    }

    /// Capsules whose readiness changed (the manager reports them again).
    pub fn changes(&self) -> broadcast::Receiver<Uuid> {
        self.shared.changes.subscribe()
    }

    /// Probes `spec`'s containers from now on, if it has probes; idempotent. Must be called
    /// within a tokio runtime.
    pub fn watch(&self, spec: &CapsuleSpec) {
        let probed: Vec<_> = probed(spec).collect();
        if probed.is_empty() {
            return;
        }
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks.get(&spec.uuid).is_some_and(|t| !t.is_finished()) {
            return;
        }
        {
            let mut ready = self.shared.ready.lock().unwrap_or_else(|p| p.into_inner());
            for (c, _) in &probed {
                ready.entry(c.uuid).or_insert(false);
            }
        }
        let shared = self.shared.clone();
        let spec = spec.clone();
        tracing::debug!(capsule = %spec.uuid, containers = probed.len(), "probing");
        tasks.insert(spec.uuid, tokio::spawn(probe_capsule(shared, spec)));
    }

    /// Stops probing capsule `id` (deleted); idempotent.
    pub fn forget(&self, spec: &CapsuleSpec) {
        if let Some(t) = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&spec.uuid)
        {
            t.abort();
        }
        let mut ready = self.shared.ready.lock().unwrap_or_else(|p| p.into_inner());
        for c in &spec.containers {
            ready.remove(&c.uuid);
        }
    }

    /// Sets every container's readiness in `state`: a running container is ready unless it
    /// has probes that say otherwise.
    pub fn annotate(&self, state: &mut CapsuleState) {
        let ready = self.shared.ready.lock().unwrap_or_else(|p| p.into_inner());
        for c in &mut state.containers {
            let running = c.status == CapsuleStatus::Running;
            c.ready = Some(running && ready.get(&c.uuid).copied().unwrap_or(true));
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            t.abort();
        }
    }
}

/// The application containers of `spec` that have probes, with their template.
fn probed(
    spec: &CapsuleSpec,
) -> impl Iterator<
    Item = (
        &capsule_types::rpc::ContainerRef,
        &capsule_types::template::ContainerSpec,
    ),
> {
    spec.containers
        .iter()
        .filter(|c| !c.is_init)
        .filter_map(|c| {
            let t = spec.template.containers.get(c.position)?;
            (t.liveness_probe.is_some() || t.readiness_probe.is_some() || t.startup_probe.is_some())
                .then_some((c, t))
        })
}

/// One container as the prober follows it.
struct Followed {
    /// The start it follows (its restart count then).
    restarts: u32,
    probes: ContainerProbes,
}

/// Probes `spec`'s containers until aborted.
async fn probe_capsule(shared: Arc<Shared>, spec: CapsuleSpec) {
    let mut followed: HashMap<Uuid, Followed> = HashMap::new();
    loop {
        let now = Instant::now();
        let state = match shared.runtime.inspect(&spec).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                tokio::time::sleep(LOOK_EVERY).await;
                continue;
            }
            Err(e) => {
                tracing::debug!(capsule = %spec.uuid, error = %Chain(&e), "cannot inspect for probes");
                tokio::time::sleep(LOOK_EVERY).await;
                continue;
            }
        };
        // Who runs, and since which start.
        for (c, template) in probed(&spec) {
            let current = state.containers.iter().find(|s| s.uuid == c.uuid);
            match current {
                Some(s) if s.status == CapsuleStatus::Running => {
                    let fresh = followed
                        .get(&c.uuid)
                        .is_none_or(|f| f.restarts != s.restart_count);
                    if fresh {
                        if let Some(probes) = ContainerProbes::new(template, now) {
                            followed.insert(
                                c.uuid,
                                Followed {
                                    restarts: s.restart_count,
                                    probes,
                                },
                            );
                        }
                    }
                }
                _ => {
                    followed.remove(&c.uuid);
                }
            }
            let ready = followed.get(&c.uuid).is_some_and(|f| f.probes.ready());
            shared.set_ready(spec.uuid, c.uuid, ready);
        }
        // The probes due now, all at once.
        let due: Vec<_> = followed
            .iter()
            .flat_map(|(id, f)| f.probes.due(now).into_iter().map(move |d| (*id, d)))
            .collect();
        let results = join_all(due.iter().map(|(id, (_, probe))| {
            let shared = shared.clone();
            let spec = &spec;
            async move {
                let Some(c) = spec.containers.iter().find(|c| c.uuid == *id) else {
                    return Err("no such container".to_owned());
                };
                let timeout = Duration::from_secs(probe.timeout_seconds.into());
                // The runtime bounds the probe by `timeout`; this bounds the runtime.
                tokio::time::timeout(
                    timeout + Duration::from_secs(1),
                    shared.runtime.probe(spec, c, &probe.action, timeout),
                )
                .await
                .unwrap_or_else(|_| Err(format!("timed out after {} s", timeout.as_secs())))
            }
        }))
        .await;
        let done = Instant::now();
        for ((id, (which, _)), result) in due.into_iter().zip(results) {
            let Some(f) = followed.get_mut(&id) else {
                continue;
            };
            if let Err(why) = &result {
                tracing::debug!(capsule = %spec.uuid, container = %id, probe = which.name(), %why, "probe failed");
            }
            match f.probes.observe(which, &result, done) {
                Consequence::None => {}
                Consequence::Readiness(ready) => shared.set_ready(spec.uuid, id, ready),
                Consequence::Kill(why) => {
                    shared.set_ready(spec.uuid, id, false);
                    kill(&shared, &spec, id, why).await;
                }
            }
        }
        let next = followed
            .values()
            .filter_map(|f| f.probes.next_due())
            .min()
            .unwrap_or(done + LOOK_EVERY)
            .min(done + LOOK_EVERY);
        tokio::time::sleep_until(next.into()).await;
    }
}

/// Records why container `id` is unhealthy in its history, and kills it (its restart policy
/// then applies).
async fn kill(shared: &Shared, spec: &CapsuleSpec, id: Uuid, why: String) {
    let Some(c) = spec.containers.iter().find(|c| c.uuid == id) else {
        return;
    };
    tracing::warn!(capsule = %spec.uuid, container = %c.name, %why, "container unhealthy: killing it");
    let now = Utc::now();
    let event = ContainerEvent {
        capsule: spec.uuid,
        container: id,
        kind: ContainerEventKind::Unhealthy,
        started_at: now,
        finished_at: now,
        request_id: None,
        exit_code: None,
        error: Some(why),
    };
    if let Err(e) = shared.reporter.container_event(event).await {
        tracing::warn!(capsule = %spec.uuid, error = %Chain(&e), "unhealthy event not reported");
    }
    match shared
        .runtime
        .act(spec, std::slice::from_ref(c), Act::Fail)
        .await
    {
        Ok(outcomes) => {
            for o in outcomes.into_iter().filter_map(|o| o.error) {
                tracing::warn!(capsule = %spec.uuid, container = %c.name, error = %o, "cannot kill the unhealthy container");
            }
        }
        Err(e) => {
            tracing::warn!(capsule = %spec.uuid, container = %c.name, error = %Chain(&e), "cannot kill the unhealthy container");
        }
    }
    let _ = shared.changes.send(spec.uuid);
}
