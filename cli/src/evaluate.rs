//! `fusionprot evaluate`: a fine-tuning checkpoint on one part of a named split, written as a
//! predictions table that `fusionprot score` (or any tool) reads.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use fusionprot_trainer::metrics::write_predictions;
use fusionprot_trainer::train::{TrainConfig, evaluate_checkpoint};
use fusionprot_trainer::weights::load::DeviceChoice;

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// A checkpoint folder of a run (`RUN/checkpoints/epoch-NNNN`); the run's config.toml says
    /// how to build the model.
    checkpoint: PathBuf,
    /// The dataset (default: the run's).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// `NAME:PART`, e.g. `official:test` or `family:valid`.
    #[arg(long, default_value = "official:test")]
    split: String,
    /// Where to write the predictions/v1 table.
    #[arg(long)]
    out: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// libtorch threads (default: all cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
}

pub fn run(args: &EvaluateArgs) -> anyhow::Result<ExitCode> {
    let Some((name, part)) = args.split.split_once(':') else {
        bail!(
            "--split wants NAME:PART (e.g. official:test), got {:?}",
            args.split
        );
    };
    let run_dir = args
        .checkpoint
        .parent()
        .and_then(|p| p.parent())
        .with_context(|| {
            format!(
                "{} is not RUN/checkpoints/epoch-NNNN",
                args.checkpoint.display()
            )
        })?;
    let cfg = TrainConfig::load(&run_dir.join("config.toml"))?;
    let dataset = args
        .dataset
        .clone()
        .unwrap_or_else(|| cfg.data.dataset.clone());
    if let Some(n) = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
    {
        fusionprot_trainer::runtime::set_threads(n);
    }
    let device = args.device.open()?;
    let e = evaluate_checkpoint(&cfg, &args.checkpoint, &dataset, name, part, device)
        .with_context(|| format!("evaluating {}", args.checkpoint.display()))?;
    write_predictions(&args.out, &e.predictions)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{} on {} {name}:{part} ({} proteins × {} labels) → {}",
        args.checkpoint.display(),
        dataset.display(),
        e.predictions.ids.len(),
        e.predictions.width,
        args.out.display()
    );
    for (k, v) in &e.metrics {
        println!("  {k:<12} {v:.6}");
    }
    Ok(ExitCode::SUCCESS)
}
