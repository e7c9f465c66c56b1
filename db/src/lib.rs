//! Database layer of the capsule service: sea-orm entities, migrations and one datastore
//! module per resource. SQLite (one host) and PostgreSQL (several hosts) are both supported.

pub mod capsules;
pub mod container_actions;
pub mod containers;
pub mod entity;
mod error;
pub mod firewall;
pub mod gauges;
mod ground;
pub mod migration;
pub mod outbox;
mod pagination;
pub mod placement;
pub mod reports;
pub mod secgroups;
pub mod services;
pub mod volumes;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

pub use capsules::{
    CapsuleRecord, NewCapsule, NewContainer, NewVolumeMapping, Scope, SecurityGroupBinding,
};
pub use container_actions::{ActionRecord, EventOutcome, NewAction};
pub use containers::ContainerRecord;
pub use error::DbError;
pub use outbox::NewOutbox;
pub use pagination::{ListParams, SortDir, SortKey};
pub use placement::{Claim, HostCandidate};
pub use reports::ReportOutcome;
pub use services::{service_is_up, NodeListParams, NodeSortKey};

/// A handle on the capsule database: a connection pool, cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    conn: DatabaseConnection,
}

impl Database {
    /// Connects to `url`: `sqlite://<path>` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30));
        if url.starts_with("sqlite:") {
            // WAL lets readers run beside the single writer; the busy timeout makes
            // concurrent writers (several API workers) wait instead of failing.
            opts.max_connections(8).map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        } else {
            opts.max_connections(16);
        }
        let conn = sea_orm::Database::connect(opts)
            .await
            .map_err(|source| DbError::Connect {
                url: redact_url(url),
                source,
            })?;
        Ok(Self { conn })
    }

    /// Applies every pending migration (`zun-api db sync`).
    pub async fn migrate(&self) -> Result<(), DbError> {
        migration::Migrator::up(&self.conn, None)
            .await
            .map_err(|source| DbError::Migrate { source })
    }

    /// The names of the migrations applied so far.
    pub async fn applied_migrations(&self) -> Result<Vec<String>, DbError> {
        let applied = migration::Migrator::get_applied_migrations(&self.conn)
            .await
            .map_err(|source| DbError::Migrate { source })?;
        Ok(applied.iter().map(|m| m.name().to_owned()).collect())
    }

    /// The names of migrations not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, DbError> {
        let pending = migration::Migrator::get_pending_migrations(&self.conn)
            .await
            .map_err(|source| DbError::Migrate { source })?;
        Ok(pending.iter().map(|m| m.name().to_owned()).collect())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.conn
            .ping()
            .await
            .map_err(DbError::query("checking the database connection"))
    }

    /// The underlying sea-orm connection, for the datastore modules and tests.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }
}

/// Hides the password of a database URL so it can be logged and shown in errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((creds, host)) => {
            let user = creds.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_password_only() {
        assert_eq!(
            redact_url("postgres://zun:s3cret@127.0.0.1:5432/zun"),
            "postgres://zun:***@127.0.0.1:5432/zun"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/zun.db"),
            "sqlite:///var/lib/zun.db"
        );
    }
}
