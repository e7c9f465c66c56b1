//! The outbox: messages written in the same transaction as the change that needs them, so a
//! request is never lost between the database and the broker. A publisher claims an entry for
//! a lease, publishes it, and deletes it once the broker has confirmed it; an entry whose
//! publisher died is claimed again when its lease runs out. Several API replicas may publish.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::entity::outbox;
use crate::ground::now;
use crate::{Database, DbError};

/// A message to publish.
#[derive(Clone, Debug)]
pub struct NewOutbox {
    /// Where it goes.
    pub routing_key: String,
    /// The encoded envelope.
    pub payload: String,
    /// The capsule it is about.
    pub capsule_uuid: Option<String>,
}

/// Writes `msg` in the caller's transaction; returns its id.
pub(crate) async fn enqueue<C: ConnectionTrait>(db: &C, msg: NewOutbox) -> Result<i32, DbErr> {
    let row = outbox::ActiveModel {
        routing_key: Set(msg.routing_key),
        payload: Set(msg.payload),
        capsule_uuid: Set(msg.capsule_uuid),
        created_at: Set(now()),
        claimed_until: Set(None),
        attempts: Set(0),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(row.id)
}

fn claimable() -> Condition {
    Condition::any()
        .add(outbox::Column::ClaimedUntil.is_null())
        .add(outbox::Column::ClaimedUntil.lt(now()))
}

impl Database {
    /// Claims entry `id` for `lease` if nobody holds it; `None` if it is gone or held.
    pub async fn claim_outbox_entry(
        &self,
        id: i32,
        lease: Duration,
    ) -> Result<Option<outbox::Model>, DbError> {
        let ctx = || format!("claiming outbox entry {id}");
        let until = now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let res = outbox::Entity::update_many()
            .col_expr(outbox::Column::ClaimedUntil, Expr::value(until))
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .filter(outbox::Column::Id.eq(id))
            .filter(claimable())
            .exec(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        if res.rows_affected == 0 {
            return Ok(None);
        }
        outbox::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(DbError::query(ctx()))
    }

    /// Claims up to `limit` entries nobody holds, oldest first.
    pub async fn claim_outbox(
        &self,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<outbox::Model>, DbError> {
        let ids: Vec<i32> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .filter(claimable())
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(DbError::query("listing the outbox"))?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = self.claim_outbox_entry(id, lease).await? {
                claimed.push(e);
            }
        }
        Ok(claimed)
    }

    /// Gives an entry back (publishing failed) so the next attempt need not wait for its lease.
    pub async fn release_outbox_entry(&self, id: i32) -> Result<(), DbError> {
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::ClaimedUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(outbox::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(DbError::query(format!("releasing outbox entry {id}")))?;
        Ok(())
    }

    /// Removes a published entry.
    pub async fn delete_outbox_entry(&self, id: i32) -> Result<(), DbError> {
        outbox::Entity::delete_by_id(id)
            .exec(&self.conn)
            .await
            .map_err(DbError::query(format!("deleting outbox entry {id}")))?;
        Ok(())
    }

    /// Entries waiting to be published.
    pub async fn outbox_len(&self) -> Result<u64, DbError> {
        outbox::Entity::find()
            .count(&self.conn)
            .await
            .map_err(DbError::query("counting the outbox"))
    }
}
