//! SQL over results: a read-only query run by DuckDB over the tracker's tables and the Parquet
//! tables of registered datasets, in a sandbox built from DuckDB's own controls.
//!
//! Each query gets a fresh in-memory DuckDB. The tracker tables the query names are copied into
//! it from SQLite (so nothing it does can touch the system of record), each registered dataset's
//! tables become views `<dataset>_<table>` over its Parquet files, and then the configuration is
//! locked: `enable_external_access = false` with `allowed_directories` = the registered dataset
//! folders (no other file, no network, no ATTACH of files, no COPY … TO outside them),
//! no extension installing or loading, and `lock_configuration = true` so no SET or PRAGMA can
//! undo it. One statement per query, a wall-clock limit (the query is interrupted) and a row
//! limit.

use std::time::Duration;

use arrow_array::RecordBatch;
use duckdb::types::Value as DValue;
use sqlx::Row;

use crate::error::TrackerError;
use crate::store::Store;

/// The tracker tables visible to SQL, with their columns and DuckDB types.
pub const TABLES: &[(&str, &[(&str, &str)])] = &[
    (
        "experiments",
        &[
            ("experiment_id", "BIGINT"),
            ("name", "VARCHAR"),
            ("artifact_location", "VARCHAR"),
            ("lifecycle_stage", "VARCHAR"),
            ("creation_time", "BIGINT"),
            ("last_update_time", "BIGINT"),
        ],
    ),
    (
        "experiment_tags",
        &[
            ("experiment_id", "BIGINT"),
            ("key", "VARCHAR"),
            ("value", "VARCHAR"),
        ],
    ),
    (
        "runs",
        &[
            ("run_uuid", "VARCHAR"),
            ("experiment_id", "BIGINT"),
            ("run_name", "VARCHAR"),
            ("user_id", "VARCHAR"),
            ("status", "VARCHAR"),
            ("start_time", "BIGINT"),
            ("end_time", "BIGINT"),
            ("lifecycle_stage", "VARCHAR"),
            ("artifact_uri", "VARCHAR"),
        ],
    ),
    (
        "params",
        &[
            ("run_uuid", "VARCHAR"),
            ("key", "VARCHAR"),
            ("value", "VARCHAR"),
        ],
    ),
    (
        "tags",
        &[
            ("run_uuid", "VARCHAR"),
            ("key", "VARCHAR"),
            ("value", "VARCHAR"),
        ],
    ),
    (
        "metrics",
        &[
            ("run_uuid", "VARCHAR"),
            ("key", "VARCHAR"),
            ("step", "BIGINT"),
            ("timestamp", "BIGINT"),
            ("value", "DOUBLE"),
            ("is_nan", "BIGINT"),
        ],
    ),
    (
        "latest_metrics",
        &[
            ("run_uuid", "VARCHAR"),
            ("key", "VARCHAR"),
            ("step", "BIGINT"),
            ("timestamp", "BIGINT"),
            ("value", "DOUBLE"),
            ("is_nan", "BIGINT"),
        ],
    ),
    (
        "checkpoints",
        &[
            ("checkpoint_id", "BIGINT"),
            ("run_uuid", "VARCHAR"),
            ("step", "BIGINT"),
            ("path", "VARCHAR"),
            ("artifact_path", "VARCHAR"),
            ("size_bytes", "BIGINT"),
            ("sha256", "VARCHAR"),
            ("metrics_json", "VARCHAR"),
            ("is_best", "BIGINT"),
            ("created_time", "BIGINT"),
        ],
    ),
    (
        "datasets",
        &[
            ("dataset_id", "BIGINT"),
            ("name", "VARCHAR"),
            ("content_hash", "VARCHAR"),
            ("schema_version", "BIGINT"),
            ("path", "VARCHAR"),
            ("manifest_json", "VARCHAR"),
            ("split_json", "VARCHAR"),
            ("created_time", "BIGINT"),
        ],
    ),
    (
        "run_datasets",
        &[
            ("run_uuid", "VARCHAR"),
            ("dataset_id", "BIGINT"),
            ("context", "VARCHAR"),
        ],
    ),
];

