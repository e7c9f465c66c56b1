//! The `zun_services` table: compute services and their heartbeats (Zun's `zun_service`).

use sea_orm::entity::prelude::*;

/// A service on a host.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "zun_services")]
pub struct Model {
    /// Internal key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Host name.
    pub host: String,
    /// Binary name (`zun-compute`).
    pub binary: String,
    /// Disabled by an operator.
    pub disabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Last heartbeat.
    pub last_seen_up: Option<DateTimeUtc>,
    /// Forced down by an operator.
    pub forced_down: bool,
    /// Number of heartbeats.
    pub report_count: i64,
    /// Availability zone of the host.
    pub availability_zone: Option<String>,
    /// Where its stream listener (interactive exec) accepts connections, `host:port`, as its
    /// last heartbeat said.
    pub stream_address: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last update time.
    pub updated_at: Option<DateTimeUtc>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
