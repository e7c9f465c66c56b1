//! The `capsules` table: one row per capsule (pod).

use sea_orm::entity::prelude::*;

/// A capsule row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "capsules")]
pub struct Model {
    /// Internal integer key (Zun's `id`, the default sort key).
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Public identifier.
    #[sea_orm(unique)]
    pub uuid: String,
    /// `metadata.name` of the template.
    pub name: Option<String>,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Zun container status (`Creating`, `Running`, `Error`, ...).
    pub status: String,
    /// Why the status is what it is, for users.
    pub status_reason: Option<String>,
    /// Operation in progress (`container_deleting`, ...).
    pub task_state: Option<String>,
    /// Compute host that runs the capsule.
    pub host: Option<String>,
    /// Requested availability zone.
    pub availability_zone: Option<String>,
    /// Summed CPU request.
    #[sea_orm(column_type = "Double")]
    pub cpu: f64,
    /// Summed memory request in MiB.
    pub memory: i64,
    /// Zun restart policy name: `always`, `on-failure` or `no`.
    pub restart_policy: String,
    /// Zun `MaximumRetryCount`.
    pub restart_max_retries: i32,
    /// `metadata.labels` (object of strings).
    pub labels: Json,
    /// `metadata.annotations` (object) or null.
    pub annotations: Option<Json>,
    /// Network addresses in Zun's shape.
    pub addresses: Json,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last update time.
    pub updated_at: Option<DateTimeUtc>,
    /// `seq` of the last host report applied (older reports are stale).
    pub report_seq: i64,
}

/// Relations of a capsule.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its containers (init and app).
    #[sea_orm(has_many = "super::capsule_container::Entity")]
    Containers,
    /// Its volume mappings.
    #[sea_orm(has_many = "super::volume_mapping::Entity")]
    VolumeMappings,
    /// Its security-group bindings.
    #[sea_orm(has_many = "super::capsule_security_group::Entity")]
    SecurityGroups,
}

impl Related<super::capsule_container::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Containers.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
