//! The `capsule_containers` table: the init and application containers of a capsule.

use sea_orm::entity::prelude::*;

/// A container of a capsule.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "capsule_containers")]
pub struct Model {
    /// Internal key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Public identifier.
    #[sea_orm(unique)]
    pub uuid: String,
    /// Owning capsule (`capsules.id`).
    pub capsule_id: i32,
    /// Init container (runs to completion before the application containers).
    pub is_init: bool,
    /// Order within its kind, from 0.
    pub position: i32,
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Command as Zun shows it (template `command` followed by `args`).
    pub command: Json,
    /// Environment (object of strings).
    pub environment: Json,
    /// Working directory.
    pub workdir: Option<String>,
    /// Container ports (list of integers).
    pub ports: Json,
    /// `always`, `ifnotpresent` or `never`.
    pub image_pull_policy: String,
    /// CPU request.
    #[sea_orm(column_type = "Double", nullable)]
    pub cpu: Option<f64>,
    /// Memory request in MiB.
    pub memory: Option<i64>,
    /// Zun container status.
    pub status: String,
    /// Reason for the status.
    pub status_reason: Option<String>,
    /// Operation in progress.
    pub task_state: Option<String>,
    /// Zun restart policy name.
    pub restart_policy: String,
    /// Zun `MaximumRetryCount`.
    pub restart_max_retries: i32,
    /// `stdin` of the template.
    pub interactive: bool,
    /// `tty` of the template.
    pub tty: bool,
    /// Runtime id on the compute host.
    pub container_id: Option<String>,
    /// Exit code of the last run, if it exited.
    pub exit_code: Option<i32>,
    /// How many times the runtime restarted it.
    pub restart_count: i32,
    /// Whether it is ready (its probes passed), as its host last reported; null: not reported.
    pub ready: Option<bool>,
    /// Zun's `healthcheck` (from the liveness probe); null: none.
    pub healthcheck: Option<Json>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last update time.
    pub updated_at: Option<DateTimeUtc>,
}

/// Relations of a container.
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

impl Related<super::capsule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Capsule.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
