//! The `container_action_events` table: what a compute host reported of an action (Zun's
//! `container_actions_events`), each report kept once (`host`, `seq`).

use sea_orm::entity::prelude::*;

/// One reported event of an action.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "container_action_events")]
pub struct Model {
    /// Internal key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The action (`container_actions.id`).
    pub action_id: i32,
    /// What happened, named as Zun names its events (`compute__do_container_stop`).
    pub event: String,
    /// When it began on the host.
    pub start_time: DateTimeUtc,
    /// When it was over.
    pub finish_time: Option<DateTimeUtc>,
    /// `Success` or `Error`.
    pub result: Option<String>,
    /// Why it failed (shown only where `container:action:events` allows).
    #[sea_orm(column_type = "Text", nullable)]
    pub traceback: Option<String>,
    /// The reporting host.
    pub host: String,
    /// The report's sequence number on that host.
    pub seq: i64,
}

/// Relations of an event.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The action it belongs to.
    #[sea_orm(
        belongs_to = "super::container_action::Entity",
        from = "Column::ActionId",
        to = "super::container_action::Column::Id",
        on_delete = "Cascade"
    )]
    Action,
}

impl Related<super::container_action::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Action.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
