//! The fine-tuning loop for EC / GO tasks (the reference's `core.Engine` with FusionProt's
//! settings, training.md §3.2): each epoch walks the reference's order ([`epoch_order`]) in
//! micro-batches, accumulates `gradient_interval` of them per AdamW step (the last group of an
//! epoch divided by its real size), evaluates valid and test every `eval_every` epochs, steps the
//! plateau scheduler on the validation Fmax, and writes a checkpoint (weights with BatchNorm
//! statistics, optimizer state, loop state) that `--resume` continues from bitwise on CPU: nothing
//! here draws random numbers after the model is built.
//!
//! The graphs of the task's proteins are read once into memory; streaming by row group for sets
//! larger than memory is still to come.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::adamw::{AdamW, AdamWConfig, ParamGroup};
use super::config::TrainConfig;
use super::examples::{TaskData, load_task};
use super::plateau::Plateau;
use super::sampler::epoch_order;
use super::task::{MultiLabelHead, bce_loss};
use crate::config::ModelKind;
use crate::data::DatasetGraphs;
use crate::error::ModelError;
use crate::load::{ModelSpec, build};
use crate::metrics::{Predictions, Ties, score, write_predictions};
use crate::model::{Batch, Model, ProteinGraph};

/// Where a run reports: the CLI wires it to the tracker; the trainer knows nothing of it.
pub trait RunLog {
    fn params(&mut self, params: &[(String, String)]);
    fn metric(&mut self, key: &str, value: f64, step: i64);
    /// Called after each checkpoint: what was logged up to it must not be lost to a crash,
    /// since a resumed run does not log it again.
    fn flush(&mut self) {}
}

/// A log that drops everything.
#[derive(Debug, Default)]
pub struct NoLog;

impl RunLog for NoLog {
    fn params(&mut self, _: &[(String, String)]) {}
    fn metric(&mut self, _: &str, _: f64, _: i64) {}
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run folder: `checkpoints/`, `test-predictions-best.parquet`, `summary.json`.
    pub out: PathBuf,
    pub device: Device,
    /// Continue from the newest checkpoint in `out`.
    pub resume: bool,
    /// Set (by Ctrl-C) to stop after the current optimizer step with a checkpoint there.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub epoch: usize,
    pub step: i64,
    pub valid: BTreeMap<String, f64>,
    pub test: BTreeMap<String, f64>,
    /// With `data.evaluate_train`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub train: BTreeMap<String, f64>,
}

/// The loop's state, saved in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: i64,
    /// Accumulation groups of the current epoch already done (a checkpoint taken mid-epoch).
    #[serde(default)]
    pub groups_done: usize,
    pub plateau: Option<Plateau>,
    /// Index into `evaluations` of the best validation Fmax.
    pub best: Option<usize>,
    pub evaluations: Vec<Evaluation>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub state: State,
    /// Stopped by [`RunOptions::stop`] with a checkpoint; `--resume` continues.
    pub interrupted: bool,
    pub train_proteins: usize,
    pub valid_proteins: usize,
    pub test_proteins: usize,
    pub labels: usize,
    pub resumed_from_epoch: Option<usize>,
}

impl Summary {
    pub fn best(&self) -> Option<&Evaluation> {
        self.state.best.map(|i| &self.state.evaluations[i])
    }

    pub fn last(&self) -> Option<&Evaluation> {
        self.state.evaluations.last()
    }
}

/// The metric that selects the best evaluation (higher is better).
pub const SELECTION: &str = "f1_max";

