//! The `host_ports` table: which capsule holds which published port on which host.

use sea_orm::entity::prelude::*;

/// A port a capsule publishes on its host.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "host_ports")]
pub struct Model {
    /// Internal key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The host.
    pub host: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The host port.
    pub port: i32,
    /// The capsule holding it.
    pub capsule_id: i32,
}

/// Relations of a host port.
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