/// The dataset tables exposed per registered dataset.
pub const DATASET_TABLES: &[&str] = &["proteins", "residues", "edges", "splits"];

#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    pub max_rows: usize,
    pub timeout: Duration,
    pub max_query_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_rows: 100_000,
            timeout: Duration::from_secs(30),
            max_query_bytes: 100_000,
        }
    }
}

#[derive(Debug)]
pub struct SqlResult {
    pub batches: Vec<RecordBatch>,
    /// More rows existed than the row limit allowed.
    pub truncated: bool,
}

fn refuse(message: impl Into<String>) -> TrackerError {
    TrackerError::invalid(format!("query refused: {}", message.into()))
}

/// Whether `query` mentions `word` as a whole identifier (case-insensitive).
fn mentions(query: &str, word: &str) -> bool {
    let q = query.to_ascii_lowercase();
    let bytes = q.as_bytes();
    q.match_indices(word).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + word.len()).copied();
        let ident = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
        !ident(before) && !ident(after)
    })
}

/// Whether `sql` holds at most one statement: `;` outside quotes, identifiers and comments may
/// only end it. (DuckDB's prepare would run every statement before the last.)
fn single_statement(sql: &str) -> bool {
    let c: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut ended = false;
    while i < c.len() {
        let ch = c[i];
        if ended && !ch.is_whitespace() && ch != ';' {
            if ch == '-' && c.get(i + 1) == Some(&'-') {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            return false;
        }
        match ch {
            '\'' | '"' => {
                i += 1;
                while i < c.len() {
                    if c[i] == ch {
                        if c.get(i + 1) == Some(&ch) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            '-' if c.get(i + 1) == Some(&'-') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') {
                    i += 1;
                }
                i += 1;
            }
            ';' => ended = true,
            _ => {}
        }
        i += 1;
    }
    true
}

/// A dataset's SQL name: lowercase letters, digits and underscores.
pub fn sql_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "ds_");
    }
    s
}

/// Runs one read-only query.
///
/// # Errors
/// A refused or failing query (DuckDB's message), the time limit, or a database error.
pub async fn query(store: &Store, sql: &str, limits: SqlLimits) -> Result<SqlResult, TrackerError> {
    if sql.len() > limits.max_query_bytes {
        return Err(refuse(format!(
            "longer than {} bytes",
            limits.max_query_bytes
        )));
    }
    if !single_statement(sql) {
        return Err(refuse("one statement per query"));
    }
    // Copy the tracker tables the query names.
    let mut tables = Vec::new();
    for (name, cols) in TABLES {
        if !mentions(sql, name) {
            continue;
        }
        let list: Vec<&str> = cols.iter().map(|c| c.0).collect();
        let select = format!("SELECT {} FROM {name}", list.join(", "));
        let rows = sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(store.reader())
            .await?;
        let mut values = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut row = Vec::with_capacity(cols.len());
            for (i, (_, ty)) in cols.iter().enumerate() {
                row.push(match *ty {
                    "BIGINT" => r
                        .try_get::<Option<i64>, _>(i)?
                        .map_or(DValue::Null, DValue::BigInt),
                    "DOUBLE" => r
                        .try_get::<Option<f64>, _>(i)?
                        .map_or(DValue::Null, DValue::Double),
                    _ => r
                        .try_get::<Option<String>, _>(i)?
                        .map_or(DValue::Null, DValue::Text),
                });
            }
            values.push(row);
        }
        tables.push((*name, *cols, values));
    }
    // Registered datasets that still exist on disk.
    let mut datasets = Vec::new();
    for r in
        sqlx::query("SELECT name, path FROM datasets WHERE path IS NOT NULL ORDER BY dataset_id")
            .fetch_all(store.reader())
            .await?
    {
        let name: String = r.try_get("name")?;
        let path: String = r.try_get("path")?;
        if let Ok(canon) = std::fs::canonicalize(&path) {
            datasets.push((sql_name(&name), canon));
        }
    }
    let sql = sql.to_owned();
    tokio::task::spawn_blocking(move || run_blocking(&sql, tables, datasets, limits))
        .await
        .map_err(|e| TrackerError::Schema(format!("query task failed: {e}")))?
}

