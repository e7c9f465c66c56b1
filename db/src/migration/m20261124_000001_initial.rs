//! The first schema: capsules, their containers, volume mappings, security-group bindings,
//! compute services and compute nodes.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates the initial tables.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000001_initial"
    }
}

#[derive(DeriveIden)]
enum Capsules {
    Table,
    Id,
    Uuid,
    Name,
    ProjectId,
    UserId,
    Status,
    StatusReason,
    TaskState,
    Host,
    AvailabilityZone,
    Cpu,
    Memory,
    RestartPolicy,
    RestartMaxRetries,
    Labels,
    Annotations,
    Addresses,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CapsuleTemplates {
    Table,
    CapsuleId,
    Template,
}

#[derive(DeriveIden)]
enum ProjectGenerations {
    Table,
    ProjectId,
    Generation,
}

#[derive(DeriveIden)]
enum CapsuleContainers {
    Table,
    Id,
    Uuid,
    CapsuleId,
    IsInit,
    Position,
    Name,
    Image,
    Command,
    Environment,
    Workdir,
    Ports,
    ImagePullPolicy,
    Cpu,
    Memory,
    Status,
    StatusReason,
    TaskState,
    RestartPolicy,
    RestartMaxRetries,
    Interactive,
    Tty,
    ContainerId,
    ExitCode,
    RestartCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum VolumeMappings {
    Table,
    Id,
    CapsuleId,
    ContainerUuid,
    VolumeName,
    MountPath,
    ReadOnly,
    VolumeId,
    AutoRemove,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CapsuleSecurityGroups {
    Table,
    Id,
    CapsuleId,
    Position,
    Reference,
    SecurityGroupId,
}

#[derive(DeriveIden)]
enum ZunServices {
    Table,
    Id,
    Host,
    Binary,
    Disabled,
    DisabledReason,
    LastSeenUp,
    ForcedDown,
    ReportCount,
    AvailabilityZone,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ComputeNodes {
    Table,
    Id,
    Uuid,
    Hostname,
    MemTotal,
    MemUsed,
    Cpus,
    CpuUsed,
    DiskTotal,
    DiskUsed,
    TotalContainers,
    Architecture,
    OsType,
    Os,
    KernelVersion,
    Labels,
    Runtimes,
    CreatedAt,
    UpdatedAt,
}

fn created_updated(t: &mut TableCreateStatement, created: impl IntoIden, updated: impl IntoIden) {
    t.col(timestamp_with_time_zone(created))
        .col(timestamp_with_time_zone_null(updated));
}

// async_trait cannot take `SchemaManager<'_>` here (early- vs late-bound lifetimes).
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut t = Table::create()
            .table(Capsules::Table)
            .if_not_exists()
            .col(pk_auto(Capsules::Id))
            .col(string_len_uniq(Capsules::Uuid, 36))
            .col(string_len_null(Capsules::Name, 255))
            .col(string_len(Capsules::ProjectId, 255))
            .col(string_len(Capsules::UserId, 255))
            .col(string_len(Capsules::Status, 32))
            .col(text_null(Capsules::StatusReason))
            .col(string_len_null(Capsules::TaskState, 32))
            .col(string_len_null(Capsules::Host, 255))
            .col(string_len_null(Capsules::AvailabilityZone, 255))
            .col(double(Capsules::Cpu))
            .col(big_integer(Capsules::Memory))
            .col(string_len(Capsules::RestartPolicy, 16))
            .col(integer(Capsules::RestartMaxRetries))
            .col(json(Capsules::Labels))
            .col(json_null(Capsules::Annotations))
            .col(json(Capsules::Addresses))
            .to_owned();
        created_updated(&mut t, Capsules::CreatedAt, Capsules::UpdatedAt);
        m.create_table(t).await?;
        for (name, col) in [
            ("idx_capsules_project", Capsules::ProjectId),
            ("idx_capsules_name", Capsules::Name),
            ("idx_capsules_host", Capsules::Host),
        ] {
            m.create_index(
                Index::create()
                    .if_not_exists()
                    .name(name)
                    .table(Capsules::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }

        // The template is only read to run the capsule, so it stays out of the rows every
        // list reads.
        m.create_table(
            Table::create()
                .table(CapsuleTemplates::Table)
                .if_not_exists()
                .col(integer(CapsuleTemplates::CapsuleId).primary_key())
                .col(json(CapsuleTemplates::Template))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_capsule_templates_capsule")
                        .from(CapsuleTemplates::Table, CapsuleTemplates::CapsuleId)
                        .to(Capsules::Table, Capsules::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Bumped in the same transaction as every change to a project's capsules, so a cached
        // list page of the project is known to be current by reading one row.
        m.create_table(
            Table::create()
                .table(ProjectGenerations::Table)
                .if_not_exists()
                .col(string_len(ProjectGenerations::ProjectId, 255).primary_key())
                .col(big_integer(ProjectGenerations::Generation))
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(CapsuleContainers::Table)
            .if_not_exists()
            .col(pk_auto(CapsuleContainers::Id))
            .col(string_len_uniq(CapsuleContainers::Uuid, 36))
            .col(integer(CapsuleContainers::CapsuleId))
            .col(boolean(CapsuleContainers::IsInit))
            .col(integer(CapsuleContainers::Position))
            .col(string_len(CapsuleContainers::Name, 255))
            .col(string_len(CapsuleContainers::Image, 255))
            .col(json(CapsuleContainers::Command))
            .col(json(CapsuleContainers::Environment))
            .col(text_null(CapsuleContainers::Workdir))
            .col(json(CapsuleContainers::Ports))
            .col(string_len(CapsuleContainers::ImagePullPolicy, 16))
            .col(double_null(CapsuleContainers::Cpu))
            .col(big_integer_null(CapsuleContainers::Memory))
            .col(string_len(CapsuleContainers::Status, 32))
            .col(text_null(CapsuleContainers::StatusReason))
            .col(string_len_null(CapsuleContainers::TaskState, 32))
            .col(string_len(CapsuleContainers::RestartPolicy, 16))
            .col(integer(CapsuleContainers::RestartMaxRetries))
            .col(boolean(CapsuleContainers::Interactive))
            .col(boolean(CapsuleContainers::Tty))
            .col(string_len_null(CapsuleContainers::ContainerId, 255))
            .col(integer_null(CapsuleContainers::ExitCode))
            .col(integer(CapsuleContainers::RestartCount))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_capsule_containers_capsule")
                    .from(CapsuleContainers::Table, CapsuleContainers::CapsuleId)
                    .to(Capsules::Table, Capsules::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .to_owned();
        created_updated(
            &mut t,
            CapsuleContainers::CreatedAt,
            CapsuleContainers::UpdatedAt,
        );
        m.create_table(t).await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_capsule_containers_capsule")
                .table(CapsuleContainers::Table)
                .col(CapsuleContainers::CapsuleId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VolumeMappings::Table)
                .if_not_exists()
                .col(pk_auto(VolumeMappings::Id))
                .col(integer(VolumeMappings::CapsuleId))
                .col(string_len(VolumeMappings::ContainerUuid, 36))
                .col(string_len(VolumeMappings::VolumeName, 255))
                .col(text(VolumeMappings::MountPath))
                .col(boolean(VolumeMappings::ReadOnly))
                .col(string_len_null(VolumeMappings::VolumeId, 36))
                .col(boolean(VolumeMappings::AutoRemove))
                .col(timestamp_with_time_zone(VolumeMappings::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_volume_mappings_capsule")
                        .from(VolumeMappings::Table, VolumeMappings::CapsuleId)
                        .to(Capsules::Table, Capsules::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_volume_mappings_capsule")
                .table(VolumeMappings::Table)
                .col(VolumeMappings::CapsuleId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CapsuleSecurityGroups::Table)
                .if_not_exists()
                .col(pk_auto(CapsuleSecurityGroups::Id))
                .col(integer(CapsuleSecurityGroups::CapsuleId))
                .col(integer(CapsuleSecurityGroups::Position))
                .col(string_len(CapsuleSecurityGroups::Reference, 255))
                .col(string_len_null(CapsuleSecurityGroups::SecurityGroupId, 36))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_capsule_security_groups_capsule")
                        .from(
                            CapsuleSecurityGroups::Table,
                            CapsuleSecurityGroups::CapsuleId,
                        )
                        .to(Capsules::Table, Capsules::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_capsule_security_groups_capsule")
                .table(CapsuleSecurityGroups::Table)
                .col(CapsuleSecurityGroups::CapsuleId)
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(ZunServices::Table)
            .if_not_exists()
            .col(pk_auto(ZunServices::Id))
            .col(string_len(ZunServices::Host, 255))
            .col(string_len(ZunServices::Binary, 255))
            .col(boolean(ZunServices::Disabled))
            .col(string_len_null(ZunServices::DisabledReason, 255))
            .col(timestamp_with_time_zone_null(ZunServices::LastSeenUp))
            .col(boolean(ZunServices::ForcedDown))
            .col(big_integer(ZunServices::ReportCount))
            .col(string_len_null(ZunServices::AvailabilityZone, 255))
            .to_owned();
        created_updated(&mut t, ZunServices::CreatedAt, ZunServices::UpdatedAt);
        m.create_table(t).await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("uniq_zun_services_host_binary")
                .table(ZunServices::Table)
                .col(ZunServices::Host)
                .col(ZunServices::Binary)
                .unique()
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(ComputeNodes::Table)
            .if_not_exists()
            .col(pk_auto(ComputeNodes::Id))
            .col(string_len_uniq(ComputeNodes::Uuid, 36))
            .col(string_len_uniq(ComputeNodes::Hostname, 255))
            .col(big_integer(ComputeNodes::MemTotal))
            .col(big_integer(ComputeNodes::MemUsed))
            .col(double(ComputeNodes::Cpus))
            .col(double(ComputeNodes::CpuUsed))
            .col(big_integer(ComputeNodes::DiskTotal))
            .col(big_integer(ComputeNodes::DiskUsed))
            .col(integer(ComputeNodes::TotalContainers))
            .col(string_len_null(ComputeNodes::Architecture, 32))
            .col(string_len_null(ComputeNodes::OsType, 32))
            .col(string_len_null(ComputeNodes::Os, 255))
            .col(string_len_null(ComputeNodes::KernelVersion, 255))
            .col(json(ComputeNodes::Labels))
            .col(json(ComputeNodes::Runtimes))
            .to_owned();
        created_updated(&mut t, ComputeNodes::CreatedAt, ComputeNodes::UpdatedAt);
        m.create_table(t).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            ProjectGenerations::Table.into_iden(),
            CapsuleTemplates::Table.into_iden(),
            CapsuleSecurityGroups::Table.into_iden(),
            VolumeMappings::Table.into_iden(),
            CapsuleContainers::Table.into_iden(),
            Capsules::Table.into_iden(),
            ZunServices::Table.into_iden(),
            ComputeNodes::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
