//! What a fine-tuning run trains on: for one task of an imported benchmark and one named split
//! (`splits/v2`), the examples of train / valid / test in protein-id order: for EC / GO a protein
//! with its label indices (`labels/v1`, the vocabulary in the manifest's `benchmark.tasks`), for
//! MSP a mutant / wild-type pair with its label and window (`pairs/v1`; a pair is in the part of
//! its mutant). Every mistake a user can make here (no labels, an unknown task, an unknown split
//! name) is an error naming what exists.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow_array::{Array, Int8Array, Int32Array, ListArray, StringArray};
use fusionprot_pipeline::dataset::manifest::{ManifestError, Recorded};
use fusionprot_pipeline::dataset::read::read_table;
use fusionprot_pipeline::dataset::schema::Table;
use fusionprot_pipeline::dataset::splits::read_splits;

use crate::error::ModelError;
use crate::train::config::Task;

/// One training or evaluation example.
#[derive(Debug, Clone, PartialEq)]
pub enum Example {
    /// EC / GO: a protein and its label indices.
    Labels { id: String, labels: Vec<i32> },
    /// MSP: a mutant and its wild type, paired residue by residue, and whether the mutation
    /// binds better (`label`); both are cut to `window` = (first residue, residues).
    Pair {
        mutant: String,
        wild_type: String,
        label: bool,
        window: (usize, usize),
    },
    /// Pre-training: a protein, nothing more.
    Protein { id: String },
}

impl Example {
    /// The example's id (the protein, or the mutant of a pair).
    pub fn id(&self) -> &str {
        match self {
            Example::Labels { id, .. } | Example::Protein { id } => id,
            Example::Pair { mutant, .. } => mutant,
        }
    }

    /// The proteins whose graphs the example needs.
    pub fn proteins(&self) -> Vec<&str> {
        match self {
            Example::Labels { id, .. } | Example::Protein { id } => vec![id],
            Example::Pair {
                mutant, wild_type, ..
            } => vec![wild_type, mutant],
        }
    }
}

