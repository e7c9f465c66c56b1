//! Compute services and their nodes: heartbeats (which register a host on first sight and
//! correct its usage from the capsules placed on it), the operator's enable/disable/force-down
//! switches, and paged lists of compute nodes for Zun's hosts API.

use std::str::FromStr;
use std::time::Duration;

use capsule_types::rpc::Heartbeat;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func, NullOrdering, OnConflict, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, Order, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait, Value,
};
use serde_json::Value as Json;

use crate::entity::{capsule, compute_node, zun_service};
use crate::ground::now;
use crate::{Database, DbError, SortDir};

/// The runtimes every compute node offers.
const RUNTIMES: &[&str] = &["runc"];

/// Zun's liveness rule: a service is up unless an operator forced it down or its last sign of
/// life (`last_seen_up`, else `updated_at`, else `created_at`) is more than `down_after` away
/// from `now`, in either direction.
pub fn service_is_up(svc: &zun_service::Model, down_after: Duration, now: DateTime<Utc>) -> bool {
    if svc.forced_down {
        return false;
    }
    let last = svc
        .last_seen_up
        .or(svc.updated_at)
        .unwrap_or(svc.created_at);
    let elapsed = (now - last).abs();
    // A negative duration cannot occur after `abs`; an out-of-range one is "long ago".
    elapsed.to_std().is_ok_and(|e| e <= down_after)
}

/// Columns a compute-node list may be sorted by (Zun accepts any column of `compute_node`;
/// these are the ones ours has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeSortKey {
    /// Public id (also the tie-breaker, as in Zun).
    Uuid,
    /// Host name, Zun's default.
    Hostname,
    /// Memory.
    MemTotal,
    /// Memory claimed.
    MemUsed,
    /// CPUs.
    Cpus,
    /// CPUs claimed.
    CpuUsed,
    /// Disk.
    DiskTotal,
    /// Disk used.
    DiskUsed,
    /// Capsules on the host.
    TotalContainers,
    /// CPU architecture.
    Architecture,
    /// OS type.
    OsType,
    /// OS name.
    Os,
    /// Kernel version.
    KernelVersion,
    /// Registration time.
    CreatedAt,
    /// Last update time.
    UpdatedAt,
}

impl NodeSortKey {
    /// Every key with its wire name.
    pub const ALL: [(&'static str, NodeSortKey); 15] = [
        ("uuid", NodeSortKey::Uuid),
        ("hostname", NodeSortKey::Hostname),
        ("mem_total", NodeSortKey::MemTotal),
        ("mem_used", NodeSortKey::MemUsed),
        ("cpus", NodeSortKey::Cpus),
        ("cpu_used", NodeSortKey::CpuUsed),
        ("disk_total", NodeSortKey::DiskTotal),
        ("disk_used", NodeSortKey::DiskUsed),
        ("total_containers", NodeSortKey::TotalContainers),
        ("architecture", NodeSortKey::Architecture),
        ("os_type", NodeSortKey::OsType),
        ("os", NodeSortKey::Os),
        ("kernel_version", NodeSortKey::KernelVersion),
        ("created_at", NodeSortKey::CreatedAt),
        ("updated_at", NodeSortKey::UpdatedAt),
    ];

    /// The wire name of the key.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("hostname")
    }

    fn column(self) -> compute_node::Column {
        use compute_node::Column as C;
        match self {
            NodeSortKey::Uuid => C::Uuid,
            NodeSortKey::Hostname => C::Hostname,
            NodeSortKey::MemTotal => C::MemTotal,
            NodeSortKey::MemUsed => C::MemUsed,
            NodeSortKey::Cpus => C::Cpus,
            NodeSortKey::CpuUsed => C::CpuUsed,
            NodeSortKey::DiskTotal => C::DiskTotal,
            NodeSortKey::DiskUsed => C::DiskUsed,
            NodeSortKey::TotalContainers => C::TotalContainers,
            NodeSortKey::Architecture => C::Architecture,
            NodeSortKey::OsType => C::OsType,
            NodeSortKey::Os => C::Os,
            NodeSortKey::KernelVersion => C::KernelVersion,
            NodeSortKey::CreatedAt => C::CreatedAt,
            NodeSortKey::UpdatedAt => C::UpdatedAt,
        }
    }

