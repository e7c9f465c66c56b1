//! The `security_groups` table: a project's security groups.

use sea_orm::entity::prelude::*;

/// A security group.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "security_groups")]
pub struct Model {
    /// Its uuid (Neutron's `id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// Name (not unique, as in Neutron).
    pub name: String,
    /// Description.
    pub description: String,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed (itself or its rules).
    pub updated_at: DateTimeUtc,
    /// Bumped with each change, as Neutron's `revision_number`.
    pub revision_number: i32,
}

/// Relations of a group.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its rules.
    #[sea_orm(has_many = "super::security_group_rule::Entity")]
    Rules,
}

impl Related<super::security_group_rule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Rules.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
