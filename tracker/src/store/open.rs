//! Opening the database: one writer connection, a pool of read-only readers, WAL, the chosen
//! durability, migrations, and the default experiment.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::now_ms;
use crate::error::TrackerError;
use crate::migrate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// WAL + synchronous=NORMAL: survives a killed server process.
    Normal,
    /// synchronous=FULL: also survives an OS crash or power loss (an fsync per commit).
    Full,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub(super) read: SqlitePool,
    pub(super) write: SqlitePool,
    /// Where run artifacts live, as URIs: `mlflow-artifacts:` (served by this server).
    pub artifact_root: String,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// An unopenable file, a database from a newer fusionprot, or a failed migration.
    pub async fn open(path: &str, durability: Durability) -> Result<Store, TrackerError> {
        let sync = match durability {
            Durability::Normal => SqliteSynchronous::Normal,
            Durability::Full => SqliteSynchronous::Full,
        };
        let base = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        migrate::apply(&write, path).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(base.read_only(true))
            .await?;
        let store = Store {
            read,
            write,
            artifact_root: "mlflow-artifacts:".into(),
        };
        store.ensure_default_experiment().await?;
        Ok(store)
    }

    /// The SQLite pool for read-only queries (SQL export, tests).
    pub fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// A write transaction on the single writer connection that takes SQLite's write lock at its
    /// first statement (`BEGIN IMMEDIATE`): what it reads cannot change before it writes, so a
    /// read-check-then-write (is the run active? does the experiment exist?) cannot be overtaken
    /// by a concurrent delete, from this server or from another process on the same file.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, TrackerError> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn ensure_default_experiment(&self) -> Result<(), TrackerError> {
        let now = now_ms();
        sqlx::query(
            "INSERT OR IGNORE INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
             VALUES (0, 'Default', ?, ?, ?)",
        )
        .bind(format!("{}/0", self.artifact_root))
        .bind(now)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
