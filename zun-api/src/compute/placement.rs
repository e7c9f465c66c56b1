//! Placement: which compute host takes a capsule or a volume. [`rank`] is the scheduler: which
//! hosts can take a request, best first. Filters: the service is up, enabled and not forced
//! down; it is in the requested availability zone; it has the CPU and memory left (with the
//! allocation ratios); none of the request's host ports is taken there. Weigher: most free
//! memory first (least loaded), then fewest capsules. The ranking is only advisory: for a
//! capsule, [`Placement::create_capsule`] tries the hosts in order, each with a claim in the
//! database (see `db::Claim`), and the first claim that holds is where it runs; a volume goes
//! to the first host ranked.

use std::time::Duration;

use capsule_types::rpc::COMPUTE_BINARY;
use chrono::Utc;
use db::{CapsuleRecord, Claim, Database, DbError, HostCandidate, NewCapsule};

use super::client::Unaddressed;
use crate::config::{ConductorConfig, Config, SchedulerConfig};

/// What a capsule or a volume needs from its host.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// CPUs.
    pub cpu: f64,
    /// Memory, MiB.
    pub memory_mib: i64,
    /// Host ports: `(protocol, port)`.
    pub ports: Vec<(String, u16)>,
    /// Requested zone.
    pub availability_zone: Option<String>,
}

/// Whether a compute service counts as up now (Zun's rule; see [`db::service_is_up`]).
pub fn service_is_up(svc: &db::entity::zun_service::Model, down_after: Duration) -> bool {
    db::service_is_up(svc, down_after, Utc::now())
}

/// The hosts that can take `req`, best first.
pub fn rank(
    candidates: Vec<HostCandidate>,
    req: &Request,
    sched: &SchedulerConfig,
    conductor: &ConductorConfig,
) -> Vec<String> {
    let down_after = Duration::from_secs(conductor.service_down_seconds);
    let want_zone = req
        .availability_zone
        .as_deref()
        .unwrap_or(&sched.default_availability_zone);
    let mut fit: Vec<(f64, i32, String)> = candidates
        .into_iter()
        .filter(|c| !c.service.disabled && service_is_up(&c.service, down_after))
        .filter(|c| {
            c.service
                .availability_zone
                .as_deref()
                .filter(|z| !z.is_empty())
                .unwrap_or(&sched.default_availability_zone)
                == want_zone
        })
        .filter(|c| c.taken_ports.is_empty())
        .filter_map(|c| {
            let n = &c.node;
            let free_mem = n.mem_total as f64 * sched.ram_allocation_ratio - n.mem_used as f64;
            let free_cpu = n.cpus * sched.cpu_allocation_ratio - n.cpu_used;
            (free_mem >= req.memory_mib as f64 && free_cpu >= req.cpu)
                .then(|| (free_mem, n.total_containers, n.hostname.clone()))
        })
        .collect();
    fit.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then_with(|| a.2.cmp(&b.2))
    });
    fit.into_iter().map(|(_, _, h)| h).collect()
}

/// Placement over the database's hosts with the configured ratios and zones.
#[derive(Clone, Copy, Debug)]
pub struct Placement<'a> {
    db: &'a Database,
    scheduler: &'a SchedulerConfig,
    conductor: &'a ConductorConfig,
}

/// Where a capsule went.
#[derive(Debug)]
pub struct Placed {
    /// The stored capsule.
    pub record: CapsuleRecord,
    /// The host whose claim held.
    pub host: String,
    /// The outbox entries written with it (to publish now).
    pub outbox: Vec<i32>,
}

impl<'a> Placement<'a> {
    /// Placement in `db` as `config` (`[scheduler]`, `[conductor]`) says.
    pub fn new(db: &'a Database, config: &'a Config) -> Self {
        Self {
            db,
            scheduler: &config.scheduler,
            conductor: &config.conductor,
        }
    }

    /// The hosts that can take `req`, best first.
    pub async fn ranked(&self, req: &Request) -> Result<Vec<String>, DbError> {
        let candidates = self
            .db
            .placement_candidates(COMPUTE_BINARY, &req.ports)
            .await?;
        Ok(rank(candidates, req, self.scheduler, self.conductor))
    }

