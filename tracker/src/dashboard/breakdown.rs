//! The dashboard's per-class breakdown of a run's predictions artifact: the buckets of
//! `fusionprot_metrics::breakdown` (EC level-1 class; from the dataset the run is linked to,
//! confined as SQL's dataset views are: GO term depth from its `go_terms`, protein length from its
//! `proteins`, identity to train from its `splits` under the run's split), and what cannot be
//! broken down, said.

use std::path::{Path, PathBuf};

use fusionprot_metrics::MetricError;
use fusionprot_metrics::breakdown::{bucket, by_ec_class, by_go_depth, by_group, by_length};
use fusionprot_pipeline::dataset::read::ReadError;
use fusionprot_pipeline::dataset::{splits, terms};
use serde_json::{Value, json};

use crate::dataset_files::Confinement;
use crate::error::TrackerError;

/// The breakdowns of the predictions file `path`, from the dataset in `dataset` (its name and
/// folder) when there is one, under its split `split`, as the dashboard's JSON: `overall`,
/// `breakdowns` (each with `by`, `label`, `buckets`) and `unavailable` (each view that cannot be
/// computed, with why).
///
/// # Errors
/// An unreadable or malformed predictions table (named), a dataset that is not exposed.
pub fn breakdowns(
    path: &Path,
    dataset: Option<(String, PathBuf)>,
    split: &str,
    scope: &Confinement,
) -> Result<Value, TrackerError> {
    let bad = |e: MetricError| TrackerError::invalid(e.to_string());
    let p = fusionprot_metrics::read_predictions(path).map_err(bad)?;
    let mut views = Vec::new();
    let mut unavailable = Vec::new();
    let go = p
        .tasks
        .as_ref()
        .is_some_and(|t| t.iter().any(|n| n.starts_with("GO:")));
    match by_ec_class(&p).map_err(bad)? {
        Some(b) => views.push(json!({ "by": "ec_class", "label": "EC level-1 class (its EC numbers; proteins with one of them)", "buckets": b })),
        None => unavailable.push(json!({ "by": "ec_class", "reason": "the tasks are not EC numbers" })),
    }
    let no_dataset = "the run is linked to no dataset with a path (fusionprot train links it; or runs/link-dataset)";
    let Some((name, dir)) = dataset else {
        if go {
            unavailable.push(json!({ "by": "go_depth", "reason": no_dataset }));
        }
        for by in ["length", "identity_to_train"] {
            unavailable.push(json!({ "by": by, "reason": no_dataset }));
        }
        return finish(&p, views, unavailable);
    };
    crate::dataset_files::resolve(&dir, scope).map_err(|e| TrackerError::invalid(e.to_string()))?;
    let invalid = |e: ReadError| TrackerError::invalid(e.to_string());
    if go {
        match terms::term_depths(&dir) {
            Ok(depths) => {
                if let Some(b) = by_go_depth(&p, &depths).map_err(bad)? {
                    views.push(json!({ "by": "go_depth", "label": format!("GO term depth (longest is_a path to the root, from dataset {name}'s go_terms; its terms, proteins with one of them)"), "buckets": b }));
                }
            }
            Err(e @ ReadError::NoTable { .. }) => {
                unavailable.push(json!({ "by": "go_depth", "reason": e.to_string() }));
            }
            Err(e) => return Err(invalid(e)),
        }
    }
    let lengths = fusionprot_pipeline::dataset::read::protein_lengths(&dir).map_err(invalid)?;
    views.push(
        json!({ "by": "length", "label": format!("protein length (residues, from dataset {name})"),
                       "buckets": by_length(&p, &lengths).map_err(bad)? }),
    );
    match splits::read_identity_buckets(&dir, split) {
        Ok(b) => views.push(json!({
            "by": "identity_to_train",
            "label": format!("identity to train (split {split} of dataset {name})"),
            "source": b.source,
            "buckets": by_group(&p, &b.of, &b.order).map_err(bad)?,
        })),
        Err(splits::IdentityError::Unavailable(e)) => {
            unavailable.push(json!({ "by": "identity_to_train", "reason": e.to_string() }));
        }
        Err(e) => return Err(TrackerError::invalid(e.to_string())),
    }
    finish(&p, views, unavailable)
}

fn finish(
    p: &fusionprot_metrics::Predictions,
    views: Vec<Value>,
    unavailable: Vec<Value>,
) -> Result<Value, TrackerError> {
    Ok(json!({
        "proteins": p.ids.len(),
        "columns": p.width,
        "overall": bucket("all", p).map_err(|e| TrackerError::invalid(e.to_string()))?,
        "breakdowns": views,
        "unavailable": unavailable,
    }))
}
