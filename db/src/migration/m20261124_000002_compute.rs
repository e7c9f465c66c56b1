//! Compute RPC: an outbox of messages to publish (written in the same transaction as the
//! change that needs them), the host ports capsules hold, and the ordering of host reports.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds the outbox, host ports and report ordering.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000002_compute"
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    RoutingKey,
    Payload,
    CapsuleUuid,
    CreatedAt,
    ClaimedUntil,
    Attempts,
}

#[derive(DeriveIden)]
enum HostPorts {
    Table,
    Id,
    Host,
    Protocol,
    Port,
    CapsuleId,
}

#[derive(DeriveIden)]
enum Capsules {
    Table,
    Id,
    ReportSeq,
}

// async_trait cannot take `SchemaManager<'_>` here (early- vs late-bound lifetimes).
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Outbox::Table)
                .if_not_exists()
                .col(pk_auto(Outbox::Id))
                .col(string_len(Outbox::RoutingKey, 255))
                .col(text(Outbox::Payload))
                .col(string_len_null(Outbox::CapsuleUuid, 36))
                .col(timestamp_with_time_zone(Outbox::CreatedAt))
                .col(timestamp_with_time_zone_null(Outbox::ClaimedUntil))
                .col(integer(Outbox::Attempts))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(HostPorts::Table)
                .if_not_exists()
                .col(pk_auto(HostPorts::Id))
                .col(string_len(HostPorts::Host, 255))
                .col(string_len(HostPorts::Protocol, 8))
                .col(integer(HostPorts::Port))
                .col(integer(HostPorts::CapsuleId))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_host_ports_capsule")
                        .from(HostPorts::Table, HostPorts::CapsuleId)
                        .to(Capsules::Table, Capsules::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // One capsule per published port and protocol on a host: the claim of a port is the
        // insert of its row.
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("uniq_host_ports")
                .table(HostPorts::Table)
                .col(HostPorts::Host)
                .col(HostPorts::Protocol)
                .col(HostPorts::Port)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_host_ports_capsule")
                .table(HostPorts::Table)
                .col(HostPorts::CapsuleId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Capsules::Table)
                .add_column(big_integer(Capsules::ReportSeq).default(0))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Capsules::Table)
                .drop_column(Capsules::ReportSeq)
                .to_owned(),
        )
        .await?;
        for t in [HostPorts::Table.into_iden(), Outbox::Table.into_iden()] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
