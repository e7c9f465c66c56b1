//! What the API's metrics read from the database when they are scraped: how many capsules
//! there are by host and status, and how deep the outbox is.

use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, PaginatorTrait, QuerySelect};

use crate::entity::{capsule, outbox};
use crate::{Database, DbError};

/// Capsules of one host (none: not placed) in one status.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct CapsuleCount {
    /// The host, if placed.
    pub host: Option<String>,
    /// Zun's status (`Running`, `Error`, ...).
    pub status: String,
    /// How many.
    pub count: i64,
}

impl Database {
    /// The capsules, counted by host and status.
    pub async fn capsule_counts(&self) -> Result<Vec<CapsuleCount>, DbError> {
        capsule::Entity::find()
            .select_only()
            .column(capsule::Column::Host)
            .column(capsule::Column::Status)
            .column_as(capsule::Column::Id.count(), "count")
            .group_by(capsule::Column::Host)
            .group_by(capsule::Column::Status)
            .into_model::<CapsuleCount>()
            .all(&self.conn)
            .await
            .map_err(DbError::query("counting capsules by host and status"))
    }

    /// Messages in the outbox, not yet confirmed by the broker.
    pub async fn outbox_depth(&self) -> Result<u64, DbError> {
        outbox::Entity::find()
            .count(&self.conn)
            .await
            .map_err(DbError::query("counting the outbox"))
    }
}
