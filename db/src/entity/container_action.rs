//! The `container_actions` table: what was done to a container, by whom, and how it ended
//! (Zun's `container_actions`).

use sea_orm::entity::prelude::*;

/// One action on one container.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "container_actions")]
pub struct Model {
    /// Internal key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The action as Zun's `container_actions` spells it (`stop`, `reboot`, `exec_cmd`, ...),
    /// or what the runtime did by itself (`exited`, `oom_killed`, `restarted`).
    pub action: String,
    /// The container (`capsule_containers.uuid`).
    pub container_uuid: String,
    /// The API request that asked for it (a generated one for what the runtime did).
    pub request_id: String,
    /// Who asked (none for what the runtime did).
    pub user_id: Option<String>,
    /// The container's project.
    pub project_id: String,
    /// When the API accepted it (or the runtime began it).
    pub start_time: DateTimeUtc,
    /// When its host reported it done.
    pub finish_time: Option<DateTimeUtc>,
    /// Why it failed, for users (none while running or when it succeeded).
    #[sea_orm(column_type = "Text", nullable)]
    pub message: Option<String>,
}

/// Relations of an action.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its events.
    #[sea_orm(has_many = "super::container_action_event::Entity")]
    Events,
}

impl Related<super::container_action_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Events.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
