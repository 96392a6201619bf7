//! Evaluation metrics exactly as TorchDrug computes them (spec §3.3), over a `predictions/v1`
//! table: `f1_max` (protein-centric Fmax), `auprc@micro` (pair-centric AUPR), `auroc@micro`, and
//! per-task AUROC / AUPR. Plain Rust (no libtorch): `fusionprot score` and the trainer share it
//! (the trainer re-exports it as `fusionprot_trainer::metrics`).

pub mod breakdown;
mod formulas;
mod predictions;

pub use formulas::{Scores, Ties, area_under_prc, area_under_roc, f1_max, score};
pub use predictions::{MetricError, Predictions, read_predictions, write_predictions};
