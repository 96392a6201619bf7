//! Opening the database — a SQLite file, or PostgreSQL at a `postgres://` URL — as one writer
//! connection and a pool of read-only readers, with the chosen durability, migrations, and the
//! default experiment. Both go through sqlx's `Any` driver, so every statement of the store is
//! written once (`dialect.rs` says where the two differ).

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::{AnyPool, AssertSqlSafe, Executor};

use super::cache::CurveCache;
use super::dialect::{Dialect, redacted};
use super::now_ms;
use crate::error::TrackerError;
use crate::migrate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// SQLite: WAL + synchronous=NORMAL, survives a killed server process. PostgreSQL:
    /// synchronous_commit=on (its default), every commit flushed to the server's WAL.
    Normal,
    /// SQLite: synchronous=FULL, also survives an OS crash or power loss (an fsync per commit).
    /// PostgreSQL: the same as `Normal`, which already survives those.
    Full,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub(super) read: AnyPool,
    /// On SQLite, a typed read-only pool for the one read that moves millions of rows (a long
    /// metric history): sqlx's `Any` rows cost ~2.4 µs each, typed SQLite rows far less.
    pub(super) sqlite_read: Option<sqlx::SqlitePool>,
    pub(super) write: AnyPool,
    pub(super) dialect: Dialect,
    /// Where run artifacts live, as URIs: `mlflow-artifacts:` (served by this server).
    pub artifact_root: String,
    /// The run ids of committed writes, for live views (`/api/fusionprot/events`).
    pub(super) changes: tokio::sync::broadcast::Sender<String>,
    /// Long metric histories read for curves, shared by every clone of the store.
    pub(super) curves: Arc<Mutex<CurveCache>>,
    /// Held while a long history is read whole into the cache, so that a second reader of a
    /// history being loaded (the start-up warm-up, another request) waits for it instead of
    /// reading it again.
    pub(super) loads: Arc<tokio::sync::Mutex<()>>,
}

/// The key of the PostgreSQL advisory lock that every write transaction takes: writes are
/// serialised across every server on the database, as SQLite's write lock serialises them.
const WRITE_LOCK: i64 = 0x4650_5452_4b52; // "FPTRKR"

/// Runs `statements` on every new connection of a pool.
fn on_connect(
    statements: Vec<String>,
) -> impl for<'c> Fn(
    &'c mut AnyConnection,
    PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'c, Result<(), sqlx::Error>>
+ Send
+ Sync
+ 'static {
    let statements = std::sync::Arc::new(statements);
    move |conn, _meta| {
        let statements = statements.clone();
        Box::pin(async move {
            for s in statements.iter() {
                (&mut *conn).execute(AssertSqlSafe(s.clone())).await?;
            }
            Ok(())
        })
    }
}

impl Store {
    /// Opens (creating if needed) the database at `location` — a SQLite file path, or a
    /// `postgres://user@host/db` URL of an existing PostgreSQL database — and brings its schema
    /// up to date.
    ///
    /// # Errors
    /// An unopenable file or unreachable server, a database from a newer fusionprot, or a failed
    /// migration.
    pub async fn open(location: &str, durability: Durability) -> Result<Store, TrackerError> {
        Store::open_as(
            location,
            Dialect::of(location),
            durability,
            "mlflow-artifacts:".to_owned(),
        )
        .await
    }

    /// [`Store::open`] for a location parsed already (`--db`): no second guess at its kind.
    ///
    /// # Errors
    /// As [`Store::open`], and a SQLite path that is not UTF-8.
    pub async fn open_at(
        location: &super::DbLocation,
        durability: Durability,
    ) -> Result<Store, TrackerError> {
        Store::open_rooted(location, durability, None).await
    }