    /// The marker row's value of this key; `None` when it is NULL.
    fn value_of(self, m: &compute_node::Model) -> Option<Value> {
        match self {
            NodeSortKey::Uuid => Some(m.uuid.clone().into()),
            NodeSortKey::Hostname => Some(m.hostname.clone().into()),
            NodeSortKey::MemTotal => Some(m.mem_total.into()),
            NodeSortKey::MemUsed => Some(m.mem_used.into()),
            NodeSortKey::Cpus => Some(m.cpus.into()),
            NodeSortKey::CpuUsed => Some(m.cpu_used.into()),
            NodeSortKey::DiskTotal => Some(m.disk_total.into()),
            NodeSortKey::DiskUsed => Some(m.disk_used.into()),
            NodeSortKey::TotalContainers => Some(m.total_containers.into()),
            NodeSortKey::Architecture => m.architecture.clone().map(Into::into),
            NodeSortKey::OsType => m.os_type.clone().map(Into::into),
            NodeSortKey::Os => m.os.clone().map(Into::into),
            NodeSortKey::KernelVersion => m.kernel_version.clone().map(Into::into),
            NodeSortKey::CreatedAt => Some(m.created_at.into()),
            NodeSortKey::UpdatedAt => m.updated_at.map(Into::into),
        }
    }
}

impl FromStr for NodeSortKey {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, k)| *k)
            .ok_or(())
    }
}

/// One page request of a compute-node list.
#[derive(Clone, Debug)]
pub struct NodeListParams {
    /// Page size.
    pub limit: u64,
    /// UUID of the last node of the previous page.
    pub marker: Option<String>,
    /// Sort column.
    pub sort_key: NodeSortKey,
    /// Sort direction.
    pub sort_dir: SortDir,
}

impl Default for NodeListParams {
    fn default() -> Self {
        Self {
            limit: 1000,
            marker: None,
            sort_key: NodeSortKey::Hostname,
            sort_dir: SortDir::Asc,
        }
    }
}

/// `ORDER BY` terms: the key, then `uuid`, both in the requested direction; NULLs smallest.
fn node_order(p: &NodeListParams) -> Vec<(compute_node::Column, Order, NullOrdering)> {
    let (order, nulls) = match p.sort_dir {
        SortDir::Asc => (Order::Asc, NullOrdering::First),
        SortDir::Desc => (Order::Desc, NullOrdering::Last),
    };
    let mut terms = vec![(p.sort_key.column(), order.clone(), nulls)];
    if p.sort_key != NodeSortKey::Uuid {
        terms.push((compute_node::Column::Uuid, order, nulls));
    }
    terms
}

/// The nodes strictly after `marker` in the order of [`node_order`].
fn after_node(p: &NodeListParams, marker: &compute_node::Model) -> Condition {
    let uuid = compute_node::Column::Uuid;
    let tie: SimpleExpr = match p.sort_dir {
        SortDir::Asc => Expr::col(uuid).gt(marker.uuid.as_str()),
        SortDir::Desc => Expr::col(uuid).lt(marker.uuid.as_str()),
    };
    if p.sort_key == NodeSortKey::Uuid {
        return Condition::all().add(tie);
    }
    crate::pagination::keyset_after(
        p.sort_key.column(),
        p.sort_key.value_of(marker),
        p.sort_dir,
        tie,
    )
}

/// `(SELECT COALESCE(<agg>, <zero>) FROM capsules WHERE host = <host>)`.
fn usage_of(host: &str, agg: SimpleExpr, zero: SimpleExpr) -> SimpleExpr {
    let sel = Query::select()
        .expr(Func::coalesce([agg, zero]))
        .from(capsule::Entity)
        .and_where(Expr::col((capsule::Entity, capsule::Column::Host)).eq(host))
        .to_owned();
    SimpleExpr::SubQuery(None, Box::new(sel.into_sub_query_statement()))
}

