//! The tracker tables SQL can read (copied from SQLite into each query's DuckDB, only those the
//! query names as identifiers) and the names of registered datasets' views.

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
            ("points", "BIGINT"),
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
    (
        "input_datasets",
        &[
            ("dataset_uuid", "VARCHAR"),
            ("experiment_id", "BIGINT"),
            ("name", "VARCHAR"),
            ("digest", "VARCHAR"),
            ("dataset_source_type", "VARCHAR"),
            ("dataset_source", "VARCHAR"),
            ("dataset_schema", "VARCHAR"),
            ("dataset_profile", "VARCHAR"),
        ],
    ),
    (
        "run_inputs",
        &[
            ("input_uuid", "VARCHAR"),
            ("run_uuid", "VARCHAR"),
            ("dataset_uuid", "VARCHAR"),
            ("position", "BIGINT"),
        ],
    ),
    (
        "run_input_tags",
        &[
            ("input_uuid", "VARCHAR"),
            ("name", "VARCHAR"),
            ("value", "VARCHAR"),
        ],
    ),
];

pub use crate::dataset_files::DATASET_TABLES;

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

/// A tracker table's name, columns and rows, ready to append into DuckDB.
pub(crate) type TableCopy = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Vec<Vec<DValue>>,
);

/// The tracker tables `sql` refers to: those whose name appears as an identifier (bare or
/// double-quoted, any case) outside string literals and comments. Naming a table only inside a
/// string (`WHERE key = 'runs'`) does not copy it. A name used for something else (a column
/// alias) copies the table needlessly but harmlessly; a table reached only through a string
/// (`query_table('runs')`) is not copied, so that query fails loudly instead of reading nothing.
pub(crate) fn referenced_tables(sql: &str) -> Vec<&'static str> {
    let idents = identifiers(sql);
    TABLES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| idents.iter().any(|i| i == name))
        .collect()
}

/// The identifiers of `sql`, lower-cased: bare words and double-quoted names, skipping string
/// literals (`'…'`, `E'…'`, dollar-quoted `$tag$…$tag$`) and comments (`--`, `/* */`).
fn identifiers(sql: &str) -> Vec<String> {
    let c: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\'' {
            // E'…' strings may escape a quote with a backslash; plain ones double it.
            let escapes = i > 0 && matches!(c[i - 1], 'e' | 'E');
            i += 1;
            while i < c.len() {
                if escapes && c[i] == '\\' {
                    i += 2;
                    continue;
                }
                if c[i] == '\'' {
                    if c.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
        } else if ch == '"' {
            let mut name = String::new();
            i += 1;
            while i < c.len() {
                if c[i] == '"' {
                    if c.get(i + 1) == Some(&'"') {
                        name.push('"');
                        i += 2;
                        continue;
                    }
                    break;
                }
                name.push(c[i]);
                i += 1;
            }
            out.push(name.to_lowercase());
            i += 1;
        } else if ch == '-' && c.get(i + 1) == Some(&'-') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if ch == '$' {
            // $tag$ … $tag$ (the tag may be empty); a lone `$1` parameter is just skipped.
            let mut j = i + 1;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            if j < c.len() && c[j] == '$' {
                let tag: String = c[i..=j].iter().collect();
                let rest: String = c[j + 1..].iter().collect();
                let end = rest.find(&tag).map_or(c.len(), |k| {
                    j + 1 + rest[..k].chars().count() + tag.chars().count()
                });
                i = end;
            } else {
                i = j;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '$') {
                i += 1;
            }
            out.push(c[start..i].iter().collect::<String>().to_lowercase());
        } else {
            i += 1;
        }
    }
    out
}

/// Reads the named tracker tables from SQLite (through the read-only pool).
///
/// # Errors
/// A database error.
pub(crate) async fn copy_tables(
    store: &Store,
    names: &[&str],
) -> Result<Vec<TableCopy>, TrackerError> {
    let mut tables = Vec::new();
    for (name, cols) in TABLES.iter().filter(|(n, _)| names.contains(n)) {
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
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_referenced_by_identifiers_not_by_strings() {
        assert_eq!(
            referenced_tables("select * from runs r join params p using (run_uuid)"),
            ["runs", "params"]
        );
        assert_eq!(referenced_tables("SELECT * FROM METRICS"), ["metrics"]);
        assert_eq!(referenced_tables("select * from \"Tags\""), ["tags"]);
        assert_eq!(
            referenced_tables("select * from latest_metrics"),
            ["latest_metrics"]
        );
        assert!(referenced_tables("select runs_x from y").is_empty());
        assert!(referenced_tables("SELECT 'runs', 'it''s metrics' AS x").is_empty());
        assert!(referenced_tables("SELECT E'a\\' runs' AS x").is_empty());
        assert!(referenced_tables("SELECT $$ from runs $$, $q$metrics$q$").is_empty());
        assert!(referenced_tables("SELECT 1 -- from runs\n /* params */").is_empty());
        assert_eq!(referenced_tables("SELECT 'x' FROM tags -- runs"), ["tags"]);
        assert_eq!(sql_name("EC 2024 (train)"), "ec_2024__train_");
        assert_eq!(sql_name("2x"), "ds_2x");
    }
}
