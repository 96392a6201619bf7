//! `fusionprot doctor`: what this installation is made of and whether each part works; given a
//! dataset, whether it is whole (an interrupted `prepare` is recovered first). The libtorch part
//! comes from the sibling binary (`fusionprot-torch doctor --json`), whose lines are included.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use fusionprot_pipeline::dataset::manifest;
use fusionprot_pipeline::dataset::swap::{self, Recovery, SwapError};
use fusionprot_pipeline::mmseqs::Mmseqs;

use crate::report::{self, Check};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A prepared dataset to check as well: a `prepare` interrupted while swapping tables is
    /// recovered (the previous tables restored, or the new ones completed when they were all in
    /// place), then every part the manifest lists must be there with its size.
    dataset: Option<PathBuf>,
    /// Also fail when no CUDA device is usable (for GPU machines).
    #[arg(long)]
    require_cuda: bool,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

/// Whether this binary was built with DuckDB SQL (the full CLI) or is the lean trainer build.
const FULL_BUILD: bool = cfg!(feature = "sql");

pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    report::finish(&collect(args)?, args.json)
}

fn collect(args: &DoctorArgs) -> anyhow::Result<Vec<Check>> {
    let build = if FULL_BUILD { "full" } else { "lean" };
    let mut checks = vec![Check::new(
        "fusionprot",
        true,
        Ok(format!("{} ({build} build)", env!("CARGO_PKG_VERSION"))),
    )];
    checks.extend(torch_checks(args.require_cuda));

    let mmseqs = Mmseqs::locate()
        .and_then(|m| m.version().map(|v| format!("{v} ({})", m.exe().display())))
        .map_err(|e| e.to_string());
    checks.push(Check::new("MMseqs2", FULL_BUILD, mmseqs));

    checks.push(Check::new("DuckDB", FULL_BUILD, duckdb_version()));

    let sqlite = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting an async runtime for SQLite")?
        .block_on(fusionprot_tracker::engines::sqlite_version())
        .map_err(|e| e.to_string());
    checks.push(Check::new("SQLite", true, sqlite));
    if let Some(ds) = &args.dataset {
        checks.push(Check::new("dataset", true, check_dataset(ds)));
    }
    Ok(checks)
}

/// Recovers an interrupted swap, then checks the parts against the manifest.
fn check_dataset(ds: &Path) -> Result<String, String> {
    if !ds.is_dir() {
        return Err(format!("{} is not a folder", ds.display()));
    }
    // Touch nothing (not even a lock file) in a folder that is not a dataset.
    if !ds.join("manifest.json").exists() && !ds.join(swap::JOURNAL).exists() {
        return Err(format!(
            "{} is not a prepared dataset: no manifest.json",
            ds.display()
        ));
    }
    let lock = swap::lock(ds).map_err(|e| match e {
        SwapError::Locked { .. } => format!(
            "a prepare is writing {} now; run doctor again when it has finished",
            ds.display()
        ),
        e => e.to_string(),
    })?;
    let recovery = swap::recover(ds, &lock).map_err(|e| e.to_string())?;
    fusionprot_pipeline::prepare::log_recovery(ds, &recovery);
    swap::remove_stale(ds, &lock).map_err(|e| e.to_string())?;
    let verified = manifest::verify(ds).map_err(|e| e.to_string())?;
    let done = match recovery {
        Recovery::Clean => String::new(),
        Recovery::RolledBack { restored } => format!(
            "; restored the previous tables of an interrupted prepare ({})",
            restored.join(", ")
        ),
        Recovery::Completed => "; finished the swap of an interrupted prepare".to_owned(),
    };
    Ok(format!(
        "{}: {} proteins, {} parts as manifest.json lists them{done}",
        ds.display(),
        verified.proteins,
        verified.parts
    ))
}

/// The lines of `fusionprot-torch doctor --json`, or one failed line saying what is missing.
fn torch_checks(require_cuda: bool) -> Vec<Check> {
    let missing = |problem: String| vec![Check::new("fusionprot-torch", true, Err(problem))];
    let exe = match crate::torch::sibling() {
        Ok(exe) => exe,
        Err(e) => return missing(e.to_string()),
    };
    let mut command = std::process::Command::new(&exe);
    command.args(["doctor", "--json"]);
    if require_cuda {
        command.arg("--require-cuda");
    }
    let output = match command.output() {
        Ok(o) => o,
        Err(e) => return missing(format!("{}: {e}", exe.display())),
    };
    match serde_json::from_slice::<Vec<Check>>(&output.stdout) {
        Ok(checks) if !checks.is_empty() => checks,
        _ => missing(format!(
            "{} doctor failed ({}): {}",
            exe.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

#[cfg(feature = "sql")]
fn duckdb_version() -> Result<String, String> {
    fusionprot_tracker::engines::duckdb_version().map_err(|e| e.to_string())
}

#[cfg(not(feature = "sql"))]
fn duckdb_version() -> Result<String, String> {
    Err("not in this build (trainer-only binary; SQL needs the full build)".to_owned())
}
