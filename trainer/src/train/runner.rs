//! One model with its task's head, fed from a [`GraphStore`]: the loss of a micro-batch, and the
//! metrics and predictions of a whole part. EC / GO run each protein once through the model; MSP
//! runs the wild types and the mutants of a micro-batch as two forward passes (two sets of
//! BatchNorm batch statistics, as the reference), both cut to the pair's window.

use std::borrow::Cow;

use crate::train::config::Task;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use super::config::TrainConfig;
use super::examples::{Example, TaskData, load_task};
use super::task::{Head, MspHead, MultiLabelHead, bce_loss};
use crate::config::ModelKind;
use crate::error::ModelError;
use crate::metrics::{Predictions, Ties, score};
use crate::model::{Batch, Model, ProteinGraph};
use crate::store::{GraphStore, Prefetcher};
use crate::weights::load::{ModelSpec, build_without};

/// The metric that selects the best evaluation (higher is better): `f1_max` for EC / GO, `auroc`
/// for MSP.
pub fn selection_metric(task: Task) -> &'static str {
    if task.is_pairs() { "auroc" } else { "f1_max" }
}

/// What `model.init` resolved to (weights file, sha256, tensors dropped), as run parameters.
pub(crate) type InitParams = Vec<(String, String)>;

/// The model a run's `[model]` section describes: with `initial_weights` (a fresh run) its
/// `init` (a run of ours, head dropped), checkpoint or ESM weights; otherwise left random for a
/// checkpoint to fill (a resumed run).
///
/// # Errors
/// Unreadable or mismatching weights, an invalid configuration.
pub(crate) fn build_model(
    section: &super::config::ModelSection,
    kind: ModelKind,
    seed: i64,
    device: Device,
    initial_weights: bool,
) -> Result<(Model, InitParams), ModelError> {
    let init = match (&section.init, initial_weights) {
        (Some(p), true) => Some(super::init::resolve(p)?),
        _ => None,
    };
    let spec = ModelSpec {
        kind,
        config: section.config.clone(),
        checkpoint: init
            .clone()
            .or_else(|| section.checkpoint.clone().filter(|_| initial_weights)),
        esm: section
            .esm
            .clone()
            .filter(|_| initial_weights && init.is_none()),
        random_init: section.random_init || !initial_weights,
        device,
        seed,
    };
    let drop: &[&str] = if init.is_some() { &["mlp."] } else { &[] };
    let loaded = build_without(&spec, drop)?;
    // What model.init resolved to, logged with the run's parameters.
    let mut params = Vec::new();
    if let Some(path) = &init {
        let p = &loaded.provenance;
        tracing::info!(init = %path.display(), dropped = %p["dropped"], "weights from model.init");
        params.push(("model.init.weights".into(), path.display().to_string()));
        params.push((
            "model.init.sha256".into(),
            p["checkpoint"]["sha256"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
        params.push((
            "model.init.dropped".into(),
            p["dropped"]["tensors"].as_u64().unwrap_or(0).to_string(),
        ));
    }
    Ok((loaded.model, params))
}

/// The run's model with its head on top; `initial_weights` loads the config's init, checkpoint
/// or ESM weights (a fresh run), otherwise both are left random for a checkpoint to fill.
pub(crate) fn model_and_head(
    cfg: &TrainConfig,
    kind: ModelKind,
    data: &TaskData,
    device: Device,
    initial_weights: bool,
) -> Result<(Model, Head, InitParams), ModelError> {
    let (model, params) = build_model(&cfg.model, kind, cfg.seed, device, initial_weights)?;
    let layers = cfg.mlp_layers();
    let head = if data.is_pairs() {
        Head::Pairs(MspHead::new(&model.vs.root(), model.output_dim(), layers))
    } else {
        Head::Labels(MultiLabelHead::new(
            &model.vs.root(),
            model.output_dim(),
            data.labels,
            layers,
        ))
    };
    Ok((model, head, params))
}

/// Opens a store over every protein the task's parts need.
pub(crate) fn open_store(dataset: &Path, data: &TaskData) -> Result<Arc<GraphStore>, ModelError> {
    let ids: HashSet<String> = data
        .parts
        .values()
        .flatten()
        .flat_map(|e| e.proteins().into_iter().map(str::to_owned))
        .collect();
    Ok(Arc::new(GraphStore::open(dataset, &ids)?))
}

pub(crate) struct Runner<'a> {
    pub model: &'a Model,
    pub head: &'a Head,
    pub store: Arc<GraphStore>,
    pub data: &'a TaskData,
    pub device: Device,
    pub micro_batch: usize,
    pub max_residues: usize,
    /// Proteins read per window by the loader.
    pub prefetch: usize,
    /// A data-parallel job: evaluation batches go round-robin over the ranks and every rank
    /// gathers all predictions (each protein predicted once, in one batch as one process cuts them).
    pub ranks: Option<&'a fusionprot_dist::Group>,
}

impl Runner<'_> {
    /// Starts the loader over micro-batches of examples.
    pub fn prefetch(&self, batches: &[Vec<&Example>]) -> Prefetcher {
        Prefetcher::start(
            Arc::clone(&self.store),
            super::examples::batch_ids(batches),
            self.prefetch,
            2,
        )
    }

    /// Logits `[B, T]` and targets of one micro-batch; `graphs` are what the loader read for it
    /// (for pairs: wild type, mutant, wild type, mutant, …).
    pub fn forward(
        &self,
        rows: &[&Example],
        graphs: &[ProteinGraph],
        train: bool,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let cut = |g: &'_ ProteinGraph| -> ProteinGraph {
            if g.len() > self.max_residues {
                g.truncated(self.max_residues)
            } else {
                g.clone()
            }
        };
        let logits = match self.head {
            Head::Labels(head) => {
                let graphs: Vec<Cow<'_, ProteinGraph>> = graphs
                    .iter()
                    .map(|g| {
                        if g.len() > self.max_residues {
                            Cow::Owned(cut(g))
                        } else {
                            Cow::Borrowed(g)
                        }
                    })
                    .collect();
                let refs: Vec<&ProteinGraph> = graphs.iter().map(AsRef::as_ref).collect();
                let batch = Batch::new(&refs, self.device);
                head.forward(&self.model.forward(&batch, train).graph_feature)
            }
            Head::Pairs(head) => {
                let mut wild = Vec::with_capacity(rows.len());
                let mut mutant = Vec::with_capacity(rows.len());
                let mut mutated = Vec::new();
                for (k, row) in rows.iter().enumerate() {
                    let Example::Pair { window, .. } = row else {
                        return Err(ModelError::Input(format!(
                            "{}: not a pair example",
                            row.id()
                        )));
                    };
                    let w = cut(&graphs[2 * k].window(window.0, window.1));
                    let m = cut(&graphs[2 * k + 1].window(window.0, window.1));
                    if w.len() != m.len() {
                        return Err(ModelError::Input(format!(
                            "pair {}: the wild type has {} residues in the window and the mutant {}",
                            row.id(),
                            w.len(),
                            m.len()
                        )));
                    }
                    mutated.extend(
                        w.residue_type
                            .iter()
                            .zip(&m.residue_type)
                            .map(|(a, b)| f32::from(u8::from(a != b))),
                    );
                    wild.push(w);
                    mutant.push(m);
                }
                let wb = Batch::new(&wild, self.device);
                let mb = Batch::new(&mutant, self.device);
                let w = self.model.forward(&wb, train).node_feature;
                let m = self.model.forward(&mb, train).node_feature;
                let mutated = Tensor::from_slice(&mutated).to_device(self.device);
                head.forward(&w, &m, &mutated, &wb.node2graph, rows.len() as i64)
            }
        };
        let targets: Vec<f32> = rows.iter().flat_map(|e| self.data.target(e)).collect();
        let targets = Tensor::from_slice(&targets)
            .reshape([rows.len() as i64, self.data.labels as i64])
            .to_device(self.device);
        Ok((logits, targets))
    }

    pub fn loss(
        &self,
        rows: &[&Example],
        graphs: &[ProteinGraph],
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let (logits, targets) = self.forward(rows, graphs, train)?;
        Ok(bce_loss(&logits, &targets))
    }

    /// Metrics (and the predictions table) of one part, in eval mode: EC / GO `f1_max`,
    /// `auprc@micro`, `auroc@micro`; MSP `auroc` and `auprc` of the label column.
    pub fn evaluate(
        &self,
        rows: &[Example],
    ) -> Result<(BTreeMap<String, f64>, Option<Predictions>), ModelError> {
        if rows.is_empty() {
            return Ok((BTreeMap::new(), None));
        }
        let batches: Vec<Vec<&Example>> = rows
            .chunks(self.micro_batch)
            .map(|c| c.iter().collect())
            .collect();
        // In a job of W ranks, rank r predicts batches r, r + W, …: the batches one process cuts,
        // so each protein's prediction is the one it would get alone.
        let (world, rank) = self.ranks.map_or((1, 0), |g| (g.world_size(), g.rank()));
        let mine: Vec<Vec<&Example>> = batches.iter().skip(rank).step_by(world).cloned().collect();
        let mut loader = self.prefetch(&mine);
        let mut prediction = Vec::with_capacity(rows.len() * self.data.labels);
        let mut target = Vec::with_capacity(rows.len() * self.data.labels);
        for chunk in &mine {
            let graphs = loader.next_batch()?;
            let (logits, targets) = tch::no_grad(|| self.forward(chunk, &graphs, false))?;
            let logits = logits
                .to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .flatten(0, -1);
            let targets = targets.to_device(Device::Cpu).flatten(0, -1);
            prediction.extend(Vec::<f32>::try_from(&logits).unwrap_or_default());
            target.extend(Vec::<f32>::try_from(&targets).unwrap_or_default());
        }
        if let Some(g) = self.ranks.filter(|_| world > 1) {
            let width = self.data.labels;
            prediction = gather_batches(g, &prediction, &batches, width)?;
            target = gather_batches(g, &target, &batches, width)?;
        }
        let pairs = self.data.is_pairs();
        let p = Predictions {
            ids: rows.iter().map(|e| e.id().to_owned()).collect(),
            width: self.data.labels,
            prediction,
            target,
            // the columns' names (EC numbers, GO terms) where the dataset's vocabulary has them:
            // per-class breakdowns read them
            tasks: if pairs {
                Some(vec!["label".to_owned()])
            } else {
                (self.data.terms.len() == self.data.labels).then(|| self.data.terms.clone())
            },
        };
        let scores = score(&p, Ties::Index, false).map_err(|e| ModelError::Input(e.to_string()))?;
        let metrics = if pairs {
            // The reference's `auroc [label]` / `auprc [label]`, named as MLflow allows.
            scores
                .metrics
                .into_iter()
                .filter_map(|(k, v)| match k.as_str() {
                    "auroc [label]" => Some(("auroc".to_owned(), v)),
                    "auprc [label]" => Some(("auprc".to_owned(), v)),
                    _ => None,
                })
                .collect()
        } else {
            scores.metrics.into_iter().collect()
        };
        Ok((metrics, Some(p)))
    }
}

