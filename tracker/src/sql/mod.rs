//! SQL over results: a read-only query run by DuckDB over the tracker's tables and the Parquet
//! tables of registered datasets, in a sandbox built from DuckDB's own controls.
//!
//! Each query gets a fresh in-memory DuckDB. The tracker tables the query names (as identifiers,
//! not inside strings) are copied into it from SQLite, so nothing it does can touch the system of
//! record; each registered dataset's tables become views `<dataset>_<table>` over exactly the
//! Parquet files [`crate::dataset_files::resolve`] allows (a dataset that cannot be resolved, or
//! whose files DuckDB cannot open, is left out with a warning and the query still runs); then the
//! configuration is locked: `enable_external_access = false` with `allowed_directories` = the
//! resolved table folders of those files, no extension installing or
//! loading, and `lock_configuration = true`. On top of that, DuckDB's own parser classifies the
//! statement before it runs and only read queries run: `COPY … TO`, `EXPORT DATABASE`,
//! `CREATE … AS`, `ATTACH`, `INSERT` and every other statement are refused, even inside an
//! allowed folder. One statement per query (DuckDB's count), a wall-clock limit (the query is
//! interrupted) and a row limit.

mod run;
mod sandbox;
mod tables;
mod wire;

pub use run::{SqlLimits, SqlResult, query};
pub use tables::{DATASET_TABLES, TABLES, sql_name};
pub use wire::{from_ipc, nested_as_json_text, to_ipc, to_json, to_parquet};
