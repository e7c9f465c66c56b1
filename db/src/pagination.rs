//! Keyset paging of capsule lists: Zun's `sort_key`/`sort_dir`/`limit`/`marker`, with `id` as
//! the tie-breaker and NULLs ordered as the smallest values on every backend.

use std::str::FromStr;

use sea_orm::sea_query::{Expr, NullOrdering, SimpleExpr};
use sea_orm::{Condition, Order, Value};

use crate::entity::capsule::{Column, Model};

/// Columns a capsule list may be sorted by (Zun accepts any column of its `container` table;
/// these are the ones a capsule has that sort meaningfully).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Internal id (creation order), Zun's default.
    Id,
    /// Capsule UUID.
    Uuid,
    /// Capsule name.
    Name,
    /// Owning project.
    ProjectId,
    /// Creating user.
    UserId,
    /// Status.
    Status,
    /// Status reason.
    StatusReason,
    /// Task state.
    TaskState,
    /// Compute host.
    Host,
    /// CPU request.
    Cpu,
    /// Memory request.
    Memory,
    /// Restart policy name.
    RestartPolicy,
    /// Creation time.
    CreatedAt,
    /// Update time.
    UpdatedAt,
}

impl SortKey {
    /// Every key with its wire name.
    pub const ALL: [(&'static str, SortKey); 14] = [
        ("id", SortKey::Id),
        ("uuid", SortKey::Uuid),
        ("name", SortKey::Name),
        ("project_id", SortKey::ProjectId),
        ("user_id", SortKey::UserId),
        ("status", SortKey::Status),
        ("status_reason", SortKey::StatusReason),
        ("task_state", SortKey::TaskState),
        ("host", SortKey::Host),
        ("cpu", SortKey::Cpu),
        ("memory", SortKey::Memory),
        ("restart_policy", SortKey::RestartPolicy),
        ("created_at", SortKey::CreatedAt),
        ("updated_at", SortKey::UpdatedAt),
    ];

    /// The wire name of the key.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("id")
    }

    fn column(self) -> Column {
        match self {
            SortKey::Id => Column::Id,
            SortKey::Uuid => Column::Uuid,
            SortKey::Name => Column::Name,
            SortKey::ProjectId => Column::ProjectId,
            SortKey::UserId => Column::UserId,
            SortKey::Status => Column::Status,
            SortKey::StatusReason => Column::StatusReason,
            SortKey::TaskState => Column::TaskState,
            SortKey::Host => Column::Host,
            SortKey::Cpu => Column::Cpu,
            SortKey::Memory => Column::Memory,
            SortKey::RestartPolicy => Column::RestartPolicy,
            SortKey::CreatedAt => Column::CreatedAt,
            SortKey::UpdatedAt => Column::UpdatedAt,
        }
    }

    /// The marker row's value of this key; `None` when it is NULL.
    fn value_of(self, m: &Model) -> Option<Value> {
        match self {
            SortKey::Id => Some(m.id.into()),
            SortKey::Uuid => Some(m.uuid.clone().into()),
            SortKey::Name => m.name.clone().map(Into::into),
            SortKey::ProjectId => Some(m.project_id.clone().into()),
            SortKey::UserId => Some(m.user_id.clone().into()),
            SortKey::Status => Some(m.status.clone().into()),
            SortKey::StatusReason => m.status_reason.clone().map(Into::into),
            SortKey::TaskState => m.task_state.clone().map(Into::into),
            SortKey::Host => m.host.clone().map(Into::into),
            SortKey::Cpu => Some(m.cpu.into()),
            SortKey::Memory => Some(m.memory.into()),
            SortKey::RestartPolicy => Some(m.restart_policy.clone().into()),
            SortKey::CreatedAt => Some(m.created_at.into()),
            SortKey::UpdatedAt => m.updated_at.map(Into::into),
        }
    }
}

impl FromStr for SortKey {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, k)| *k)
            .ok_or(())
    }
}

/// Sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortDir {
    /// Ascending (Zun's default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

impl SortDir {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SortDir::Asc => "asc",
            SortDir::Desc => "desc",
        }
    }
}

/// One page request of a capsule list.
#[derive(Clone, Debug)]
pub struct ListParams {
    /// Page size.
    pub limit: u64,
    /// UUID of the last capsule of the previous page.
    pub marker: Option<String>,
    /// Sort column.
    pub sort_key: SortKey,
    /// Sort direction.
    pub sort_dir: SortDir,
}

impl Default for ListParams {
    fn default() -> Self {
        Self {
            limit: 1000,
            marker: None,
            sort_key: SortKey::Id,
            sort_dir: SortDir::Asc,
        }
    }
}

/// `ORDER BY` terms: the key, then `id`, both in the requested direction; NULLs smallest.
pub(crate) fn order_terms(p: &ListParams) -> Vec<(Column, Order, NullOrdering)> {
    let (order, nulls) = match p.sort_dir {
        SortDir::Asc => (Order::Asc, NullOrdering::First),
        SortDir::Desc => (Order::Desc, NullOrdering::Last),
    };
    let mut terms = vec![(p.sort_key.column(), order.clone(), nulls)];
    if p.sort_key != SortKey::Id {
        terms.push((Column::Id, order, nulls));
    }
    terms
}

/// The rows strictly after `marker` in the order of [`order_terms`].
pub(crate) fn after_marker(p: &ListParams, marker: &Model) -> Condition {
    let id_after: SimpleExpr = match p.sort_dir {
        SortDir::Asc => Expr::col(Column::Id).gt(marker.id),
        SortDir::Desc => Expr::col(Column::Id).lt(marker.id),
    };
    if p.sort_key == SortKey::Id {
        return Condition::all().add(id_after);
    }
    keyset_after(
        p.sort_key.column(),
        p.sort_key.value_of(marker),
        p.sort_dir,
        id_after,
    )
}

/// The rows strictly after a marker whose sort column `col` holds `value` (`None`: NULL),
/// ordered by `col` in `dir` with NULLs smallest, ties broken by `tie` (the marker's
/// tie-breaker column compared in the same direction).
pub(crate) fn keyset_after(
    col: impl sea_orm::sea_query::IntoColumnRef + Copy,
    value: Option<Value>,
    dir: SortDir,
    tie: SimpleExpr,
) -> Condition {
    match (value, dir) {
        (Some(v), SortDir::Asc) => Condition::any()
            .add(Expr::col(col).gt(v.clone()))
            .add(Condition::all().add(Expr::col(col).eq(v)).add(tie)),
        (Some(v), SortDir::Desc) => Condition::any()
            .add(Expr::col(col).lt(v.clone()))
            .add(Condition::all().add(Expr::col(col).eq(v)).add(tie))
            .add(Expr::col(col).is_null()),
        (None, SortDir::Asc) => Condition::any()
            .add(Condition::all().add(Expr::col(col).is_null()).add(tie))
            .add(Expr::col(col).is_not_null()),
        (None, SortDir::Desc) => Condition::all().add(Expr::col(col).is_null()).add(tie),
    }
}
