//! `fusionprot score`: Fmax, AUPR and AUROC of a predictions table, as TorchDrug computes them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fusionprot_metrics::{self as metrics, Ties};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// A `predictions/v1` Parquet table: protein_id, prediction list<float32>, target list<float32>.
    pub predictions: PathBuf,
    /// Print one JSON object whose keys are the metric names (`f1_max`, `auprc@micro`, …).
    #[arg(long)]
    pub json: bool,
    /// Tied scores: `index` walks them in increasing row-major index (TorchDrug's formulas over a
    /// stable sort); `grouped` makes each distinct score one threshold (sklearn's AUROC / AP).
    #[arg(long, value_enum, default_value_t = TiesArg::Index)]
    pub ties: TiesArg,
    /// Also report `auroc [task]` and `auprc [task]` for every column (always on for one column).
    #[arg(long)]
    pub per_task: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TiesArg {
    Index,
    Grouped,
}

pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let t0 = std::time::Instant::now();
    let p = metrics::read_predictions(&args.predictions)
        .with_context(|| format!("reading {}", args.predictions.display()))?;
    let ties = match args.ties {
        TiesArg::Index => Ties::Index,
        TiesArg::Grouped => Ties::Grouped,
    };
    let scores = metrics::score(&p, ties, args.per_task)?;
    let secs = t0.elapsed().as_secs_f64();
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = scores
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        let width = scores
            .metrics
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0);
        for (k, v) in &scores.metrics {
            println!("{k:<width$}  {v:.6}");
        }
    }
    eprintln!(
        "{} rows × {} columns, ties: {}; read and scored in {secs:.3} s",
        p.ids.len(),
        p.width,
        match ties {
            Ties::Index => "index",
            Ties::Grouped => "grouped",
        }
    );
    Ok(ExitCode::SUCCESS)
}
