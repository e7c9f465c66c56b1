//! Container history (Zun's `container_actions` and `container_actions_events`) and the stream
//! listener each compute service advertises in its heartbeats.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `container_actions`, `container_action_events` and `zun_services.stream_address`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000007_container_actions"
    }
}

#[derive(DeriveIden)]
enum ContainerActions {
    Table,
    Id,
    Action,
    ContainerUuid,
    RequestId,
    UserId,
    ProjectId,
    StartTime,
    FinishTime,
    Message,
}

#[derive(DeriveIden)]
enum ContainerActionEvents {
    Table,
    Id,
    ActionId,
    Event,
    StartTime,
    FinishTime,
    Result,
    Traceback,
    Host,
    Seq,
}

#[derive(DeriveIden)]
enum CapsuleContainers {
    Table,
    Uuid,
}

#[derive(DeriveIden)]
enum ZunServices {
    Table,
    StreamAddress,
}

// async_trait cannot take `SchemaManager<'_>` here (early- vs late-bound lifetimes).
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ContainerActions::Table)
                .if_not_exists()
                .col(pk_auto(ContainerActions::Id))
                .col(string_len(ContainerActions::Action, 255))
                .col(string_len(ContainerActions::ContainerUuid, 36))
                .col(string_len(ContainerActions::RequestId, 255))
                .col(string_len_null(ContainerActions::UserId, 255))
                .col(string_len(ContainerActions::ProjectId, 255))
                .col(timestamp_with_time_zone(ContainerActions::StartTime))
                .col(timestamp_with_time_zone_null(ContainerActions::FinishTime))
                .col(text_null(ContainerActions::Message))
                // A container's history goes with it.
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_container_actions_container")
                        .from(ContainerActions::Table, ContainerActions::ContainerUuid)
                        .to(CapsuleContainers::Table, CapsuleContainers::Uuid)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // One action per request and container: what makes a repeated start idempotent.
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("uniq_container_actions_request")
                .table(ContainerActions::Table)
                .col(ContainerActions::ContainerUuid)
                .col(ContainerActions::RequestId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ContainerActionEvents::Table)
                .if_not_exists()
                .col(pk_auto(ContainerActionEvents::Id))
                .col(integer(ContainerActionEvents::ActionId))
                .col(string_len(ContainerActionEvents::Event, 255))
                .col(timestamp_with_time_zone(ContainerActionEvents::StartTime))
                .col(timestamp_with_time_zone_null(
                    ContainerActionEvents::FinishTime,
                ))
                .col(string_len_null(ContainerActionEvents::Result, 16))
                .col(text_null(ContainerActionEvents::Traceback))
                .col(string_len(ContainerActionEvents::Host, 255))
                .col(big_integer(ContainerActionEvents::Seq))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_container_action_events_action")
                        .from(
                            ContainerActionEvents::Table,
                            ContainerActionEvents::ActionId,
                        )
                        .to(ContainerActions::Table, ContainerActions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // A host's report is kept once, however often it is delivered.
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("uniq_container_action_events_report")
                .table(ContainerActionEvents::Table)
                .col(ContainerActionEvents::Host)
                .col(ContainerActionEvents::Seq)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_container_action_events_action")
                .table(ContainerActionEvents::Table)
                .col(ContainerActionEvents::ActionId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ZunServices::Table)
                .add_column(string_len_null(ZunServices::StreamAddress, 255))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ZunServices::Table)
                .drop_column(ZunServices::StreamAddress)
                .to_owned(),
        )
        .await?;
        for t in [
            ContainerActionEvents::Table.into_iden(),
            ContainerActions::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