    /// [`Store::open_at`] with new experiments' artifacts under `artifact_root` (MLflow's
    /// `--default-artifact-root`, e.g. `file:///data/mlruns`: clients then write artifacts there
    /// themselves) instead of this server's store (`mlflow-artifacts:`). The default experiment
    /// of a new database is placed there too; existing experiments keep their locations.
    ///
    /// # Errors
    /// As [`Store::open_at`].
    pub async fn open_rooted(
        location: &super::DbLocation,
        durability: Durability,
        artifact_root: Option<&str>,
    ) -> Result<Store, TrackerError> {
        let root = artifact_root
            .map(|r| r.trim_end_matches('/').to_owned())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "mlflow-artifacts:".to_owned());
        match location {
            super::DbLocation::Sqlite(path) => {
                let text = path.to_str().ok_or_else(|| {
                    TrackerError::Schema(format!(
                        "{}: the database path is not UTF-8",
                        path.display()
                    ))
                })?;
                Store::open_as(text, Dialect::Sqlite, durability, root).await
            }
            super::DbLocation::Postgres(url) => {
                Store::open_as(url, Dialect::Postgres, durability, root).await
            }
        }
    }

    async fn open_as(
        location: &str,
        dialect: Dialect,
        durability: Durability,
        artifact_root: String,
    ) -> Result<Store, TrackerError> {
        sqlx::any::install_default_drivers();
        let (write, read) = match dialect {
            Dialect::Sqlite => open_sqlite(location, durability).await?,
            Dialect::Postgres => open_postgres(location).await?,
        };
        let sqlite_read = match dialect {
            Dialect::Sqlite => Some(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(2)
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::from_str(&sqlite_url(location, "ro")?)?
                            .busy_timeout(Duration::from_secs(30)),
                    )
                    .await?,
            ),
            Dialect::Postgres => None,
        };
        migrate::apply(&write, dialect, &redacted(location)).await?;
        let store = Store {
            read,
            sqlite_read,
            changes: tokio::sync::broadcast::channel(4096).0,
            curves: Arc::default(),
            loads: Arc::default(),
            write,
            dialect,
            artifact_root,
        };
        store.ensure_default_experiment().await?;
        Ok(store)
    }

    /// The pool for read-only queries (SQL export, tests): its connections cannot write.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Tells live views that `run_id` changed (after its write committed). Nobody listening is
    /// fine; a slow listener that falls behind is told so and refetches.
    pub(crate) fn changed(&self, run_id: &str) {
        let _ = self.changes.send(run_id.to_owned());
    }

    /// The changes from now on: run ids of committed writes, in commit order.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// The cache of long metric histories.
    pub(super) fn curves(&self) -> &Mutex<CurveCache> {
        &self.curves
    }

    /// The typed SQLite reader, on SQLite.
    pub(crate) fn sqlite_reader(&self) -> Option<&sqlx::SqlitePool> {
        self.sqlite_read.as_ref()
    }

    /// Which database this store runs on.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A write transaction on the single writer connection that holds the database's write lock
    /// from its first statement (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped
    /// advisory lock): what it reads cannot change before it writes, so a
    /// read-check-then-write (is the run active? does the experiment exist?) cannot be overtaken
    /// by a concurrent delete, from this server or from another one on the same database.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, TrackerError> {
        match self.dialect {
            Dialect::Sqlite => Ok(self.write.begin_with("BEGIN IMMEDIATE").await?),
            Dialect::Postgres => {
                let mut tx = self.write.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// A statement in this store's dialect (placeholders written `?`).
    pub(crate) fn query(
        &self,
        sql: &str,
    ) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        sqlx::query(AssertSqlSafe(self.dialect.sql(sql)))
    }

    /// A one-column statement in this store's dialect.
    pub(crate) fn query_scalar<O>(
        &self,
        sql: &str,
    ) -> sqlx::query::QueryScalar<'static, sqlx::Any, O, sqlx::any::AnyArguments>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_scalar(AssertSqlSafe(self.dialect.sql(sql)))
    }

    async fn ensure_default_experiment(&self) -> Result<(), TrackerError> {
        let now = now_ms();
        self.query(
            "INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
             VALUES (0, 'Default', ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(format!("{}/0", self.artifact_root))
        .bind(now)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

/// `sqlite://` URL of a file path (absolute, percent-encoded, so `?`, `#`, `%` and spaces in
/// names survive) with SQLite's `mode`.
fn sqlite_url(path: &str, mode: &str) -> Result<String, TrackerError> {
    let path = path.strip_prefix("sqlite://").unwrap_or(path);
    let abs = std::path::absolute(path).map_err(|e| TrackerError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let text = abs.to_str().ok_or_else(|| {
        TrackerError::invalid(format!("{}: the database path is not UTF-8", abs.display()))
    })?;
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'.')
        .remove(b'-')
        .remove(b'_');
    Ok(format!(
        "sqlite://{}?mode={mode}",
        percent_encoding::utf8_percent_encode(text, KEEP)
    ))
}

async fn open_sqlite(
    path: &str,
    durability: Durability,
) -> Result<(AnyPool, AnyPool), TrackerError> {
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    let pragmas = vec![
        "PRAGMA busy_timeout = 30000".to_owned(),
        "PRAGMA foreign_keys = ON".to_owned(),
        format!("PRAGMA synchronous = {sync}"),
    ];
    let mut writer = pragmas.clone();
    writer.insert(0, "PRAGMA journal_mode = WAL".to_owned());
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .after_connect(on_connect(writer))
        .connect(&sqlite_url(path, "rwc")?)
        .await?;
    let read = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(on_connect(pragmas))
        .connect(&sqlite_url(path, "ro")?)
        .await?;
    Ok((write, read))
}

async fn open_postgres(url: &str) -> Result<(AnyPool, AnyPool), TrackerError> {
    let connect = |e: sqlx::Error| {
        TrackerError::Schema(format!(
            "cannot connect to PostgreSQL at {}: {e}",
            redacted(url)
        ))
    };
    // One plain connection first: an unreachable server or a refused login is reported as
    // such at once, not as a pool's time-out a minute later.
    sqlx::Connection::close(
        <AnyConnection as sqlx::Connection>::connect(url)
            .await
            .map_err(connect)?,
    )
    .await
    .map_err(connect)?;
    // One writer, as on SQLite (the advisory lock serialises writes anyway); commits flushed.
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .after_connect(on_connect(vec!["SET synchronous_commit = on".to_owned()]))
        .connect(url)
        .await
        .map_err(connect)?;
    // Readers cannot write: every transaction of theirs is read-only.
    let read = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(on_connect(vec![
            "SET default_transaction_read_only = on".to_owned(),
        ]))
        .connect(url)
        .await
        .map_err(connect)?;
    Ok((write, read))
}
