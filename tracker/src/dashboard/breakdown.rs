//! The dashboard's per-class breakdown of a run's predictions artifact: the buckets of
//! `fusionprot_metrics::breakdown` (EC level-1 class; protein length from the `proteins` table of
//! the dataset the run is linked to, confined as SQL's dataset views are), and what cannot be
//! broken down, said.

use std::path::{Path, PathBuf};

use fusionprot_metrics::MetricError;
use fusionprot_metrics::breakdown::{bucket, by_ec_class, by_length};
use serde_json::{Value, json};

use crate::dataset_files::Confinement;
use crate::error::TrackerError;

/// The breakdowns of the predictions file `path`, lengths from the dataset in `dataset` (its
/// name and folder) when there is one, as the dashboard's JSON: `overall`, `breakdowns` (each with
/// `by`, `label`, `buckets`) and `unavailable` (each view that cannot be computed, with why).
///
/// # Errors
/// An unreadable or malformed predictions table (named), a dataset that is not exposed.
pub fn breakdowns(
    path: &Path,
    dataset: Option<(String, PathBuf)>,
    scope: &Confinement,
) -> Result<Value, TrackerError> {
    let bad = |e: MetricError| TrackerError::invalid(e.to_string());
    let p = fusionprot_metrics::read_predictions(path).map_err(bad)?;
    let mut views = Vec::new();
    let mut unavailable = Vec::new();
    match by_ec_class(&p).map_err(bad)? {
        Some(b) => views.push(json!({ "by": "ec_class", "label": "EC level-1 class (its EC numbers; proteins with one of them)", "buckets": b })),
        None => unavailable.push(json!({ "by": "ec_class", "reason": "the tasks are not EC numbers" })),
    }
    match dataset {
        Some((name, dir)) => {
            crate::dataset_files::resolve(&dir, scope)
                .map_err(|e| TrackerError::invalid(e.to_string()))?;
            let lengths = fusionprot_pipeline::dataset::read::protein_lengths(&dir)
                .map_err(|e| TrackerError::invalid(e.to_string()))?;
            views.push(json!({ "by": "length", "label": format!("protein length (residues, from dataset {name})"),
                               "buckets": by_length(&p, &lengths).map_err(bad)? }));
        }
        None => unavailable.push(json!({ "by": "length", "reason": "the run is linked to no dataset with a path (fusionprot train links it; or runs/link-dataset)" })),
    }
    if p.tasks
        .as_ref()
        .is_some_and(|t| t.iter().any(|n| n.starts_with("GO:")))
    {
        unavailable.push(json!({ "by": "go_depth", "reason": "GO term depth needs the Gene Ontology graph, which no dataset carries yet" }));
    }
    unavailable.push(json!({ "by": "identity_to_train", "reason": "the split's certificate records the largest cross-split identity, not each protein's identity to train" }));
    Ok(json!({
        "proteins": p.ids.len(),
        "columns": p.width,
        "overall": bucket("all", &p).map_err(bad)?,
        "breakdowns": views,
        "unavailable": unavailable,
    }))
}
