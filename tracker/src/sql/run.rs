//! Running one query: copy what it names, build the sandbox, let DuckDB classify the statement,
//! refuse anything but a read query, then run it under a time and a row limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use sqlx::Row;

use super::sandbox::Sandbox;
use super::tables::{DATASET_TABLES, TableCopy, copy_tables, referenced_tables, sql_name};
use crate::error::TrackerError;
use crate::store::Store;

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

/// A query's answer: its schema (column names in order, duplicates included, and types), even
/// when no row matched, and the rows up to the limit.
#[derive(Debug)]
pub struct SqlResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// More rows existed than the row limit allowed.
    pub truncated: bool,
}

pub(crate) fn refuse(message: impl Into<String>) -> TrackerError {
    TrackerError::invalid(format!("query refused: {}", message.into()))
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
    let tables = copy_tables(store, &referenced_tables(sql)).await?;
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
    tokio::task::spawn_blocking(move || run_blocking(&sql, tables, &datasets, limits))
        .await
        .map_err(|e| TrackerError::Schema(format!("query task failed: {e}")))?
}

fn run_blocking(
    sql: &str,
    tables: Vec<TableCopy>,
    datasets: &[(String, PathBuf)],
    limits: SqlLimits,
) -> Result<SqlResult, TrackerError> {
    let db = |e: duckdb::Error| refuse(e.to_string());
    let sandbox = Sandbox::open().map_err(refuse)?;
    let conn = sandbox.conn();
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
    let quote = |p: &Path| p.display().to_string().replace('\'', "''");
    for (name, dir) in datasets {
        let d = quote(dir);
        let linked = linked_tables(dir);
        for t in DATASET_TABLES {
            if dir.join(t).is_dir() {
                conn.execute_batch(&format!(
                    "CREATE VIEW \"{name}_{t}\" AS SELECT * FROM read_parquet('{d}/{t}/*.parquet')"
                ))
                .map_err(db)?;
                // Only the table folders, not the dataset root or anything beside it.
                allowed.push(format!("'{d}/{t}/'"));
            } else if let Some(parts) = linked.get(*t).filter(|p| !p.is_empty()) {
                // A linked dataset (`merge --link`): the shards' parts its manifest lists, and
                // only the shards' folders of this table.
                let list: Vec<String> = parts.iter().map(|p| format!("'{}'", quote(p))).collect();
                conn.execute_batch(&format!(
                    "CREATE VIEW \"{name}_{t}\" AS SELECT * FROM read_parquet([{}])",
                    list.join(", ")
                ))
                .map_err(db)?;
                let mut folders: Vec<String> = parts
                    .iter()
                    .filter_map(|p| p.parent())
                    .map(|f| format!("'{}/'", quote(f)))
                    .collect();
                folders.sort();
                folders.dedup();
                allowed.extend(folders);
            }
        }
    }
    conn.execute_batch(&format!(
        "SET allowed_directories = [{}]; SET enable_external_access = false; SET lock_configuration = true;",
        allowed.join(", ")
    ))
    .map_err(db)?;
    // DuckDB's own parser decides what the statement is; only read queries run. The access
    // controls above stay as a second wall (a read query still cannot open other files).
    sandbox.check_read_only(sql).map_err(refuse)?;

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
        let schema = arrow.get_schema();
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
        Ok(SqlResult {
            schema,
            batches,
            truncated,
        })
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

/// The parts of each table a linked dataset's manifest lists (`merge --link`), resolved and
/// canonical where they exist; empty for a dataset that is not linked.
fn linked_tables(dir: &Path) -> std::collections::HashMap<String, Vec<PathBuf>> {
    let mut out = std::collections::HashMap::new();
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
        return out;
    };
    let Ok(manifest) = serde_json::from_str::<serde_json::Value>(&text) else {
        return out;
    };
    if manifest.get("link").is_none() {
        return out;
    }
    let Some(tables) = manifest.get("tables").and_then(|t| t.as_object()) else {
        return out;
    };
    for (name, table) in tables {
        let parts = table
            .get("parts")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("path").and_then(|p| p.as_str()))
            // a missing part stays in the list: DuckDB's error names it, no row is silently lost
            .map(|p| std::fs::canonicalize(dir.join(p)).unwrap_or_else(|_| dir.join(p)))
            .collect();
        out.insert(name.clone(), parts);
    }
    out
}
