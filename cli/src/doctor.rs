//! `fusionprot doctor`: what this installation is made of and whether each part works; given a
//! dataset, whether it is whole (an interrupted `prepare` is recovered first).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use fusionprot_pipeline::manifest;
use fusionprot_pipeline::mmseqs::Mmseqs;
use fusionprot_pipeline::swap::{self, Recovery, SwapError};
use fusionprot_trainer::{Device, runtime};
use serde::Serialize;

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

/// One line of the report.
#[derive(Debug, Serialize)]
struct Check {
    part: &'static str,
    /// Version or result when the part works.
    ok: Option<String>,
    /// What is wrong and how to fix it, when it does not.
    problem: Option<String>,
    /// A missing required part makes doctor exit non-zero.
    required: bool,
}

impl Check {
    fn new(part: &'static str, required: bool, result: Result<String, String>) -> Self {
        let (ok, problem) = match result {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            part,
            ok,
            problem,
            required,
        }
    }

    fn failed(&self) -> bool {
        self.required && self.problem.is_some()
    }
}

/// Whether this binary was built with DuckDB SQL (the full CLI) or is the lean trainer build.
const FULL_BUILD: bool = cfg!(feature = "sql");

pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let checks = collect(args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print_table(&checks);
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.failed())
        .map(|c| c.part)
        .collect();
    if failed.is_empty() {
        if !args.json {
            println!("\nall required parts work");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("doctor: missing or broken: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

fn collect(args: &DoctorArgs) -> anyhow::Result<Vec<Check>> {
    let build = if FULL_BUILD { "full" } else { "trainer-only" };
    let mut checks = vec![Check::new(
        "fusionprot",
        true,
        Ok(format!("{} ({build} build)", env!("CARGO_PKG_VERSION"))),
    )];

    let info = runtime::libtorch_info();
    let location = info.lib_dir.as_ref().map_or_else(
        || "location unknown".to_owned(),
        |d| d.display().to_string(),
    );
    checks.push(Check::new(
        "libtorch",
        true,
        Ok(format!(
            "{} ({location})",
            info.version.as_deref().unwrap_or("version unknown")
        )),
    ));
    checks.push(Check::new(
        "CPU forward",
        true,
        smoke(Device::Cpu).map(|s| format!("{s}, {} threads", info.cpu_threads)),
    ));
    let cuda = if info.cuda_available {
        let cudnn = if info.cudnn_available {
            "cuDNN"
        } else {
            "no cuDNN"
        };
        Ok(format!("{} ({cudnn})", info.cuda_devices.join(", ")))
    } else {
        Err("not available (CPU only); on a GPU machine check the driver and that libtorch_cuda.so loads".to_owned())
    };
    checks.push(Check::new("CUDA", args.require_cuda, cuda));
    if info.cuda_available {
        checks.push(Check::new("CUDA forward", true, smoke(Device::Cuda(0))));
    }

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

fn smoke(device: Device) -> Result<String, String> {
    runtime::smoke_forward(device)
        .map(|r| {
            format!(
                "ok: linear+relu {:?} matches plain Rust (max |err| {:.1e}) in {:.2} ms",
                r.shape,
                r.max_abs_error,
                r.elapsed_secs * 1e3
            )
        })
        .map_err(|e| e.to_string())
}

#[cfg(feature = "sql")]
fn duckdb_version() -> Result<String, String> {
    fusionprot_tracker::engines::duckdb_version().map_err(|e| e.to_string())
}

#[cfg(not(feature = "sql"))]
fn duckdb_version() -> Result<String, String> {
    Err("not in this build (trainer-only binary; SQL needs the full build)".to_owned())
}

fn print_table(checks: &[Check]) {
    for c in checks {
        let (mark, text) = match (&c.ok, &c.problem) {
            (Some(v), _) => ("ok  ", v.as_str()),
            (None, Some(p)) if c.required => ("FAIL", p.as_str()),
            (None, Some(p)) => ("--  ", p.as_str()),
            (None, None) => ("?   ", ""),
        };
        println!("{mark} {:<13} {text}", c.part);
    }
}
