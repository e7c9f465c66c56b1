//! The `volume_mappings` table: where a capsule's containers mount its volumes.

use sea_orm::entity::prelude::*;

/// One mount of a volume into one container.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "volume_mappings")]
pub struct Model {
    /// Internal key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Owning capsule.
    pub capsule_id: i32,
    /// Container that mounts it.
    pub container_uuid: String,
    /// Volume name in the template.
    pub volume_name: String,
    /// Mount path inside the container.
    pub mount_path: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// The volume's id once it exists.
    pub volume_id: Option<String>,
    /// Delete the volume with the capsule.
    pub auto_remove: bool,
    /// Creation time.
    pub created_at: DateTimeUtc,
}

/// Relations of a mapping.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The capsule it belongs to.
    #[sea_orm(
        belongs_to = "super::capsule::Entity",
        from = "Column::CapsuleId",
        to = "super::capsule::Column::Id",
        on_delete = "Cascade"
    )]
    Capsule,
}

impl ActiveModelBehavior for ActiveModel {}

impl Related<super::capsule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Capsule.def()
    }
}