type Table = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Vec<Vec<DValue>>,
);

fn run_blocking(
    sql: &str,
    tables: Vec<Table>,
    datasets: Vec<(String, std::path::PathBuf)>,
    limits: SqlLimits,
) -> Result<SqlResult, TrackerError> {
    let db = |e: duckdb::Error| refuse(e.to_string());
    let conn = duckdb::Connection::open_in_memory().map_err(db)?;
    conn.execute_batch("SET threads = 2; SET memory_limit = '2GB'; SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;")
        .map_err(db)?;
    for (name, cols, rows) in tables {
        let ddl: Vec<String> = cols.iter().map(|(c, t)| format!("\"{c}\" {t}")).collect();
        conn.execute_batch(&format!("CREATE TABLE {name} ({})", ddl.join(", ")))
            .map_err(db)?;
        let mut app = conn.appender(name).map_err(db)?;
        for row in rows {
            app.append_row(duckdb::appender_params_from_iter(row))
                .map_err(db)?;
        }
        app.flush().map_err(db)?;
    }
    let mut allowed = Vec::new();
    for (name, dir) in &datasets {
        let d = dir.display().to_string().replace('\'', "''");
        for t in DATASET_TABLES {
            if dir.join(t).is_dir() {
                conn.execute_batch(&format!(
                    "CREATE VIEW \"{name}_{t}\" AS SELECT * FROM read_parquet('{d}/{t}/*.parquet')"
                ))
                .map_err(db)?;
                // Only the table folders, not the dataset root or anything beside it.
                allowed.push(format!("'{d}/{t}/'"));
            }
        }
    }
    conn.execute_batch(&format!(
        "SET allowed_directories = [{}]; SET enable_external_access = false; SET lock_configuration = true;",
        allowed.join(", ")
    ))
    .map_err(db)?;

    let handle = conn.interrupt_handle();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timeout = limits.timeout;
    let timer = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout).is_err() {
            handle.interrupt();
            true
        } else {
            false
        }
    });
    let result = (|| -> Result<SqlResult, TrackerError> {
        let mut stmt = conn.prepare(sql).map_err(db)?;
        let arrow = stmt.query_arrow([]).map_err(db)?;
        let mut batches = Vec::new();
        let mut rows = 0usize;
        let mut truncated = false;
        for batch in arrow {
            let take = (limits.max_rows - rows).min(batch.num_rows());
            if take < batch.num_rows() {
                truncated = true;
            }
            if take > 0 {
                batches.push(batch.slice(0, take));
            }
            rows += take;
            if truncated {
                break;
            }
        }
        Ok(SqlResult { batches, truncated })
    })();
    let _ = done_tx.send(());
    let interrupted = timer.join().unwrap_or(false);
    match result {
        Err(_) if interrupted => Err(refuse(format!(
            "it ran longer than the {} s limit",
            timeout.as_secs()
        ))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_mentions_are_whole_words() {
        assert!(mentions(
            "select * from runs r join params p using (run_uuid)",
            "runs"
        ));
        assert!(mentions("SELECT * FROM METRICS", "metrics"));
        assert!(!mentions("select * from latest_metrics", "metrics"));
        assert!(!mentions("select runs_x from y", "runs"));
        assert_eq!(sql_name("EC 2024 (train)"), "ec_2024__train_");
        assert_eq!(sql_name("2x"), "ds_2x");
    }

    #[test]
    fn one_statement_per_query() {
        assert!(single_statement("SELECT 1"));
        assert!(single_statement("SELECT ';' AS x; -- done"));
        assert!(single_statement("SELECT \"a;b\" FROM t /* ; */ ;"));
        assert!(!single_statement("SELECT 1; SELECT 2"));
        assert!(!single_statement("SELECT 1; ATTACH 'x'"));
    }
}
