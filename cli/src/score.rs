//! `fusionprot score`: Fmax, AUPR and AUROC of a predictions table, as TorchDrug computes them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fusionprot_metrics::{self as metrics, Ties, breakdown};

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
    /// Also break the scores down, each bucket scored as its own sub-table: `ec-class` (EC level-1
    /// class: its EC numbers and the proteins with one of them; the tasks must be EC numbers),
    /// `go-depth` (GO term depth: its terms and the proteins with one of them; depths from
    /// --dataset's `go_terms`, see `import go --obo`), `length` (protein length buckets, from
    /// --dataset's proteins table), `identity` (each test protein's identity to train under
    /// --split of --dataset). Repeatable.
    #[arg(long, value_enum)]
    pub by: Vec<By>,
    /// The dataset the predictions are of (`--by go-depth|length|identity`).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// The named split the model was trained on (`--by identity`): a split certified by `fusionprot
    /// split` (each protein's highest identity to train) or an imported `official` split (the
    /// benchmark's identity cutoffs).
    #[arg(long, default_value = "official")]
    pub split: String,
}

/// A breakdown of `score --by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    EcClass,
    GoDepth,
    Length,
    Identity,
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
    let mut views: Vec<(&str, Vec<breakdown::Bucket>)> = Vec::new();
    for by in &args.by {
        match by {
            By::EcClass => {
                let b = breakdown::by_ec_class(&p)?.with_context(|| {
                    format!(
                        "--by ec-class: the tasks of {} are not EC numbers (its fusionprot.tasks metadata)",
                        args.predictions.display()
                    )
                })?;
                views.push(("ec_class", b));
            }
            By::GoDepth => {
                let ds = args.dataset.as_ref().context(
                    "--by go-depth needs --dataset DIR (a GO dataset imported with --obo: its go_terms table has the depths)",
                )?;
                let depths = fusionprot_pipeline::dataset::terms::term_depths(ds)
                    .with_context(|| format!("reading GO term depths from {}", ds.display()))?;
                let b = breakdown::by_go_depth(&p, &depths)?.with_context(|| {
                    format!(
                        "--by go-depth: the tasks of {} are not GO terms (its fusionprot.tasks metadata)",
                        args.predictions.display()
                    )
                })?;
                views.push(("go_depth", b));
            }
            By::Length => {
                let ds = args
                    .dataset
                    .as_ref()
                    .context("--by length needs --dataset DIR (a prepared dataset: its proteins table has the lengths)")?;
                let lengths = fusionprot_pipeline::dataset::read::protein_lengths(ds)
                    .with_context(|| format!("reading protein lengths from {}", ds.display()))?;
                views.push(("length", breakdown::by_length(&p, &lengths)?));
            }
            By::Identity => {
                let ds = args.dataset.as_ref().context(
                    "--by identity needs --dataset DIR (its splits table) and --split NAME",
                )?;
                let b =
                    fusionprot_pipeline::dataset::splits::read_identity_buckets(ds, &args.split)
                        .with_context(|| format!("--by identity: {}", ds.display()))?;
                views.push((
                    "identity_to_train",
                    breakdown::by_group(&p, &b.of, &b.order)?,
                ));
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if args.json {
        let mut map: serde_json::Map<String, serde_json::Value> = scores
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        if !views.is_empty() {
            map.insert(
                "breakdown".into(),
                serde_json::json!(
                    views
                        .iter()
                        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                        .collect::<serde_json::Map<_, _>>()
                ),
            );
        }
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
        for (by, buckets) in &views {
            println!("\nby {}:", by.replace('_', " "));
            println!(
                "  {:<22} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}",
                "bucket", "proteins", "columns", "positives", "fmax", "auprc", "auroc"
            );
            for b in buckets {
                println!(
                    "  {:<22} {:>8} {:>8} {:>9} {:>8.4} {:>8.4} {:>8.4}",
                    b.name, b.proteins, b.columns, b.positives, b.fmax, b.auprc, b.auroc
                );
            }
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
