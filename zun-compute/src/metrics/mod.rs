//! The agent's Prometheus metrics (`prometheus-client`), served with its health on the
//! `[metrics] listen` address (module `server`): RPC messages handled, reconcile passes and
//! heartbeats; how long each create and teardown step of a capsule took, and each run of
//! netavark and nft; and, read from the host at each scrape (module `capsules`), every running
//! capsule's containers' CPU time, working set, memory limit, restarts and OOM kills, the
//! capsule's network bytes, the shims that answer, and the broker connection's counters.
//!
//! One registry per process, as the `prometheus` and `metrics` crates keep theirs: the steps
//! and tools that record into it sit deep in the host drivers, and a handle threaded through
//! each would say nothing more. Labels take fixed sets of values (methods, step names, tools,
//! outcomes) and, for the host's capsules, their uuids: no label holds a name a user chose.

mod capsules;
pub mod server;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use capsules::Snapshot;

/// The content type of [`ComputeMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a handled RPC message.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// The request's method (`create_capsule`, ...).
    pub method: &'static str,
    /// `ack`, `reply`, `drop` or `retry`.
    pub outcome: &'static str,
}

/// Labels of something that went one of a few ways.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

/// Labels of a capsule step.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// `create` (the step done) or `teardown` (the step undone).
    pub op: &'static str,
    /// The step (`network`, `shim`, `firewall`, ...).
    pub step: &'static str,
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

/// Labels of a host tool's run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    /// `netavark` or `nft`.
    pub tool: &'static str,
    /// What it was asked (`setup`, `teardown`, `apply`, ...).
    pub command: &'static str,
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

fn duration_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn outcome(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "failed"
    }
}

/// The agent's metrics.
pub struct ComputeMetrics {
    registry: Mutex<Registry>,
    rpc: Family<RpcLabels, Counter>,
    reconciles: Family<OutcomeLabels, Counter>,
    heartbeats: Family<OutcomeLabels, Counter>,
    steps: Family<StepLabels, Histogram, fn() -> Histogram>,
    tools: Family<ToolLabels, Histogram, fn() -> Histogram>,
    snapshot: std::sync::Arc<capsules::Collected>,
}

impl std::fmt::Debug for ComputeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeMetrics").finish_non_exhaustive()
    }
}

static METRICS: OnceLock<ComputeMetrics> = OnceLock::new();

/// The process's metrics.
pub fn metrics() -> &'static ComputeMetrics {
    METRICS.get_or_init(ComputeMetrics::new)
}

impl ComputeMetrics {
    fn new() -> Self {
        let m = Self {
            registry: Mutex::new(Registry::with_prefix("zun_compute")),
            rpc: Family::default(),
            reconciles: Family::default(),
            heartbeats: Family::default(),
            steps: Family::new_with_constructor(duration_histogram),
            tools: Family::new_with_constructor(duration_histogram),
            snapshot: std::sync::Arc::default(),
        };
        let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.register(
            "rpc_handled",
            "RPC messages from the API handled, by method and outcome",
            m.rpc.clone(),
        );
        r.register(
            "reconcile_passes",
            "Reconciliation passes over every capsule of the host, by outcome",
            m.reconciles.clone(),
        );
        r.register(
            "heartbeats",
            "Heartbeats sent to the conductor (ok) or not sent (failed)",
            m.heartbeats.clone(),
        );
        r.register(
            "capsule_step_duration_seconds",
            "Time a step of a capsule's create took (op create), or its undo in a teardown or \
             rollback (op teardown), by step and outcome",
            m.steps.clone(),
        );
        r.register(
            "tool_duration_seconds",
            "Time a run of a host tool (netavark, nft) took, by command and outcome",
            m.tools.clone(),
        );
        r.register_collector(Box::new(m.snapshot.clone()));
        drop(r);
        m
    }

    /// Counts an RPC message of `method` handled with `outcome` (its disposition).
    pub fn rpc_handled(&self, method: &'static str, outcome: &'static str) {
        self.rpc.get_or_create(&RpcLabels { method, outcome }).inc();
    }

    /// Counts a reconciliation pass.
    pub fn reconcile(&self, ok: bool) {
        let outcome = outcome(ok);
        self.reconciles
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a heartbeat sent (or not).
    pub fn heartbeat(&self, ok: bool) {
        let outcome = outcome(ok);
        self.heartbeats
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Records a capsule step of `op` (`create` or `teardown`) that took `elapsed`.
    pub fn step(&self, op: &'static str, step: &'static str, ok: bool, elapsed: Duration) {
        self.steps
            .get_or_create(&StepLabels {
                op,
                step,
                outcome: outcome(ok),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a run of host tool `tool` that took `elapsed`.
    pub fn tool(&self, tool: &'static str, command: &'static str, ok: bool, elapsed: Duration) {
        self.tools
            .get_or_create(&ToolLabels {
                tool,
                command,
                outcome: outcome(ok),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The metrics as OpenMetrics text, with `snapshot` (the host's figures read now).
    pub fn render(&self, snapshot: Snapshot) -> String {
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        self.snapshot.set(snapshot);
        let mut text = String::new();
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests;
