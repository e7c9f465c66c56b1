//! The security-group epoch: one counter that orders the firewall documents sent to compute hosts.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `firewall_epoch` with its one row.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000004_firewall_epoch"
    }
}

#[derive(DeriveIden)]
enum FirewallEpoch {
    Table,
    Id,
    Epoch,
}

// async_trait cannot take `SchemaManager<'_>` here (early- vs late-bound lifetimes).
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FirewallEpoch::Table)
                .if_not_exists()
                .col(integer(FirewallEpoch::Id).primary_key())
                .col(big_integer(FirewallEpoch::Epoch))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(FirewallEpoch::Table)
                .columns([FirewallEpoch::Id, FirewallEpoch::Epoch])
                .values_panic([1.into(), 0.into()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(FirewallEpoch::Table).to_owned())
            .await
    }
}
