//! The `fusionprot` binary: parses arguments, installs logging, runs one subcommand and picks the
//! exit code. The work itself lives in the library crates. It links no libtorch: the commands
//! that run tensors (`train`, `pretrain`, `embed`, `evaluate`, `export`) are handed to the
//! sibling binary `fusionprot-torch` by `exec` (see `torch.rs`), before anything else starts.

mod common;
mod doctor;
#[cfg(feature = "import")]
mod import;
mod prepare;
mod progress;
#[cfg(feature = "sql")]
mod query;
#[cfg(feature = "sql")]
mod remote;
mod report;
mod score;
mod serve;
mod show;
mod split;
mod sync;
mod threads;
mod torch;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// FusionProt: prepare protein structure data, train and embed with ESM-2 + GearNet fusion, track runs.
#[derive(Debug, Parser)]
#[command(name = "fusionprot", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The arguments of a command that `fusionprot-torch` runs (`fusionprot CMD --help` shows them).
#[derive(Debug, Args)]
struct Forwarded {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check this installation: versions of libtorch, CUDA, MMseqs2, DuckDB and SQLite, and a
    /// libtorch forward on each device. Exits non-zero when a required part is missing.
    Doctor(doctor::DoctorArgs),
    /// Embed proteins with a model or a run's checkpoint (runs in fusionprot-torch).
    #[command(disable_help_flag = true)]
    Embed(Forwarded),
    /// Evaluate a fine-tuning checkpoint on one part of a named split; writes a predictions table
    /// (runs in fusionprot-torch).
    #[command(disable_help_flag = true)]
    Evaluate(Forwarded),
    /// Write a run's checkpoint as the reference's state dict (FusionNetwork's names; the head
    /// left out), loadable by FusionProt's PyTorch code with strict=True (runs in fusionprot-torch).
    #[command(disable_help_flag = true)]
    Export(Forwarded),
    /// Turn a published benchmark archive (TorchDrug's EC / GO zips, Atom3D's MSP tar) into a
    /// dataset with labels and the official splits.
    #[cfg(feature = "import")]
    Import(import::ImportArgs),
    /// Turn structure files (PDB, mmCIF, AlphaFold; plain, gzipped, in tar or zip) into a dataset
    /// of Parquet residue-graph tables with a manifest.
    Prepare(prepare::PrepareArgs),
    /// Join the shards of `prepare --shard I/N` into the dataset one `prepare` over all inputs
    /// writes (refuses gaps, overlaps and differing parameters).
    Merge(prepare::MergeArgs),
    /// Run one read-only SQL query (DuckDB) over the tracker's runs and metrics and the tables of
    /// registered datasets, locally (--db) or on a running tracker (--tracker); same result either way.
    #[cfg(feature = "sql")]
    Query(query::QueryArgs),
    /// Register a prepared dataset with the tracker, so runs can link to it and SQL can read it.
    #[cfg(feature = "sql")]
    Register(query::RegisterArgs),
    /// Fmax, AUPR and AUROC of a predictions table (protein_id, prediction, target), exactly as
    /// TorchDrug's formulas compute them.
    Score(score::ScoreArgs),
    /// Serve run tracking over MLflow's REST API (SQLite, or PostgreSQL for a team), with checkpoints, datasets and SQL.
    Serve(serve::ServeArgs),
    /// Print rows of a prepared dataset's tables (all, or one protein's).
    Show(show::ShowArgs),
    /// Assign proteins to train / valid / test so that no pair across splits reaches the identity
    /// threshold (family-level split), and prove it.
    Split(split::SplitArgs),
    /// Fine-tune a model (FusionProt or a baseline) on a task of an imported benchmark: the
    /// reference's recipe, checkpoints with exact resume, every run tracked (runs in
    /// fusionprot-torch).
    #[command(disable_help_flag = true)]
    Train(Forwarded),
    /// Pre-train on prepared structures (AlphaFold DB proteomes): Multiview Contrast as
    /// FusionProt's published weights, or residue-type prediction; tracked, exact resume (runs in
    /// fusionprot-torch).
    #[command(disable_help_flag = true)]
    Pretrain(Forwarded),
    /// Replay a tracking spool (operations logged while the server was unreachable), exactly once.
    Sync(sync::SyncArgs),
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if torch::wants(&args) {
        // Only returns when the sibling cannot be started.
        return common::exit_code(Err(torch::exec(args)));
    }
    common::init_logging();
    common::quiet_on_closed_stdout();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(&args),
        Command::Embed(_)
        | Command::Evaluate(_)
        | Command::Export(_)
        | Command::Train(_)
        | Command::Pretrain(_) => Err(torch::exec(args)),
        #[cfg(feature = "import")]
        Command::Import(args) => import::run(&args),
        Command::Prepare(args) => prepare::run(&args),
        Command::Merge(args) => prepare::merge(&args),
        #[cfg(feature = "sql")]
        Command::Query(args) => query::run(&args),
        #[cfg(feature = "sql")]
        Command::Register(args) => query::register(&args),
        Command::Score(args) => score::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Split(args) => split::run(&args),
        Command::Sync(args) => sync::run(&args),
    };
    common::exit_code(result)
}
