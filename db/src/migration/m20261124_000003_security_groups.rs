//! Security groups and their rules (Neutron's shapes), and each project's `default` group.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `security_groups`, `security_group_rules` and `default_security_groups`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000003_security_groups"
    }
}

#[derive(DeriveIden)]
enum SecurityGroups {
    Table,
    Id,
    ProjectId,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
    RevisionNumber,
}

#[derive(DeriveIden)]
enum SecurityGroupRules {
    Table,
    Id,
    SecurityGroupId,
    ProjectId,
    Direction,
    Ethertype,
    Protocol,
    PortRangeMin,
    PortRangeMax,
    RemoteIpPrefix,
    RemoteGroupId,
    Description,
    Fingerprint,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DefaultSecurityGroups {
    Table,
    ProjectId,
    SecurityGroupId,
}

// async_trait cannot take `SchemaManager<'_>` here (early- vs late-bound lifetimes).
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SecurityGroups::Table)
                .if_not_exists()
                .col(string_len(SecurityGroups::Id, 36).primary_key())
                .col(string_len(SecurityGroups::ProjectId, 255))
                .col(string_len(SecurityGroups::Name, 255))
                .col(string_len(SecurityGroups::Description, 255))
                .col(timestamp_with_time_zone(SecurityGroups::CreatedAt))
                .col(timestamp_with_time_zone(SecurityGroups::UpdatedAt))
                .col(integer(SecurityGroups::RevisionNumber))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("idx_security_groups_project")
                .table(SecurityGroups::Table)
                .col(SecurityGroups::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SecurityGroupRules::Table)
                .if_not_exists()
                .col(string_len(SecurityGroupRules::Id, 36).primary_key())
                .col(string_len(SecurityGroupRules::SecurityGroupId, 36))
                .col(string_len(SecurityGroupRules::ProjectId, 255))
                .col(string_len(SecurityGroupRules::Direction, 8))
                .col(string_len(SecurityGroupRules::Ethertype, 4))
                .col(string_len_null(SecurityGroupRules::Protocol, 16))
                .col(integer_null(SecurityGroupRules::PortRangeMin))
                .col(integer_null(SecurityGroupRules::PortRangeMax))
                .col(string_len_null(SecurityGroupRules::RemoteIpPrefix, 64))
                .col(string_len_null(SecurityGroupRules::RemoteGroupId, 36))
                .col(string_len(SecurityGroupRules::Description, 255))
                .col(string_len(SecurityGroupRules::Fingerprint, 64))
                .col(timestamp_with_time_zone(SecurityGroupRules::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_security_group_rules_group")
                        .from(
                            SecurityGroupRules::Table,
                            SecurityGroupRules::SecurityGroupId,
                        )
                        .to(SecurityGroups::Table, SecurityGroups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Two rules letting the same traffic through are one rule: the second insert fails
        // here, whichever transaction gets there second (Neutron's 409).
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("uniq_security_group_rules_fingerprint")
                .table(SecurityGroupRules::Table)
                .col(SecurityGroupRules::SecurityGroupId)
                .col(SecurityGroupRules::Fingerprint)
                .unique()
                .to_owned(),
        )
        .await?;
        // One `default` group per project, even when two first requests race to make it.
        m.create_table(
            Table::create()
                .table(DefaultSecurityGroups::Table)
                .if_not_exists()
                .col(string_len(DefaultSecurityGroups::ProjectId, 255).primary_key())
                .col(string_len(DefaultSecurityGroups::SecurityGroupId, 36))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_default_security_groups_group")
                        .from(
                            DefaultSecurityGroups::Table,
                            DefaultSecurityGroups::SecurityGroupId,
                        )
                        .to(SecurityGroups::Table, SecurityGroups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            DefaultSecurityGroups::Table.into_iden(),
            SecurityGroupRules::Table.into_iden(),
            SecurityGroups::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