/// The protein ids the loader reads for each micro-batch (a pair: wild type, mutant).
pub fn batch_ids(batches: &[Vec<&Example>]) -> Vec<Vec<String>> {
    batches
        .iter()
        .map(|b| {
            b.iter()
                .flat_map(|e| e.proteins().into_iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// One task on one split of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskData {
    pub task: Task,
    /// The width of a target vector: the vocabulary size (EC / GO), 1 (MSP).
    pub labels: usize,
    /// The vocabulary in label-index order, as the manifest keeps it (`benchmark.tasks[].terms`);
    /// empty for MSP and for manifests without it.
    pub terms: Vec<String>,
    /// `train`, `valid`, `test` → examples sorted by id. Proteins the split marks `removed` are in
    /// none.
    pub parts: BTreeMap<String, Vec<Example>>,
}

impl TaskData {
    /// The task with each part's examples sorted by id.
    fn sorted(task: Task, labels: usize, mut parts: BTreeMap<String, Vec<Example>>) -> Self {
        for v in parts.values_mut() {
            v.sort_by(|a, b| a.id().cmp(b.id()));
        }
        TaskData {
            task,
            labels,
            terms: Vec::new(),
            parts,
        }
    }

    /// Whether this is the MSP pair task.
    pub fn is_pairs(&self) -> bool {
        self.task.is_pairs()
    }

    /// The dense 0/1 target of an example.
    pub fn target(&self, example: &Example) -> Vec<f32> {
        match example {
            Example::Labels { labels, .. } => {
                let mut t = vec![0f32; self.labels];
                for &i in labels {
                    if let Some(x) = t.get_mut(i as usize) {
                        *x = 1.0;
                    }
                }
                t
            }
            Example::Pair { label, .. } => vec![f32::from(u8::from(*label))],
            Example::Protein { .. } => vec![0f32; self.labels],
        }
    }
}

/// Reads task `task` on split `split_name` of `dataset`.
///
/// # Errors
/// A dataset without labels, an unknown task or split name (listing the ones there are), a
/// protein of the split without labels for the task, unreadable tables.
pub fn load_task(dataset: &Path, task: &str, split_name: &str) -> Result<TaskData, ModelError> {
    let input = |m: String| ModelError::Input(format!("{}: {m}", dataset.display()));
    let manifest = Recorded::read(dataset).map_err(|e| match e {
        ManifestError::Io { path, source } => ModelError::Io { path, source },
        e @ ManifestError::Json { .. } => ModelError::Input(e.to_string()),
    })?;
    let name = task;
    let no_labels =
        || input("no labels: import a benchmark first (fusionprot import ec|go|msp)".into());
    let names = manifest.task_names();
    if names.is_empty() {
        return Err(no_labels());
    }
    let Some(entry) = manifest.task(name) else {
        return Err(input(format!(
            "no task {task:?}; this dataset has {}",
            names.join(", ")
        )));
    };
    let task = Task::from_name(name).ok_or_else(|| {
        input(format!(
            "task {name:?} is not one fusionprot trains (ec, go-mf, go-bp, go-cc, msp)"
        ))
    })?;
    let pairs = task.is_pairs();
    if !dataset
        .join(if pairs { "pairs" } else { "labels" })
        .is_dir()
    {
        return Err(no_labels());
    }
    let labels = entry.size;
    let terms: Vec<String> = entry.terms.clone();
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
    if pairs {
        return load_pairs(dataset, task, labels, split_name, &split_of);
    }
    let mut parts: BTreeMap<String, Vec<Example>> = BTreeMap::new();
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
            if tasks.value(i) != task.name() {
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
                .push(Example::Labels {
                    id: ids.value(i).to_owned(),
                    labels: v.values().to_vec(),
                });
        }
    }
    if seen < split_of.len() {
        let labelled: std::collections::HashSet<String> = parts
            .values()
            .flatten()
            .map(|e| e.id().to_owned())
            .collect();
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
    Ok(TaskData {
        terms,
        ..TaskData::sorted(task, labels, parts)
    })
}

/// MSP: every pair of `pairs/v1` whose mutant the split puts in train / valid / test.
fn load_pairs(
    dataset: &Path,
    task: Task,
    labels: usize,
    split_name: &str,
    split_of: &HashMap<String, String>,
) -> Result<TaskData, ModelError> {
    let input = |m: String| ModelError::Input(format!("{}: pairs: {m}", dataset.display()));
    let mut parts: BTreeMap<String, Vec<Example>> = BTreeMap::new();
    for b in read_table(dataset, Table::Pairs).map_err(ModelError::Read)? {
        let s = |i: usize| b.column(i).as_any().downcast_ref::<StringArray>();
        let i32s = |i: usize| b.column(i).as_any().downcast_ref::<Int32Array>();
        let (Some(mutants), Some(wild_types), Some(label), Some(start), Some(length)) = (
            s(0),
            s(1),
            b.column(4).as_any().downcast_ref::<Int8Array>(),
            i32s(5),
            i32s(6),
        ) else {
            return Err(input("unexpected column types".into()));
        };
        for i in 0..b.num_rows() {
            let Some(part) = split_of.get(mutants.value(i)) else {
                continue;
            };
            if !matches!(part.as_str(), "train" | "valid" | "test") {
                continue;
            }
            let (st, len) = (start.value(i), length.value(i));
            if st < 0 || len < 1 || !matches!(label.value(i), 0 | 1) {
                return Err(input(format!(
                    "{}: window ({st}, {len}) or label {} out of range",
                    mutants.value(i),
                    label.value(i)
                )));
            }
            parts.entry(part.clone()).or_default().push(Example::Pair {
                mutant: mutants.value(i).to_owned(),
                wild_type: wild_types.value(i).to_owned(),
                label: label.value(i) == 1,
                window: (st as usize, len as usize),
            });
        }
    }
    if parts.is_empty() {
        return Err(input(format!(
            "split {split_name:?} puts no mutant of a pair in train, valid or test"
        )));
    }
    Ok(TaskData::sorted(task, labels, parts))
}