/// Registers or refreshes the node and service of `hb` and recomputes the node's usage, in
/// the caller's transaction. The node row is written first, so the usage is read while its
/// lock is held (see [`Database::record_heartbeat`]).
async fn heartbeat_in<C: ConnectionTrait>(
    db: &C,
    hb: &Heartbeat,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    use compute_node::Column as N;
    use zun_service::Column as S;
    let r = &hb.resources;
    let labels =
        serde_json::to_value(&r.labels).unwrap_or_else(|_| Json::Object(Default::default()));
    compute_node::Entity::insert(compute_node::ActiveModel {
        uuid: Set(uuid::Uuid::new_v4().to_string()),
        hostname: Set(hb.host.clone()),
        mem_total: Set(i64::try_from(r.memory_mib).unwrap_or(i64::MAX)),
        mem_used: Set(0),
        cpus: Set(r.cpus),
        cpu_used: Set(0.0),
        disk_total: Set(i64::try_from(r.disk_gib).unwrap_or(i64::MAX)),
        disk_used: Set(0),
        total_containers: Set(0),
        architecture: Set(Some(r.architecture.clone())),
        os_type: Set(Some("linux".to_owned())),
        os: Set(Some(r.os.clone())),
        kernel_version: Set(Some(r.kernel_version.clone())),
        labels: Set(labels),
        runtimes: Set(Json::from(RUNTIMES.to_vec())),
        created_at: Set(at),
        updated_at: Set(Some(at)),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(N::Hostname)
            .update_columns([
                N::MemTotal,
                N::Cpus,
                N::DiskTotal,
                N::Architecture,
                N::OsType,
                N::Os,
                N::KernelVersion,
                N::Labels,
                N::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;

    let az = Some(hb.availability_zone.clone()).filter(|z| !z.is_empty());
    zun_service::Entity::insert(zun_service::ActiveModel {
        host: Set(hb.host.clone()),
        binary: Set(hb.binary.clone()),
        disabled: Set(false),
        disabled_reason: Set(None),
        last_seen_up: Set(Some(at)),
        forced_down: Set(false),
        report_count: Set(1),
        availability_zone: Set(az),
        stream_address: Set(hb.stream_address.clone()),
        created_at: Set(at),
        updated_at: Set(Some(at)),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([S::Host, S::Binary])
            .value(
                S::ReportCount,
                Expr::col((zun_service::Entity, S::ReportCount)).add(1),
            )
            .update_columns([
                S::LastSeenUp,
                S::AvailabilityZone,
                S::StreamAddress,
                S::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;

    // One statement, started after the node row is locked: its snapshot sees every capsule
    // placed by a claim that committed before, and a claim still running adds its own share
    // on top once this transaction commits.
    let col = |c: capsule::Column| Expr::col((capsule::Entity, c));
    compute_node::Entity::update_many()
        .col_expr(
            N::MemUsed,
            usage_of(
                &hb.host,
                Func::sum(col(capsule::Column::Memory)).into(),
                Expr::val(0i64).into(),
            ),
        )
        .col_expr(
            N::CpuUsed,
            usage_of(
                &hb.host,
                Func::sum(col(capsule::Column::Cpu)).into(),
                Expr::val(0.0f64).into(),
            ),
        )
        .col_expr(
            N::TotalContainers,
            usage_of(
                &hb.host,
                Func::count(col(capsule::Column::Id)).into(),
                Expr::val(0i32).into(),
            ),
        )
        .filter(N::Hostname.eq(hb.host.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

impl Database {
    /// Records a heartbeat received now: see [`Database::record_heartbeat_at`].
    pub async fn record_heartbeat(&self, hb: &Heartbeat) -> Result<(), DbError> {
        self.record_heartbeat_at(hb, now()).await
    }

    /// Records a heartbeat as of `at`: creates the service (enabled, not forced down) and the
    /// compute node on first sight, else counts the report and refreshes the zone and the
    /// node's resources; then recomputes the node's usage (memory, CPU, capsule count) from
    /// the capsules placed on the host. One transaction of three statements, whose first
    /// writes the node row: SQLite takes its write lock and PostgreSQL the row lock before the
    /// usage is read, so the correction cannot race the scheduler's conditional claim on
    /// the same row.
    pub async fn record_heartbeat_at(
        &self,
        hb: &Heartbeat,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let ctx = || format!("recording a heartbeat of {} on {}", hb.binary, hb.host);
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        heartbeat_in(&txn, hb, at)
            .await
            .map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))
    }

    /// Every service, oldest first (Zun lists by `id`).
    pub async fn list_services(&self) -> Result<Vec<zun_service::Model>, DbError> {
        zun_service::Entity::find()
            .order_by_asc(zun_service::Column::Id)
            .all(&self.conn)
            .await
            .map_err(DbError::query("listing services"))
    }

    /// The service `binary` on `host`.
    pub async fn service(
        &self,
        host: &str,
        binary: &str,
    ) -> Result<Option<zun_service::Model>, DbError> {
        zun_service::Entity::find()
            .filter(zun_service::Column::Host.eq(host))
            .filter(zun_service::Column::Binary.eq(binary))
            .one(&self.conn)
            .await
            .map_err(DbError::query(format!(
                "looking up service {binary} on {host}"
            )))
    }

    /// Enables or disables scheduling to a service, with the operator's reason (cleared when
    /// enabling is asked with `None`). Returns whether the service exists.
    pub async fn set_service_disabled(
        &self,
        host: &str,
        binary: &str,
        disabled: bool,
        reason: Option<&str>,
    ) -> Result<bool, DbError> {
        use zun_service::Column as S;
        let res = zun_service::Entity::update_many()
            .col_expr(S::Disabled, Expr::value(disabled))
            .col_expr(S::DisabledReason, Expr::value(reason.map(str::to_owned)))
            .col_expr(S::UpdatedAt, Expr::value(now()))
            .filter(S::Host.eq(host))
            .filter(S::Binary.eq(binary))
            .exec(&self.conn)
            .await
            .map_err(DbError::query(format!(
                "setting disabled={disabled} on service {binary} on {host}"
            )))?;
        Ok(res.rows_affected > 0)
    }

    /// Sets or clears the operator's forced-down flag of a service. Returns whether the service
    /// exists.
    pub async fn set_service_forced_down(
        &self,
        host: &str,
        binary: &str,
        forced_down: bool,
    ) -> Result<bool, DbError> {
        use zun_service::Column as S;
        let res = zun_service::Entity::update_many()
            .col_expr(S::ForcedDown, Expr::value(forced_down))
            .col_expr(S::UpdatedAt, Expr::value(now()))
            .filter(S::Host.eq(host))
            .filter(S::Binary.eq(binary))
            .exec(&self.conn)
            .await
            .map_err(DbError::query(format!(
                "setting forced_down={forced_down} on service {binary} on {host}"
            )))?;
        Ok(res.rows_affected > 0)
    }

    /// Deletes a service and the compute node of its host, atomically. Returns whether the
    /// service existed (the node goes either way). A host that is still alive registers both
    /// again with its next heartbeat.
    pub async fn delete_service(&self, host: &str, binary: &str) -> Result<bool, DbError> {
        let ctx = || format!("deleting service {binary} on {host}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let res = zun_service::Entity::delete_many()
            .filter(zun_service::Column::Host.eq(host))
            .filter(zun_service::Column::Binary.eq(binary))
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        if res.rows_affected == 0 {
            return Ok(false);
        }
        compute_node::Entity::delete_many()
            .filter(compute_node::Column::Hostname.eq(host))
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok(true)
    }

    /// One page of compute nodes. A marker that names no node is
    /// [`DbError::MarkerNotFound`].
    pub async fn list_compute_nodes(
        &self,
        params: &NodeListParams,
    ) -> Result<Vec<compute_node::Model>, DbError> {
        let mut q = compute_node::Entity::find();
        if let Some(marker) = &params.marker {
            let m = compute_node::Entity::find()
                .filter(compute_node::Column::Uuid.eq(marker.as_str()))
                .one(&self.conn)
                .await
                .map_err(DbError::query(format!("looking up marker {marker}")))?
                .ok_or_else(|| DbError::MarkerNotFound {
                    marker: marker.clone(),
                })?;
            q = q.filter(after_node(params, &m));
        }
        for (col, order, nulls) in node_order(params) {
            q = q.order_by_with_nulls(col, order, nulls);
        }
        q.limit(params.limit)
            .all(&self.conn)
            .await
            .map_err(DbError::query("listing compute nodes"))
    }

    /// The compute node with this uuid, else with this host name.
    pub async fn compute_node(
        &self,
        uuid_or_hostname: &str,
    ) -> Result<Option<compute_node::Model>, DbError> {
        use compute_node::Column as N;
        let ident = uuid_or_hostname;
        let by = |cond: SimpleExpr| compute_node::Entity::find().filter(cond).one(&self.conn);
        let ctx = || format!("looking up compute node {ident}");
        if let Ok(u) = uuid::Uuid::try_parse(ident) {
            let found = by(N::Uuid.eq(u.hyphenated().to_string()))
                .await
                .map_err(DbError::query(ctx()))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        by(N::Hostname.eq(ident))
            .await
            .map_err(DbError::query(ctx()))
    }
}
