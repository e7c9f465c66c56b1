//! The security-group epoch gets an incarnation: an id of the database the counter lives in, so
//! that compute hosts tell a new counter (another database, which starts again) from an old
//! one going backwards.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `firewall_epoch.incarnation`, a fresh random id.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000006_firewall_incarnation"
    }
}

#[derive(DeriveIden)]
enum FirewallEpoch {
    Table,
    Id,
    Incarnation,
}

// async_trait cannot take `SchemaManager<'_>` here (early- vs late-bound lifetimes).
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(FirewallEpoch::Table)
                .add_column(string(FirewallEpoch::Incarnation).default(""))
                .to_owned(),
        )
        .await?;
        // Each database its own: made here, once, when the schema is made or upgraded.
        let incarnation = uuid::Uuid::new_v4().to_string();
        m.exec_stmt(
            Query::update()
                .table(FirewallEpoch::Table)
                .value(FirewallEpoch::Incarnation, incarnation)
                .and_where(Expr::col(FirewallEpoch::Id).eq(1))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(FirewallEpoch::Table)
                .drop_column(FirewallEpoch::Incarnation)
                .to_owned(),
        )
        .await
    }
}
