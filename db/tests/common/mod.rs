//! Test databases: a fresh SQLite file, or a fresh schema in the PostgreSQL that devstack runs.

use std::future::Future;

use db::Database;
use sea_orm::{ConnectionTrait, Statement};

/// Declares each listed `async fn(Database)` as two tests, `sqlite::<name>` and
/// `postgres::<name>`, each on a fresh database.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { $crate::common::with_db($crate::common::Backend::Sqlite, super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { $crate::common::with_db($crate::common::Backend::Postgres, super::$name).await })*
        }
    };
}

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh schema in PostgreSQL.
    Postgres,
}

/// The PostgreSQL test URL, from devstack's test environment. Missing is a failure, not a skip:
/// the README's test command starts PostgreSQL and exports it.
pub fn postgres_url() -> String {
    test_support::env("ZUN_TEST_POSTGRES_URL")
}

/// Runs `body` against a fresh, migrated database of `backend`, then removes it, even when
/// `body` panics.
pub async fn with_db<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Database) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    match backend {
        Backend::Sqlite => {
            let dir = test_support::TempDir::new("zun-db-test");
            let url = format!("sqlite://{}/zun.db", dir.display());
            let db = Database::connect(&url).await.expect("connect sqlite");
            db.migrate().await.expect("migrate sqlite");
            let res = tokio::spawn(body(db)).await;
            drop(dir);
            if let Err(e) = res {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        Backend::Postgres => {
            let base = postgres_url();
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&base).await.expect("connect postgres");
            exec(&admin, &format!("CREATE SCHEMA {schema}")).await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
            let db = Database::connect(&url)
                .await
                .expect("connect postgres schema");
            db.migrate().await.expect("migrate postgres");
            let res = tokio::spawn(body(db)).await;
            exec(&admin, &format!("DROP SCHEMA {schema} CASCADE")).await;
            if let Err(e) = res {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

async fn exec(db: &Database, sql: &str) {
    let conn = db.connection();
    conn.execute(Statement::from_string(
        conn.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
