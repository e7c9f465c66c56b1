//! The compute agent: receives capsule work for its host over AMQP (`zun-compute.<host>`), runs
//! it through its drivers, remembers it across restarts, and reports every state change and a
//! heartbeat to the conductor. It holds broker credentials only, never the database's.
//!
//! Layers, top down: `agent` (the queue, timers) -> `manager` (every request: capsules,
//! volumes, security groups) -> `runtime` (what runs a capsule: the pod orchestrator or the
//! fake) -> the host parts, each a driver trait with its real implementation and a recording
//! fake: `image`, `network`, `shim`, `volume`, `layer`, `firewall`. `start` picks them from the
//! configuration. Beside the queue, `stream` is the host's stream listener (interactive exec
//! over WebSocket); `metrics` is its metrics and health listener.

pub mod agent;
pub mod chain;
pub mod cli;
pub mod config;
pub mod firewall;
pub mod host;
pub mod image;
pub mod layer;
pub mod logs;
pub mod manager;
pub mod metrics;
pub mod network;
mod notes;
pub mod prober;
pub mod recorder;
pub mod reporter;
pub mod reserve;
pub mod runtime;
pub mod shim;
pub mod start;
pub mod store;
pub mod stream;
pub mod volume;

pub use agent::Agent;
pub use config::Config;
pub use start::{fake_agent, pod_agent, StartError};
