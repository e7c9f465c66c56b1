//! Volumes (Cinder's shapes): block volumes of a project, each pinned to the compute host that
//! holds its file, with at most one capsule attached.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `volumes`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000005_volumes"
    }
}

#[derive(DeriveIden)]
enum Volumes {
    Table,
    Id,
    ProjectId,
    UserId,
    Name,
    Description,
    SizeGib,
    Status,
    StatusReason,
    Host,
    AvailabilityZone,
    CapsuleUuid,
    AttachedAt,
    AutoRemove,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

// async_trait cannot take `SchemaManager<'_>` here (early- vs late-bound lifetimes).
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Volumes::Table)
                .if_not_exists()
                .col(string_len(Volumes::Id, 36).primary_key())
                .col(string_len(Volumes::ProjectId, 255))
                .col(string_len(Volumes::UserId, 255))
                .col(string_len_null(Volumes::Name, 255))
                .col(string_len_null(Volumes::Description, 255))
                .col(big_integer(Volumes::SizeGib))
                .col(string_len(Volumes::Status, 16))
                .col(text_null(Volumes::StatusReason))
                .col(string_len_null(Volumes::Host, 255))
                .col(string_len(Volumes::AvailabilityZone, 255))
                .col(string_len_null(Volumes::CapsuleUuid, 36))
                .col(timestamp_with_time_zone_null(Volumes::AttachedAt))
                .col(boolean(Volumes::AutoRemove))
                .col(json(Volumes::Metadata))
                .col(timestamp_with_time_zone(Volumes::CreatedAt))
                .col(timestamp_with_time_zone_null(Volumes::UpdatedAt))
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_volumes_project", Volumes::ProjectId),
            ("idx_volumes_host", Volumes::Host),
            ("idx_volumes_capsule", Volumes::CapsuleUuid),
        ] {
            m.create_index(
                Index::create()
                    .if_not_exists()
                    .name(name)
                    .table(Volumes::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Volumes::Table).if_exists().to_owned())
            .await
    }
}
