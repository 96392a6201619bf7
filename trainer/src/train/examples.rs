//! What a fine-tuning run trains on: for one task of an imported benchmark (`labels/v1`, the
//! vocabulary in the manifest's `benchmark.tasks`) and one named split (`splits/v2`), the proteins
//! of train / valid / test with their label indices, in protein-id order. Every mistake a user can
//! make here (no labels, an unknown task, an unknown split name) is an error naming what exists.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow_array::{Array, Int32Array, ListArray, StringArray};
use fusionprot_pipeline::read::read_table;
use fusionprot_pipeline::schema::Table;
use fusionprot_pipeline::splits::read_splits;

use crate::error::ModelError;

/// One task on one split of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskData {
    pub task: String,
    /// The task's vocabulary size (the width of a target vector).
    pub labels: usize,
    /// `train`, `valid`, `test` → (protein id, label indices), sorted by protein id. Proteins the
    /// split marks `removed` are in none.
    pub parts: BTreeMap<String, Vec<(String, Vec<i32>)>>,
}

impl TaskData {
    /// The dense 0/1 target of a protein's label indices.
    pub fn target(&self, labels: &[i32]) -> Vec<f32> {
        let mut t = vec![0f32; self.labels];
        for &i in labels {
            if let Some(x) = t.get_mut(i as usize) {
                *x = 1.0;
            }
        }
        t
    }
}

/// Reads task `task` on split `split_name` of `dataset`.
///
/// # Errors
/// A dataset without labels, an unknown task or split name (listing the ones there are), a
/// protein of the split without labels for the task, unreadable tables.
pub fn load_task(dataset: &Path, task: &str, split_name: &str) -> Result<TaskData, ModelError> {
    let input = |m: String| ModelError::Input(format!("{}: {m}", dataset.display()));
    let manifest_path = dataset.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).map_err(|source| ModelError::Io {
        path: manifest_path.clone(),
        source,
    })?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| input(format!("manifest.json: {e}")))?;
    let tasks = manifest["benchmark"]["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if tasks.is_empty() || !dataset.join("labels").is_dir() {
        return Err(input(
            "no labels: import a benchmark first (fusionprot import ec|go)".into(),
        ));
    }
    let names: Vec<&str> = tasks.iter().filter_map(|t| t["task"].as_str()).collect();
    let Some(entry) = tasks.iter().find(|t| t["task"] == task) else {
        return Err(input(format!(
            "no task {task:?}; this dataset has {}",
            names.join(", ")
        )));
    };
    let labels = entry["size"].as_u64().unwrap_or(0) as usize;
    let rows = read_splits(dataset).map_err(ModelError::Read)?;
    let mut split_of: HashMap<String, String> = HashMap::new();
    let mut split_names: Vec<String> = Vec::new();
    for r in rows {
        if !split_names.contains(&r.name) {
            split_names.push(r.name.clone());
        }
        if r.name == split_name {
            split_of.insert(r.protein_id, r.split);
        }
    }
    if split_of.is_empty() {
        split_names.sort();
        return Err(input(format!(
            "no split named {split_name:?}; it has {}",
            if split_names.is_empty() {
                "none (fusionprot split DATASET --name NAME adds one)".to_owned()
            } else {
                split_names.join(", ")
            }
        )));
    }
    let mut parts: BTreeMap<String, Vec<(String, Vec<i32>)>> = BTreeMap::new();
    let mut seen = 0usize;
    for b in read_table(dataset, Table::Labels).map_err(ModelError::Read)? {
        let col = |i: usize| b.column(i).as_any().downcast_ref::<StringArray>();
        let (Some(ids), Some(tasks)) = (col(0), col(1)) else {
            return Err(input("labels: unexpected column types".into()));
        };
        let lists = b
            .column(2)
            .as_any()
            .downcast_ref::<ListArray>()
            .ok_or_else(|| input("labels: label_index is not a list".into()))?;
        for i in 0..b.num_rows() {
            if tasks.value(i) != task {
                continue;
            }
            let Some(part) = split_of.get(ids.value(i)) else {
                continue;
            };
            seen += 1;
            if !matches!(part.as_str(), "train" | "valid" | "test") {
                continue;
            }
            let v = lists.value(i);
            let v = v
                .as_any()
                .downcast_ref::<Int32Array>()
                .ok_or_else(|| input("labels: label_index is not int32".into()))?;
            if let Some(&bad) = v.values().iter().find(|&&x| x < 0 || x as usize >= labels) {
                return Err(input(format!(
                    "{}: label {bad} outside the {task} vocabulary of {labels}",
                    ids.value(i)
                )));
            }
            parts
                .entry(part.clone())
                .or_default()
                .push((ids.value(i).to_owned(), v.values().to_vec()));
        }
    }
    if seen < split_of.len() {
        let labelled: std::collections::HashSet<String> =
            parts.values().flatten().map(|(id, _)| id.clone()).collect();
        let missing = split_of
            .iter()
            .filter(|(id, part)| {
                matches!(part.as_str(), "train" | "valid" | "test") && !labelled.contains(*id)
            })
            .map(|(id, _)| id.as_str())
            .min();
        if let Some(id) = missing {
            return Err(input(format!(
                "{} proteins of split {split_name:?} have no {task} labels, e.g. {id}",
                split_of.len() - seen
            )));
        }
    }
    for v in parts.values_mut() {
        v.sort();
    }
    Ok(TaskData {
        task: task.to_owned(),
        labels,
        parts,
    })
}