fn groups(kind: ModelKind, cfg: &TrainConfig) -> Vec<ParamGroup> {
    let g = |name: &str, prefixes: &[&str], lr_ratio: f64| ParamGroup {
        name: name.to_owned(),
        prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        lr_ratio,
    };
    let ratio = cfg.optim.sequence_model_lr_ratio;
    let mut v = match kind {
        ModelKind::Fusionprot | ModelKind::EsmGearnet => vec![
            g("sequence_model", &["sequence_model."], ratio),
            g("structure_model", &["structure_model.", "mlp."], 1.0),
        ],
        ModelKind::Esm2 => vec![
            g("sequence_model", &["sequence_model."], ratio),
            g("head", &["mlp."], 1.0),
        ],
        ModelKind::Gearnet => vec![g(
            "structure_model",
            &["layers.", "batch_norms.", "mlp."],
            1.0,
        )],
    };
    if kind == ModelKind::Fusionprot && cfg.optim.train_fusion_parameters {
        v.push(g(
            "fusion",
            &[
                "structure_embed_linear.",
                "embedding_batch_norm.",
                "structure_token",
                "structure_linears.",
                "seq_linears.",
            ],
            1.0,
        ));
    }
    v
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

fn newest_checkpoint(out: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("epoch-"))
        })
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Runs (or resumes) a fine-tuning run.
///
/// # Errors
/// Bad configuration or data (before any training: unknown task or split, no train proteins, a
/// checkpoint folder in the way without `resume`), weights that do not load, I/O.
pub fn train(
    cfg: &TrainConfig,
    opts: &RunOptions,
    log: &mut dyn RunLog,
    progress: &ProgressBar,
) -> Result<Summary, ModelError> {
    let input = ModelError::Input;
    let kind = cfg.kind().map_err(input)?;
    let data = load_task(&cfg.data.dataset, &cfg.data.task, &cfg.data.split)?;
    let part = |name: &str| data.parts.get(name).cloned().unwrap_or_default();
    let (train_set, valid_set, test_set) = (part("train"), part("valid"), part("test"));
    if train_set.is_empty() {
        return Err(input(format!(
            "split {:?} of {} has no train proteins",
            cfg.data.split,
            cfg.data.dataset.display()
        )));
    }
    let resume_from = if opts.resume {
        Some(newest_checkpoint(&opts.out).ok_or_else(|| {
            input(format!(
                "--resume: no checkpoint in {}/checkpoints",
                opts.out.display()
            ))
        })?)
    } else {
        if newest_checkpoint(&opts.out).is_some() {
            return Err(input(format!(
                "{} already holds checkpoints: pass --resume to continue that run, or choose another --out",
                opts.out.display()
            )));
        }
        None
    };
    std::fs::create_dir_all(opts.out.join("checkpoints")).map_err(|source| ModelError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let graphs = read_graphs(&cfg.data.dataset, &data, cfg.data.max_residues)?;

    tch::manual_seed(cfg.seed);
    let (mut model, head) = model_and_head(cfg, kind, data.labels, opts.device, true)?;
    let o = &cfg.optim;
    let mut opt = AdamW::new(
        &model.vs,
        groups(kind, cfg),
        AdamWConfig {
            lr: o.lr,
            beta1: o.betas[0],
            beta2: o.betas[1],
            eps: o.eps,
            weight_decay: o.weight_decay,
        },
    )?;
    let mut state = State {
        epoch: 0,
        step: 0,
        groups_done: 0,
        plateau: cfg
            .scheduler
            .enabled
            .then(|| Plateau::new(cfg.scheduler.plateau())),
        best: None,
        evaluations: Vec::new(),
    };
    if let Some(dir) = &resume_from {
        model
            .vs
            .load(dir.join("model.safetensors"))
            .map_err(|e| ModelError::Checkpoint {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
        opt.load(&dir.join("optimizer.safetensors"))?;
        let text =
            std::fs::read_to_string(dir.join("state.json")).map_err(|source| ModelError::Io {
                path: dir.join("state.json"),
                source,
            })?;
        state = serde_json::from_str(&text).map_err(|e| ModelError::Checkpoint {
            path: dir.join("state.json").display().to_string(),
            message: e.to_string(),
        })?;
        tracing::info!(checkpoint = %dir.display(), epoch = state.epoch, "resuming");
    } else {
        let mut params = Vec::new();
        flatten(
            "",
            &serde_json::to_value(cfg).unwrap_or_default(),
            &mut params,
        );
        params.push(("data.labels".into(), data.labels.to_string()));
        params.push(("data.train_proteins".into(), train_set.len().to_string()));
        log.params(&params);
    }
    let resumed_from_epoch = resume_from.as_ref().map(|_| state.epoch);
    let run = Runner {
        model: &model,
        head: &head,
        graphs: &graphs,
        data: &data,
        device: opts.device,
        micro_batch: o.micro_batch,
    };
    let micro_per_epoch = train_set.len().div_ceil(o.micro_batch);
    progress.set_length((o.epochs * micro_per_epoch) as u64);
    progress.set_position((state.epoch * micro_per_epoch) as u64);
    for epoch in state.epoch..o.epochs {
        progress.set_message(format!("epoch {}/{}", epoch + 1, o.epochs));
        let order = epoch_order(train_set.len(), epoch as u64, 1, 0);
        let micro: Vec<&[usize]> = order.chunks(o.micro_batch).collect();
        for (g, group) in micro.chunks(o.gradient_interval).enumerate() {
            if g < state.groups_done {
                // Done before a mid-epoch checkpoint this run resumed from.
                progress.inc(group.len() as u64);
                continue;
            }
            let size = group.len() as f64;
            let mut loss_sum = 0.0;
            for indices in group {
                let ids: Vec<&(String, Vec<i32>)> =
                    indices.iter().map(|&i| &train_set[i]).collect();
                let loss = run.loss(&ids, true)?;
                loss_sum += loss.double_value(&[]);
                (loss / size).backward();
                progress.inc(1);
            }
            opt.step();
            opt.zero_grad();
            state.step += 1;
            state.groups_done = g + 1;
            log.metric("train/loss", loss_sum / size, state.step);
            for (name, lr, _) in opt.groups() {
                log.metric(&format!("lr/{name}"), lr, state.step);
            }
            let stopping = opts
                .stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
            if stopping && state.groups_done < micro.len().div_ceil(o.gradient_interval) {
                save_checkpoint(&opts.out, &model, &opt, &state, cfg.checkpoint.keep)?;
                log.flush();
                tracing::warn!(
                    epoch = state.epoch,
                    step = state.step,
                    "interrupted: checkpoint written, --resume continues"
                );
                return Ok(Summary {
                    train_proteins: train_set.len(),
                    valid_proteins: valid_set.len(),
                    test_proteins: test_set.len(),
                    labels: data.labels,
                    resumed_from_epoch,
                    interrupted: true,
                    state,
                });
            }
        }
        state.groups_done = 0;
        state.epoch = epoch + 1;
        if state.epoch.is_multiple_of(o.eval_every) || state.epoch == o.epochs {
            let (valid, _) = run.evaluate(&valid_set)?;
            let (test, test_predictions) = run.evaluate(&test_set)?;
            let train_metrics = if cfg.data.evaluate_train {
                run.evaluate(&train_set)?.0
            } else {
                BTreeMap::new()
            };
            for (k, v) in &train_metrics {
                log.metric(&format!("train/{k}"), *v, state.step);
            }
            for (k, v) in &valid {
                log.metric(&format!("valid/{k}"), *v, state.step);
            }
            for (k, v) in &test {
                log.metric(&format!("test/{k}"), *v, state.step);
            }
            let selected = valid.get(SELECTION).copied().unwrap_or(f64::NEG_INFINITY);
            let is_best = state.best.is_none_or(|b| {
                selected
                    > state.evaluations[b]
                        .valid
                        .get(SELECTION)
                        .copied()
                        .unwrap_or(f64::NEG_INFINITY)
            });
            state.evaluations.push(Evaluation {
                epoch: state.epoch,
                step: state.step,
                valid,
                test,
                train: train_metrics,
            });
            if is_best {
                state.best = Some(state.evaluations.len() - 1);
                if let Some(p) = test_predictions {
                    write_predictions(&opts.out.join("test-predictions-best.parquet"), &p)
                        .map_err(|e| input(e.to_string()))?;
                }
            }
            if let Some(plateau) = &mut state.plateau {
                let mut lrs: Vec<f64> = (0..opt.groups().len()).map(|g| opt.lr(g)).collect();
                if plateau.step(selected, &mut lrs) {
                    tracing::info!(epoch = state.epoch, lrs = ?lrs, "learning rates reduced");
                }
                for (g, lr) in lrs.into_iter().enumerate() {
                    opt.set_lr(g, lr);
                }
            }
            save_checkpoint(&opts.out, &model, &opt, &state, cfg.checkpoint.keep)?;
            log.flush();
        }
    }
    let summary = Summary {
        interrupted: false,
        train_proteins: train_set.len(),
        valid_proteins: valid_set.len(),
        test_proteins: test_set.len(),
        labels: data.labels,
        resumed_from_epoch,
        state,
    };
    if let Some(best) = summary.best() {
        for (k, v) in &best.valid {
            log.metric(&format!("best_valid/{k}"), *v, best.step);
        }
        for (k, v) in &best.test {
            log.metric(&format!("test_at_best_valid/{k}"), *v, best.step);
        }
    }
    if let Some(last) = summary.last() {
        for (k, v) in &last.test {
            log.metric(&format!("test_at_last/{k}"), *v, last.step);
        }
    }
    let text = serde_json::to_string_pretty(&summary).map_err(|e| input(e.to_string()))?;
    write_atomic(&opts.out.join("summary.json"), text.as_bytes())?;
    Ok(summary)
}

/// The run's model with its head on top; `initial_weights` loads the config's checkpoint or ESM
/// weights (a fresh run), otherwise both are left random for a checkpoint to fill.
fn model_and_head(
    cfg: &TrainConfig,
    kind: ModelKind,
    labels: usize,
    device: Device,
    initial_weights: bool,
) -> Result<(Model, MultiLabelHead), ModelError> {
    let loaded = build(&ModelSpec {
        kind,
        config: cfg.model.config.clone(),
        checkpoint: cfg.model.checkpoint.clone().filter(|_| initial_weights),
        esm: cfg.model.esm.clone().filter(|_| initial_weights),
        random_init: cfg.model.random_init || !initial_weights,
        device,
        seed: cfg.seed,
    })?;
    let model = loaded.model;
    let head = MultiLabelHead::new(
        &model.vs.root(),
        model.output_dim(),
        labels,
        cfg.model.mlp_layers,
    );
    Ok((model, head))
}

/// The graphs of every protein the task uses, truncated.
fn read_graphs(
    dataset: &Path,
    data: &TaskData,
    max_residues: usize,
) -> Result<HashMap<String, ProteinGraph>, ModelError> {
    let needed: HashSet<&str> = data
        .parts
        .values()
        .flatten()
        .map(|(id, _)| id.as_str())
        .collect();
    let mut out = HashMap::with_capacity(needed.len());
    for g in DatasetGraphs::open(dataset)? {
        let g = g?;
        if needed.contains(g.id.as_str()) {
            let g = if g.len() > max_residues {
                g.truncated(max_residues)
            } else {
                g
            };
            out.insert(g.id.clone(), g);
        }
    }
    if let Some(missing) = needed.iter().find(|id| !out.contains_key(**id)) {
        return Err(ModelError::Input(format!(
            "{}: protein {missing} has labels but no residues",
            dataset.display()
        )));
    }
    Ok(out)
}

struct Runner<'a> {
    model: &'a Model,
    head: &'a MultiLabelHead,
    graphs: &'a HashMap<String, ProteinGraph>,
    data: &'a TaskData,
    device: Device,
    micro_batch: usize,
}

impl Runner<'_> {
    fn forward(&self, rows: &[&(String, Vec<i32>)], train: bool) -> (Tensor, Tensor) {
        let graphs: Vec<&ProteinGraph> = rows.iter().map(|(id, _)| &self.graphs[id]).collect();
        let batch = Batch::new(&graphs, self.device);
        let out = self.model.forward(&batch, train);
        let logits = self.head.forward(&out.graph_feature);
        let targets: Vec<f32> = rows.iter().flat_map(|(_, l)| self.data.target(l)).collect();
        let targets = Tensor::from_slice(&targets)
            .reshape([rows.len() as i64, self.data.labels as i64])
            .to_device(self.device);
        (logits, targets)
    }

    fn loss(&self, rows: &[&(String, Vec<i32>)], train: bool) -> Result<Tensor, ModelError> {
        let (logits, targets) = self.forward(rows, train);
        Ok(bce_loss(&logits, &targets))
    }

    /// Metrics (and the predictions table) of one part, in eval mode.
    fn evaluate(
        &self,
        rows: &[(String, Vec<i32>)],
    ) -> Result<(BTreeMap<String, f64>, Option<Predictions>), ModelError> {
        if rows.is_empty() {
            return Ok((BTreeMap::new(), None));
        }
        let mut prediction = Vec::with_capacity(rows.len() * self.data.labels);
        let mut target = Vec::with_capacity(rows.len() * self.data.labels);
        tch::no_grad(|| {
            for chunk in rows.chunks(self.micro_batch) {
                let refs: Vec<&(String, Vec<i32>)> = chunk.iter().collect();
                let (logits, targets) = self.forward(&refs, false);
                let logits = logits
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu)
                    .flatten(0, -1);
                let targets = targets.to_device(Device::Cpu).flatten(0, -1);
                prediction.extend(Vec::<f32>::try_from(&logits).unwrap_or_default());
                target.extend(Vec::<f32>::try_from(&targets).unwrap_or_default());
            }
        });
        let p = Predictions {
            ids: rows.iter().map(|(id, _)| id.clone()).collect(),
            width: self.data.labels,
            prediction,
            target,
            tasks: None,
        };
        let scores = score(&p, Ties::Index, false).map_err(|e| ModelError::Input(e.to_string()))?;
        Ok((scores.metrics.into_iter().collect(), Some(p)))
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Writes `checkpoints/epoch-NNNN/` (weights, optimizer state, loop state) under a temporary
/// name, renames it into place, then prunes all but the newest `keep` and the best.
fn save_checkpoint(
    out: &Path,
    model: &Model,
    opt: &AdamW,
    state: &State,
    keep: usize,
) -> Result<(), ModelError> {
    let dir = out.join("checkpoints");
    // Mid-epoch (Ctrl-C) checkpoints sort after their epoch's start and before the next epoch.
    let name = if state.groups_done > 0 {
        format!("epoch-{:04}-step-{:07}", state.epoch, state.step)
    } else {
        format!("epoch-{:04}", state.epoch)
    };
    let tmp = dir.join(format!(".tmp-{name}"));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ModelError::Io { path, source }
    };
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    model
        .vs
        .save(tmp.join("model.safetensors"))
        .map_err(|e| ModelError::Checkpoint {
            path: tmp.display().to_string(),
            message: e.to_string(),
        })?;
    opt.save(&tmp.join("optimizer.safetensors"))?;
    let text = serde_json::to_string_pretty(state).map_err(|e| ModelError::Input(e.to_string()))?;
    std::fs::write(tmp.join("state.json"), text).map_err(io(&tmp))?;
    let target = dir.join(&name);
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    let best = state
        .best
        .map(|b| format!("epoch-{:04}", state.evaluations[b].epoch));
    let mut all: Vec<String> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("epoch-"))
        .collect();
    all.sort();
    let newest: Vec<String> = all.iter().rev().take(keep.max(1)).cloned().collect();
    for n in all {
        if !newest.contains(&n) && best.as_deref() != Some(n.as_str()) {
            std::fs::remove_dir_all(dir.join(&n)).map_err(io(&dir.join(&n)))?;
        }
    }
    Ok(())
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
/// A head that does not fit the task's label count, an unknown task / split / part, unreadable
/// weights.
pub fn evaluate_checkpoint(
    cfg: &TrainConfig,
    checkpoint: &Path,
    dataset: &Path,
    split: &str,
    part: &str,
    device: Device,
) -> Result<Evaluated, ModelError> {
    let kind = cfg.kind().map_err(ModelError::Input)?;
    let data = load_task(dataset, &cfg.data.task, split)?;
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
    let last = format!("mlp.layers.{}.weight", cfg.model.mlp_layers - 1);
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
    let (mut model, head) = model_and_head(cfg, kind, data.labels, device, false)?;
    model
        .vs
        .load(&weights)
        .map_err(|e| ModelError::Checkpoint {
            path: weights.display().to_string(),
            message: e.to_string(),
        })?;
    let graphs = read_graphs(dataset, &data, cfg.data.max_residues)?;
    let run = Runner {
        model: &model,
        head: &head,
        graphs: &graphs,
        data: &data,
        device,
        micro_batch: cfg.optim.micro_batch,
    };
    let (metrics, predictions) = run.evaluate(&rows)?;
    let predictions = predictions
        .ok_or_else(|| ModelError::Input(format!("no {part:?} proteins to evaluate")))?;
    Ok(Evaluated {
        metrics,
        predictions,
    })
}
