//! Running one query: copy what it names, build the sandbox, let DuckDB classify the statement,
//! refuse anything but a read query, then run it under a time and a row limit.

use std::path::Path;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use sqlx::Row;

use super::sandbox::Sandbox;
use super::tables::{TableCopy, copy_tables, referenced_tables, sql_name};
use crate::dataset_files::{self, Confinement, Exposed};
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
    /// Registered datasets left out of the query, each named with why.
    pub warnings: Vec<String>,
}

pub(crate) fn refuse(message: impl Into<String>) -> TrackerError {
    TrackerError::invalid(format!("query refused: {}", message.into()))
}

/// Runs one read-only query.
///
/// # Errors
/// A refused or failing query (DuckDB's message), the time limit, or a database error.
pub async fn query(
    store: &Store,
    sql: &str,
    limits: SqlLimits,
    scope: &Confinement,
) -> Result<SqlResult, TrackerError> {
    if sql.len() > limits.max_query_bytes {
        return Err(refuse(format!(
            "longer than {} bytes",
            limits.max_query_bytes
        )));
    }
    let tables = copy_tables(store, &referenced_tables(sql)).await?;
    // Registered datasets, each resolved to the files it may expose; one that cannot be (gone,
    // changed, pointing outside itself) is skipped with a warning naming it, and the query runs.
    let mut datasets = Vec::new();
    let mut warnings = Vec::new();
    for r in
        sqlx::query("SELECT name, path FROM datasets WHERE path IS NOT NULL ORDER BY dataset_id")
            .fetch_all(store.reader())
            .await?
    {
        let name: String = r.try_get("name")?;
        let path: String = r.try_get("path")?;
        match dataset_files::resolve(Path::new(&path), scope) {
            Ok(exposed) => datasets.push((sql_name(&name), exposed)),
            Err(e) => warnings.push(skipped(&name, &e.to_string())),
        }
    }
    let sql = sql.to_owned();
    let outcome =
        tokio::task::spawn_blocking(move || run_blocking(&sql, tables, &datasets, limits))
            .await
            .map_err(|e| TrackerError::Schema(format!("query task failed: {e}")))?;
    let mut result = match outcome {
        Ok(r) => r,
        // A query that fails (often: a table of a skipped dataset does not exist) says which
        // datasets were left out and why.
        Err(TrackerError::Api { code, message }) if !warnings.is_empty() => {
            return Err(TrackerError::Api {
                code,
                message: format!("{message}\n{}", warnings.join("\n")),
            });
        }
        Err(e) => return Err(e),
    };
    warnings.append(&mut result.warnings);
    result.warnings = warnings;
    for w in &result.warnings {
        tracing::warn!("{w}");
    }
    Ok(result)
}

fn skipped(name: &str, why: &str) -> String {
    format!("dataset {name:?} skipped (its tables are not in this query): {why}")
}

fn run_blocking(
    sql: &str,
    tables: Vec<TableCopy>,
    datasets: &[(String, Exposed)],
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
    let mut warnings = Vec::new();
    let quote = |p: &Path| p.display().to_string().replace('\'', "''");
    for (name, exposed) in datasets {
        let mut made = Vec::new();
        let outcome = exposed.tables.iter().try_for_each(|(t, parts)| {
            let list: Vec<String> = parts.iter().map(|p| format!("'{}'", quote(p))).collect();
            let view = format!("{name}_{t}");
            // DuckDB opens the first file when the view is made: a broken part fails here.
            conn.execute_batch(&format!(
                "CREATE VIEW \"{view}\" AS SELECT * FROM read_parquet([{}])",
                list.join(", ")
            ))?;
            made.push(view);
            Ok::<(), duckdb::Error>(())
        });
        match outcome {
            Ok(()) => allowed.extend(exposed.folders.iter().map(|f| format!("'{}/'", quote(f)))),
            Err(e) => {
                for view in made {
                    conn.execute_batch(&format!("DROP VIEW \"{view}\""))
                        .map_err(db)?;
                }
                warnings.push(skipped(name, &e.to_string()));
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
            warnings: warnings.clone(),
        })
    })();
    let _ = done_tx.send(());
    let interrupted = timer.join().unwrap_or(false);
    match result {
        Err(_) if interrupted => Err(refuse(format!(
            "it ran longer than the {} s limit",
            timeout.as_secs()
        ))),
        Err(TrackerError::Api { code, message }) if !warnings.is_empty() => {
            Err(TrackerError::Api {
                code,
                message: format!("{message}\n{}", warnings.join("\n")),
            })
        }
        other => other,
    }
}
