//! The `firewall_epoch` table: one row counting security-group changes.

use sea_orm::entity::prelude::*;

/// The counter.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "firewall_epoch")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// Bumped after every change that can change what a compute host enforces.
    pub epoch: i64,
    /// The id of the database the counter lives in (made by the migration that added it): a
    /// counter of another incarnation is another sequence, not an older one.
    pub incarnation: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
