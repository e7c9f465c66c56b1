//! The `project_generations` table: a counter per project, bumped with every change to the
//! project's capsules, so readers can tell whether what they cached is current.

use sea_orm::entity::prelude::*;

/// The counter of one project.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "project_generations")]
pub struct Model {
    /// The project.
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
    /// Changes so far.
    pub generation: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
