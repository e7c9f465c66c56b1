//! Placement: the state of compute hosts as the scheduler sees it, and the atomic claim of a
//! capsule's resources and host ports on the host it chose (released when the capsule goes).

use std::collections::HashSet;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, SqlErr,
};

use crate::entity::{capsule, compute_node, host_port, zun_service};
use crate::{Database, DbError};

/// What a capsule takes on its host.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The host.
    pub host: String,
    /// CPUs.
    pub cpu: f64,
    /// Memory, MiB.
    pub memory_mib: i64,
    /// Published ports: `(protocol, port)`.
    pub ports: Vec<(String, u16)>,
    /// How far CPUs may be overcommitted (Nova's `cpu_allocation_ratio`).
    pub cpu_allocation_ratio: f64,
    /// How far memory may be overcommitted.
    pub ram_allocation_ratio: f64,
}

/// A compute host the scheduler may pick.
#[derive(Clone, Debug, PartialEq)]
pub struct HostCandidate {
    /// Its service (liveness, disabled, zone).
    pub service: zun_service::Model,
    /// Its resources and usage.
    pub node: compute_node::Model,
    /// Those of the asked-for ports it already has taken.
    pub taken_ports: HashSet<(String, u16)>,
}

impl Database {
    /// Every registered compute host with its usage, and which of `ports` each has taken.
    pub async fn placement_candidates(
        &self,
        binary: &str,
        ports: &[(String, u16)],
    ) -> Result<Vec<HostCandidate>, DbError> {
        let services = zun_service::Entity::find()
            .filter(zun_service::Column::Binary.eq(binary))
            .all(&self.conn)
            .await
            .map_err(DbError::query("listing compute services"))?;
        let nodes = compute_node::Entity::find()
            .all(&self.conn)
            .await
            .map_err(DbError::query("listing compute nodes"))?;
        let taken = if ports.is_empty() {
            Vec::new()
        } else {
            host_port::Entity::find()
                .filter(host_port::Column::Port.is_in(ports.iter().map(|(_, p)| i32::from(*p))))
                .all(&self.conn)
                .await
                .map_err(DbError::query("listing taken host ports"))?
        };
        Ok(services
            .into_iter()
            .filter_map(|service| {
                let node = nodes.iter().find(|n| n.hostname == service.host)?.clone();
                let taken_ports = taken
                    .iter()
                    .filter(|t| t.host == service.host)
                    .filter_map(|t| Some((t.protocol.clone(), u16::try_from(t.port).ok()?)))
                    .filter(|p| ports.contains(p))
                    .collect();
                Some(HostCandidate {
                    service,
                    node,
                    taken_ports,
                })
            })
            .collect())
    }
}

/// Takes the claim's CPU and memory on its host if they fit, in the caller's transaction.
/// `Ok(Err(reason))` when they do not.
pub(crate) async fn claim_resources<C: ConnectionTrait>(
    db: &C,
    claim: &Claim,
) -> Result<Result<(), String>, DbErr> {
    use compute_node::Column as N;
    let res = compute_node::Entity::update_many()
        .col_expr(N::MemUsed, Expr::col(N::MemUsed).add(claim.memory_mib))
        .col_expr(N::CpuUsed, Expr::col(N::CpuUsed).add(claim.cpu))
        .col_expr(N::TotalContainers, Expr::col(N::TotalContainers).add(1))
        .filter(N::Hostname.eq(claim.host.as_str()))
        .filter(
            Expr::col(N::MemUsed)
                .add(claim.memory_mib)
                .lte(Expr::col(N::MemTotal).mul(claim.ram_allocation_ratio)),
        )
        .filter(
            Expr::col(N::CpuUsed)
                .add(claim.cpu)
                .lte(Expr::col(N::Cpus).mul(claim.cpu_allocation_ratio)),
        )
        .exec(db)
        .await?;
    Ok(if res.rows_affected == 1 {
        Ok(())
    } else {
        Err(format!(
            "not enough CPU or memory left for {} CPU and {} MiB",
            claim.cpu, claim.memory_mib
        ))
    })
}

/// Takes the claim's host ports for capsule `capsule_id`, in the caller's transaction.
/// `Ok(Err(reason))` when one is taken (the caller must then roll back).
pub(crate) async fn claim_ports<C: ConnectionTrait>(
    db: &C,
    claim: &Claim,
    capsule_id: i32,
) -> Result<Result<(), String>, DbErr> {
    for (protocol, port) in &claim.ports {
        let res = host_port::ActiveModel {
            host: Set(claim.host.clone()),
            protocol: Set(protocol.clone()),
            port: Set(i32::from(*port)),
            capsule_id: Set(capsule_id),
            ..Default::default()
        }
        .insert(db)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Ok(Err(format!("host port {port}/{protocol} is taken")));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(()))
}

/// Gives back what capsule `c` took on its host, in the caller's transaction. The next
/// heartbeat of the host recomputes its usage from the capsules anyway.
pub(crate) async fn release_claim<C: ConnectionTrait>(
    db: &C,
    c: &capsule::Model,
) -> Result<(), DbErr> {
    use compute_node::Column as N;
    let Some(host) = &c.host else {
        return Ok(());
    };
    compute_node::Entity::update_many()
        .col_expr(N::MemUsed, Expr::col(N::MemUsed).sub(c.memory))
        .col_expr(N::CpuUsed, Expr::col(N::CpuUsed).sub(c.cpu))
        .col_expr(N::TotalContainers, Expr::col(N::TotalContainers).sub(1))
        .filter(N::Hostname.eq(host.as_str()))
        .exec(db)
        .await?;
    host_port::Entity::delete_many()
        .filter(host_port::Column::CapsuleId.eq(c.id))
        .exec(db)
        .await?;
    Ok(())
}
