//! The `outbox` table: messages to publish, written in the same transaction as the change that
//! needs them, deleted once the broker has confirmed them.

use sea_orm::entity::prelude::*;

/// One message waiting for the broker.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    /// Order of publication.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Where it goes (`zun-compute.<host>`).
    pub routing_key: String,
    /// The encoded envelope.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// The capsule it is about, for operators reading the table.
    pub capsule_uuid: Option<String>,
    /// When it was written.
    pub created_at: DateTimeUtc,
    /// A publisher holds it until then.
    pub claimed_until: Option<DateTimeUtc>,
    /// Publication attempts.
    pub attempts: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
