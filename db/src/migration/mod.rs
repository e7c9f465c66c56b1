//! Schema migrations, applied by `zun-api db sync` (and by tests on a fresh database).

use sea_orm_migration::prelude::*;

mod m20261124_000001_initial;
mod m20261124_000002_compute;
mod m20261124_000003_security_groups;
mod m20261124_000004_firewall_epoch;
mod m20261124_000005_volumes;
mod m20261207_000006_firewall_incarnation;
mod m20261207_000007_container_actions;
mod m20261208_000008_container_ready;

/// Every migration of the capsule database, oldest first.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261124_000002_compute::Migration),
            Box::new(m20261124_000003_security_groups::Migration),
            Box::new(m20261124_000004_firewall_epoch::Migration),
            Box::new(m20261124_000005_volumes::Migration),
            Box::new(m20261207_000006_firewall_incarnation::Migration),
            Box::new(m20261207_000007_container_actions::Migration),
            Box::new(m20261208_000008_container_ready::Migration),
        ]
    }
}
