//! The `volumes` table: a project's block volumes and where they are attached.

use sea_orm::entity::prelude::*;

/// A volume.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "volumes")]
pub struct Model {
    /// Its uuid (Cinder's `id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Name (not unique, as in Cinder).
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Size, GiB.
    pub size_gib: i64,
    /// `creating`, `available`, `in-use`, `deleting` or `error`.
    pub status: String,
    /// Why it is in `error`, for users.
    pub status_reason: Option<String>,
    /// The compute host holding its file (a capsule using it runs there).
    pub host: Option<String>,
    /// Availability zone.
    pub availability_zone: String,
    /// The capsule it is attached to.
    pub capsule_uuid: Option<String>,
    /// When it was attached.
    pub attached_at: Option<DateTimeUtc>,
    /// Made for its capsule and deleted with it.
    pub auto_remove: bool,
    /// Cinder's `metadata` (object of strings).
    pub metadata: Json,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: Option<DateTimeUtc>,
}

/// Relations of a volume (none: the capsule is named by uuid).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