/// Every rank's values of the evaluation batches it ran (batch k on rank k mod W, `width` values
/// an example), put back in batch order.
fn gather_batches(
    g: &fusionprot_dist::Group,
    mine: &[f32],
    batches: &[Vec<&Example>],
    width: usize,
) -> Result<Vec<f32>, ModelError> {
    let world = g.world_size();
    let parts: Vec<Vec<f32>> = g
        .all_gather_rows(&tch::Tensor::from_slice(mine))?
        .iter()
        .map(|t| Vec::<f32>::try_from(t).map_err(ModelError::from))
        .collect::<Result<_, _>>()?;
    let mut offsets = vec![0usize; world];
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for (k, batch) in batches.iter().enumerate() {
        let (r, n) = (k % world, batch.len() * width);
        let part = parts[r].get(offsets[r]..offsets[r] + n).ok_or_else(|| {
            ModelError::Distributed(format!(
                "rank {r} sent {} evaluation values, fewer than its batches need",
                parts[r].len()
            ))
        })?;
        out.extend_from_slice(part);
        offsets[r] += n;
    }
    Ok(out)
}

/// Runs one micro-batch's work, turning libtorch's out-of-memory failure (a panic in tch) into an
/// error that names the batch and the way out; any other panic goes on unwinding.
///
/// # Errors
/// What `f` returns, or out of memory.
pub(crate) fn memory_guard<T>(
    rows: &[&Example],
    graphs: &[ProteinGraph],
    micro_batch: usize,
    f: impl FnOnce() -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or_default();
            if text.starts_with(crate::model::layers::SYNC_BATCH_NORM_FAILED) {
                return Err(ModelError::Distributed(text.to_owned()));
            }
            if !text.to_lowercase().contains("out of memory") {
                std::panic::resume_unwind(panic);
            }
            let ids: Vec<&str> = rows.iter().map(|e| e.id()).collect();
            let longest = graphs.iter().map(ProteinGraph::len).max().unwrap_or(0);
            Err(ModelError::Input(format!(
                "out of memory on the micro-batch of {} examples ({}; longest {longest} residues): lower optim.micro_batch (now {micro_batch}) and raise optim.gradient_interval to keep the same step size, or lower data.max_residues",
                ids.len(),
                ids.join(", ")
            )))
        }
    }
}

