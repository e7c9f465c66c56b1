//! Containers get their readiness, as their compute host's prober reports it, and their
//! health check (Zun's `healthcheck`, from the template's liveness probe).

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `capsule_containers.ready` (null: not reported) and `healthcheck` (null: none).
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000008_container_ready"
    }
}

#[derive(DeriveIden)]
enum CapsuleContainers {
    Table,
    Ready,
    Healthcheck,
}

// async_trait cannot take `SchemaManager<'_>` here (early- vs late-bound lifetimes).
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(CapsuleContainers::Table)
                .add_column(boolean_null(CapsuleContainers::Ready))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(CapsuleContainers::Table)
                .add_column(json_null(CapsuleContainers::Healthcheck))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(CapsuleContainers::Table)
                .drop_column(CapsuleContainers::Healthcheck)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(CapsuleContainers::Table)
                .drop_column(CapsuleContainers::Ready)
                .to_owned(),
        )
        .await
    }
}