    /// The host that will hold a new volume in `zone`: the first ranked of the hosts that are
    /// up there; none when there is none.
    pub async fn volume_host(&self, zone: &str) -> Result<Option<String>, DbError> {
        let req = Request {
            cpu: 0.0,
            memory_mib: 0,
            ports: vec![],
            availability_zone: Some(zone.to_owned()),
        };
        Ok(self.ranked(&req).await?.into_iter().next())
    }

    /// Places and stores the capsule `base` describes: tries the hosts ranked for `req` (only
    /// `pinned`, when its volumes pin it there) in order, each time with a claim of `req` on
    /// that host and `message` addressed to it, in one transaction; the first host whose claim
    /// holds keeps it. None when no host could take it (then nothing is stored).
    pub async fn create_capsule(
        &self,
        base: &NewCapsule,
        req: &Request,
        pinned: Option<&str>,
        message: &Unaddressed,
    ) -> Result<Option<Placed>, DbError> {
        let ranked = self.ranked(req).await?;
        for host in ranked.into_iter().filter(|h| pinned.is_none_or(|p| p == h)) {
            let mut new = base.clone();
            new.host = Some(host.clone());
            new.claim = Some(Claim {
                host: host.clone(),
                cpu: req.cpu,
                memory_mib: req.memory_mib,
                ports: req.ports.clone(),
                cpu_allocation_ratio: self.scheduler.cpu_allocation_ratio,
                ram_allocation_ratio: self.scheduler.ram_allocation_ratio,
            });
            new.outbox = vec![message.to(&host)];
            match self.db.create_capsule(new).await {
                Ok((record, outbox)) => {
                    return Ok(Some(Placed {
                        record,
                        host,
                        outbox,
                    }))
                }
                // Another create took what was left there first: try the next host.
                Err(DbError::ClaimFailed { host, reason }) => {
                    tracing::debug!(capsule = %base.uuid, %host, %reason, "claim refused");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use db::entity::{compute_node, zun_service};
    use serde_json::json;
    use std::collections::HashSet;

    fn host(name: &str, mem_total: i64, mem_used: i64, zone: Option<&str>) -> HostCandidate {
        let now = Utc::now();
        HostCandidate {
            service: zun_service::Model {
                id: 1,
                host: name.into(),
                binary: "zun-compute".into(),
                disabled: false,
                disabled_reason: None,
                last_seen_up: Some(now),
                forced_down: false,
                report_count: 1,
                availability_zone: zone.map(str::to_owned),
                stream_address: None,
                created_at: now,
                updated_at: None,
            },
            node: compute_node::Model {
                id: 1,
                uuid: "u".into(),
                hostname: name.into(),
                mem_total,
                mem_used,
                cpus: 2.0,
                cpu_used: 0.0,
                disk_total: 0,
                disk_used: 0,
                total_containers: 0,
                architecture: None,
                os_type: None,
                os: None,
                kernel_version: None,
                labels: json!({}),
                runtimes: json!([]),
                created_at: now,
                updated_at: None,
            },
            taken_ports: HashSet::new(),
        }
    }

    fn req(mem: i64) -> Request {
        Request {
            cpu: 0.5,
            memory_mib: mem,
            ports: vec![],
            availability_zone: None,
        }
    }

    #[test]
    fn filters_and_orders() {
        let s = SchedulerConfig::default();
        let c = ConductorConfig::default();
        let mut down = host("down", 4096, 0, None);
        down.service.last_seen_up = Some(Utc::now() - chrono::Duration::seconds(600));
        let mut disabled = host("disabled", 4096, 0, None);
        disabled.service.disabled = true;
        let mut forced = host("forced", 4096, 0, None);
        forced.service.forced_down = true;
        let mut ported = host("ported", 4096, 0, None);
        ported.taken_ports.insert(("tcp".into(), 80));
        let hosts = vec![
            host("busy", 4096, 3000, None),
            host("idle", 4096, 0, Some("nova")),
            host("full", 1024, 1000, None),
            host("elsewhere", 8192, 0, Some("az2")),
            down,
            disabled,
            forced,
            ported,
        ];
        assert_eq!(rank(hosts.clone(), &req(512), &s, &c), ["idle", "busy"]);
        let r = Request {
            availability_zone: Some("az2".into()),
            ..req(512)
        };
        assert_eq!(rank(hosts, &r, &s, &c), ["elsewhere"]);
    }
}