/// The run folder's record of its task and vocabulary (written by `train` at the start).
pub const TASK_FILE: &str = "task.json";

/// The vocabulary a run was trained on: its `task.json`, or for runs from before it, its own
/// dataset's (as its config names it).
fn trained_terms(cfg: &TrainConfig, checkpoint: &Path) -> Result<Vec<String>, ModelError> {
    let record = checkpoint
        .parent()
        .and_then(Path::parent)
        .map(|run| run.join(TASK_FILE));
    if let Some(path) = record.filter(|p| p.is_file()) {
        let v: serde_json::Value = std::fs::read(&path)
            .map_err(|source| ModelError::Io {
                path: path.clone(),
                source,
            })
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| ModelError::Checkpoint {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            })?;
        return Ok(v["terms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect());
    }
    load_task(&cfg.data.dataset, cfg.data.task.name(), &cfg.data.split)
        .map(|d| d.terms)
        .map_err(|e| {
            ModelError::Input(format!(
                "cannot check the label vocabulary the checkpoint was trained on (no {TASK_FILE} in its run, and its dataset {} cannot be read: {e})",
                cfg.data.dataset.display()
            ))
        })
}

/// Refuses a dataset whose task vocabulary is not the one the run was trained on, position by
/// position (label index i must mean the same term).
fn check_terms(trained: &[String], data: &TaskData, dataset: &Path) -> Result<(), ModelError> {
    if trained == data.terms.as_slice() {
        return Ok(());
    }
    let detail = match trained.iter().zip(&data.terms).position(|(a, b)| a != b) {
        Some(i) => format!(
            "label {i} is {:?} in {} but {:?} in the run's vocabulary",
            data.terms[i],
            dataset.display(),
            trained[i]
        ),
        None => format!(
            "{} terms in {}, {} in the run's vocabulary",
            data.terms.len(),
            dataset.display(),
            trained.len()
        ),
    };
    Err(ModelError::Input(format!(
        "task {} of {} does not have the vocabulary the checkpoint was trained on ({detail}): its predictions would be scored against other terms; import the dataset with the run's vocabulary",
        data.task,
        dataset.display()
    )))
}

/// What [`evaluate_checkpoint`] produced.
#[derive(Debug)]
pub struct Evaluated {
    pub metrics: BTreeMap<String, f64>,
    pub predictions: Predictions,
}

/// Evaluates a training checkpoint (`RUN/checkpoints/epoch-NNNN`, built as the run's `cfg` says)
/// on one part (`train`, `valid`, `test`) of a named split of a dataset with the same task.
///
/// # Errors
/// A dataset whose task vocabulary differs from the run's (`task.json`), a head that does not
/// fit the task's label count, an unknown task / split / part, unreadable weights.
pub fn evaluate_checkpoint(
    cfg: &TrainConfig,
    checkpoint: &Path,
    dataset: &Path,
    split: &str,
    part: &str,
    device: Device,
) -> Result<Evaluated, ModelError> {
    let kind = cfg.kind();
    let data = load_task(dataset, cfg.data.task.name(), split)?;
    check_terms(&trained_terms(cfg, checkpoint)?, &data, dataset)?;
    let rows = data.parts.get(part).cloned().ok_or_else(|| {
        ModelError::Input(format!(
            "split {split:?} of {} has no {part:?} proteins (parts: {})",
            dataset.display(),
            data.parts.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let weights = checkpoint.join("model.safetensors");
    let stored = Tensor::read_safetensors(&weights).map_err(|e| ModelError::Checkpoint {
        path: weights.display().to_string(),
        message: e.to_string(),
    })?;
    let last = format!("mlp.layers.{}.weight", cfg.mlp_layers() - 1);
    match stored.iter().find(|(k, _)| *k == last) {
        Some((_, t)) if t.size()[0] as usize != data.labels => {
            return Err(ModelError::Checkpoint {
                path: weights.display().to_string(),
                message: format!(
                    "its head predicts {} labels; task {} of {} has {}",
                    t.size()[0],
                    cfg.data.task,
                    dataset.display(),
                    data.labels
                ),
            });
        }
        Some(_) => {}
        None => {
            return Err(ModelError::Checkpoint {
                path: weights.display().to_string(),
                message: format!("no {last}: not a fine-tuning checkpoint"),
            });
        }
    }
    drop(stored);
    let (mut model, head, _) = model_and_head(cfg, kind, &data, device, false)?;
    model
        .vs
        .load(&weights)
        .map_err(|e| ModelError::Checkpoint {
            path: weights.display().to_string(),
            message: e.to_string(),
        })?;
    let only = TaskData {
        parts: BTreeMap::from([(part.to_owned(), rows.clone())]),
        ..data.clone()
    };
    let run = Runner {
        model: &model,
        head: &head,
        store: open_store(dataset, &only)?,
        data: &data,
        device,
        micro_batch: cfg.optim.micro_batch,
        max_residues: cfg.data.max_residues,
        prefetch: cfg.data.prefetch,
        ranks: None,
    };
    let (metrics, predictions) = run.evaluate(&rows)?;
    let predictions = predictions
        .ok_or_else(|| ModelError::Input(format!("no {part:?} proteins to evaluate")))?;
    Ok(Evaluated {
        metrics,
        predictions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_names_the_batch_and_other_panics_pass_through() {
        let rows = [Example::Labels {
            id: "1ABC-A".into(),
            labels: vec![],
        }];
        let refs: Vec<&Example> = rows.iter().collect();
        let e = memory_guard(&refs, &[], 4, || -> Result<(), ModelError> {
            panic!("CUDA out of memory. Tried to allocate 2.00 GiB")
        })
        .expect_err("oom")
        .to_string();
        assert!(
            e.contains("1ABC-A") && e.contains("optim.micro_batch (now 4)"),
            "{e}"
        );
        let other = std::panic::catch_unwind(|| {
            memory_guard(&refs, &[], 4, || -> Result<(), ModelError> {
                panic!("shape mismatch")
            })
        });
        assert!(other.is_err());
    }
}
