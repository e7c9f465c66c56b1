//! What the host's capsules use, for the metrics: every capsule whose shim answers, its
//! containers' figures read from their cgroups, its network bytes from its namespace.

use futures_util::future::join_all;

use super::figures;
use super::PodRuntime;
use crate::runtime::{CapsuleUsage, ContainerUsage};
use crate::shim::{cgroup, ContainerState, Plan, Status};

impl PodRuntime {
    /// Every running capsule's figures (a capsule whose shim does not answer has none).
    pub(super) async fn usage_of_all(&self) -> Vec<CapsuleUsage> {
        let Ok(found) = self.dirs.list() else {
            return Vec::new();
        };
        let asked = join_all(found.into_iter().map(|(id, dir)| async move {
            let status = self.shims.status(&dir).await.ok()?;
            Some((id, dir, status))
        }))
        .await;
        let alive: Vec<_> = asked.into_iter().flatten().collect();
        tokio::task::spawn_blocking(move || {
            let Ok(h) = cgroup::hierarchies() else {
                return Vec::new();
            };
            let host = figures::host_memory();
            alive
                .into_iter()
                .filter_map(|(id, dir, status)| {
                    let plan = Plan::load(&dir).ok()?;
                    Some(capsule_usage(id, &plan, &status, &h, host))
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }
}

fn capsule_usage(
    id: uuid::Uuid,
    plan: &Plan,
    status: &Status,
    h: &[cgroup::Hierarchy],
    host: u64,
) -> CapsuleUsage {
    let (network_rx_bytes, network_tx_bytes) = status
        .sandbox_pid
        .map(figures::network_of)
        .unwrap_or((0, 0));
    let containers = status
        .containers
        .iter()
        .map(|c| {
            let cg = plan.cgroup_of(&c.name);
            let rel = cg.trim_start_matches('/');
            let running = c.state == ContainerState::Running;
            // A container that is not running has no cgroup to read.
            let f = if running {
                figures::read_figures(h, rel, host)
            } else {
                figures::Figures::default()
            };
            let cpu_ns = if running {
                figures::cpu_usage_ns(h, rel).unwrap_or(0)
            } else {
                0
            };
            ContainerUsage {
                container: c.uuid,
                running,
                cpu_seconds: cpu_ns as f64 / 1e9,
                memory_working_set_bytes: f.memory_working_set,
                memory_limit_bytes: f.memory_limit,
                restarts: c.restart_count,
                oom_kills: c.oom_kills,
            }
        })
        .collect();
    CapsuleUsage {
        capsule: id,
        network_rx_bytes,
        network_tx_bytes,
        containers,
    }
}
