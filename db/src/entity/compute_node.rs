//! The `compute_nodes` table: resources of each compute host (Zun's hosts API).

use sea_orm::entity::prelude::*;

/// A compute host and its resources.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "compute_nodes")]
pub struct Model {
    /// Internal key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Public identifier.
    #[sea_orm(unique)]
    pub uuid: String,
    /// Host name (matches `zun_services.host`).
    #[sea_orm(unique)]
    pub hostname: String,
    /// Memory in MiB.
    pub mem_total: i64,
    /// Memory claimed by capsules, MiB.
    pub mem_used: i64,
    /// CPUs.
    #[sea_orm(column_type = "Double")]
    pub cpus: f64,
    /// CPUs claimed by capsules.
    #[sea_orm(column_type = "Double")]
    pub cpu_used: f64,
    /// Disk in GiB.
    pub disk_total: i64,
    /// Disk used, GiB.
    pub disk_used: i64,
    /// Capsules on the host.
    pub total_containers: i32,
    /// CPU architecture.
    pub architecture: Option<String>,
    /// OS type (`linux`).
    pub os_type: Option<String>,
    /// OS name.
    pub os: Option<String>,
    /// Kernel version.
    pub kernel_version: Option<String>,
    /// Host labels.
    pub labels: Json,
    /// Runtimes offered.
    pub runtimes: Json,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last update time.
    pub updated_at: Option<DateTimeUtc>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
