//! The `capsule_templates` table: the validated template of each capsule, kept apart from the
//! `capsules` rows that lists read.

use sea_orm::entity::prelude::*;

/// The template of one capsule.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "capsule_templates")]
pub struct Model {
    /// The capsule (`capsules.id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub capsule_id: i32,
    /// The validated template, as the compute host needs it.
    pub template: Json,
}

/// Relations of a template.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its capsule.
    #[sea_orm(
        belongs_to = "super::capsule::Entity",
        from = "Column::CapsuleId",
        to = "super::capsule::Column::Id",
        on_delete = "Cascade"
    )]
    Capsule,
}

impl Related<super::capsule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Capsule.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
