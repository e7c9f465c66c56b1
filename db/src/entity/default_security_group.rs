//! The `default_security_groups` table: each project's `default` group (one per project).

use sea_orm::entity::prelude::*;

/// A project's default group.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "default_security_groups")]
pub struct Model {
    /// The project.
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
    /// Its `default` group.
    pub security_group_id: String,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
