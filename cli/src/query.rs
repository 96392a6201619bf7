//! `fusionprot query`: read-only SQL over runs, metrics and registered datasets (DuckDB), from
//! the local database or a running tracker; `fusionprot register`: make a dataset queryable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use clap::{Args, ValueEnum};
use fusionprot_tracker::sql::SqlResult;
use serde_json::json;

use crate::remote;

/// Where the tracker's data is: the local database file, or a running server.
#[derive(Debug, Args)]
pub struct TrackerTarget {
    /// The tracker database, opened directly: a SQLite file or a postgres:// URL.
    #[arg(
        long,
        env = "FUSIONPROT_DB",
        hide_env_values = true,
        default_value = "fusionprot.db",
        conflicts_with = "tracker"
    )]
    pub db: fusionprot_tracker::store::DbLocation,
    /// A running tracker (http://HOST:PORT) instead of the local database.
    #[arg(long)]
    pub tracker: Option<String>,
    /// Bearer token of the tracker (`serve --token`).
    #[arg(long, env = "FUSIONPROT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl TrackerTarget {
    /// Where a local database's datasets may not lie: its artifact store (`<database's
    /// folder>/artifacts`, where `sqlite:///` clients put run artifacts and `serve --artifacts`
    /// should point), which clients write.
    fn confinement(&self) -> fusionprot_tracker::dataset_files::Confinement {
        // A PostgreSQL tracker keeps no artifact store on this machine.
        let folder = self.db.sqlite_path().map(|db| {
            db.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
        });
        fusionprot_tracker::dataset_files::Confinement {
            below: None,
            never: folder
                .and_then(|f| std::fs::canonicalize(f.join("artifacts")).ok())
                .into_iter()
                .collect(),
        }
    }

    /// Runs `work` on the local store (which must exist unless `create`).
    fn with_store<T>(
        &self,
        create: bool,
        work: impl AsyncFnOnce(fusionprot_tracker::Store) -> Result<T, fusionprot_tracker::TrackerError>,
    ) -> Result<T> {
        if let Some(file) = self.db.sqlite_path()
            && !create
            && !file.is_file()
        {
            bail!(
                "{}: no tracker database here (give --db FILE or --tracker URL)",
                file.display()
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(rt.block_on(async {
            let store = fusionprot_tracker::Store::open_at(
                &self.db,
                fusionprot_tracker::Durability::Normal,
            )
            .await?;
            work(store).await
        })?)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

/// Run a read-only SQL query (DuckDB) over the tracker's tables (experiments, experiment_tags,
/// runs, params, tags, metrics, latest_metrics, checkpoints, datasets, run_datasets) and the
/// tables of registered datasets (<name>_proteins, <name>_residues, <name>_edges, <name>_splits,
/// and for imported benchmarks <name>_labels or <name>_pairs, and <name>_go_terms with `import go --obo`).
/// Only read queries run (DuckDB's parser decides); COPY, EXPORT, CREATE, ATTACH … are refused.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// One SQL statement, e.g. "SELECT run_name, status FROM runs".
    pub sql: String,
    #[command(flatten)]
    pub target: TrackerTarget,
    /// table, csv, json ({"columns": [{"name", "type"}], "rows": [[…]], "truncated"}) or parquet.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write here instead of stdout (required for parquet).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop after this many rows (says so on stderr).
    #[arg(long, default_value_t = 100_000)]
    pub max_rows: usize,
    /// Seconds before the query is interrupted.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

pub fn run(args: &QueryArgs) -> Result<ExitCode> {
    let result = match &args.target.tracker {
        Some(url) => remote_query(url, args)?,
        None => local_query(args)?,
    };
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    let rows: usize = result.batches.iter().map(RecordBatch::num_rows).sum();
    match (args.format, &args.out) {
        (Format::Parquet, None) => bail!("--format parquet needs --out FILE"),
        (Format::Parquet, Some(path)) => {
            let bytes = fusionprot_tracker::sql::to_parquet(&result)?;
            write_atomic(path, |mut f| Ok(std::io::Write::write_all(&mut f, &bytes)?))?
        }
        (fmt, out) => {
            let mut buf = Vec::new();
            match fmt {
                Format::Table => {
                    let text = arrow_cast::pretty::pretty_format_batches_with_schema(
                        result.schema.clone(),
                        &result.batches,
                    )?;
                    buf.extend(format!("{text}\n").into_bytes());
                }
                Format::Csv => {
                    let mut w = arrow_csv::Writer::new(&mut buf);
                    // CSV has no nested values: lists, structs and maps go as their JSON text.
                    let (schema, nested) = fusionprot_tracker::sql::nested_as_json_text(&result)?;
                    // The header comes with the first batch; an empty result still gets one.
                    let empty = [RecordBatch::new_empty(schema)];
                    let batches = if nested.is_empty() {
                        &empty[..]
                    } else {
                        &nested[..]
                    };
                    for b in batches {
                        w.write(b)?;
                    }
                }
                Format::Json => {
                    let doc = fusionprot_tracker::sql::to_json(&result)?;
                    serde_json::to_writer(&mut buf, &doc)?;
                    buf.push(b'\n');
                }
                Format::Parquet => unreachable!("handled above"),
            }
            match out {
                Some(path) => write_atomic(path, |mut f| {
                    std::io::Write::write_all(&mut f, &buf)?;
                    Ok(())
                })?,
                None => crate::common::write_stdout(&buf)?,
            }
        }
    }
    if result.truncated {
        eprintln!(
            "(stopped at --max-rows {}; more rows matched)",
            args.max_rows
        );
    }
    tracing::debug!(rows, "query done");
    Ok(ExitCode::SUCCESS)
}

fn local_query(args: &QueryArgs) -> Result<SqlResult> {
    let limits = fusionprot_tracker::sql::SqlLimits {
        max_rows: args.max_rows,
        timeout: std::time::Duration::from_secs(args.timeout),
        ..Default::default()
    };
    let scope = args.target.confinement();
    args.target.with_store(false, async |store| {
        fusionprot_tracker::sql::query(&store, &args.sql, limits, &scope).await
    })
}

/// The same query on a running tracker, answered as Arrow IPC: the exact schema and values the
/// local path produces, so every output format is the same either way.
fn remote_query(url: &str, args: &QueryArgs) -> Result<SqlResult> {
    let answer = remote::post_arrow(
        url,
        args.target.token.as_deref(),
        "/api/sql",
        &json!({
            "query": args.sql,
            "max_rows": args.max_rows,
            "timeout_s": args.timeout,
            "format": "arrow",
        }),
    )?;
    let (schema, batches) = fusionprot_tracker::sql::from_ipc(&answer.bytes)
        .with_context(|| format!("reading the answer of {url}"))?;
    Ok(SqlResult {
        schema,
        batches,
        truncated: answer.truncated,
        warnings: answer.warnings,
    })
}

fn write_atomic(path: &Path, write: impl FnOnce(std::fs::File) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    write(tmp.reopen()?)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Register a prepared dataset with the tracker, so runs can link to it and SQL can read it.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// A dataset written by `fusionprot prepare`.
    pub dataset: PathBuf,
    /// Name in SQL (tables become <name>_proteins, …); default: the folder name.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub target: TrackerTarget,
}

pub fn register(args: &RegisterArgs) -> Result<ExitCode> {
    let dir = std::fs::canonicalize(&args.dataset)
        .with_context(|| format!("{}", args.dataset.display()))?;
    let name = args
        .name
        .clone()
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into());
    let path = dir.display().to_string();
    let v = match &args.target.tracker {
        Some(url) => remote::post(
            url,
            args.target.token.as_deref(),
            "/api/fusionprot/datasets/register",
            &json!({ "name": name, "path": path }),
        )?,
        None => {
            let scope = args.target.confinement();
            args.target.with_store(true, async |store| {
                store
                    .register_dataset(&name, Some(&path), None, &scope)
                    .await
            })?
        }
    };
    println!(
        "registered {} as {name:?} (dataset_id {}, content {}); SQL tables: {}_proteins, _residues, _edges, _splits (and _labels / _pairs / _go_terms when imported)",
        path,
        v["dataset_id"].as_str().unwrap_or("?"),
        &v["content_hash"].as_str().unwrap_or("?")
            [..12.min(v["content_hash"].as_str().unwrap_or("?").len())],
        fusionprot_tracker::sql::sql_name(&name)
    );
    Ok(ExitCode::SUCCESS)
}
