//! The `capsule_security_groups` table: which security groups a capsule is bound to.

use sea_orm::entity::prelude::*;

/// One binding of a capsule to a security group.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "capsule_security_groups")]
pub struct Model {
    /// Internal key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Owning capsule.
    pub capsule_id: i32,
    /// Order in the template.
    pub position: i32,
    /// The group as the template names it (name or id).
    pub reference: String,
    /// The resolved group id, once groups exist.
    pub security_group_id: Option<String>,
}

/// Relations of a binding.
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
