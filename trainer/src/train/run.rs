//! The fine-tuning loop (the reference's `core.Engine` with FusionProt's settings, training.md
//! §3.2): each epoch walks the reference's order ([`epoch_order`]) in micro-batches, accumulates
//! `gradient_interval` of them per AdamW step (the last group of an epoch divided by its real
//! size), evaluates valid and test every `eval_every` epochs, steps the plateau scheduler on the
//! validation metric (`f1_max`, MSP `auroc`), and writes a checkpoint (weights with BatchNorm
//! statistics, optimizer state, loop state) that `--resume` continues from bitwise on CPU: nothing
//! here draws random numbers after the model is built.
//!
//! Graphs come from the dataset's tables through a [`crate::store::GraphStore`] on a background
//! thread, a window of `data.prefetch` proteins ahead of the model: memory stays bounded by the
//! window, whatever the dataset's size, and each protein is read once per epoch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Serialize;
use tch::Device;

use super::adamw::{AdamW, AdamWConfig, ParamGroup};
use super::checkpoint::{self, Evaluation, State};
use super::config::TrainConfig;
use super::examples::{Example, load_task};
use super::plateau::Plateau;
use super::runner::{Runner, memory_guard, model_and_head, open_store, selection_metric};
use super::sampler::epoch_order;
use super::scaler::LossScaler;
use crate::config::ModelKind;
use crate::error::ModelError;
use crate::metrics::write_predictions;
use crate::store::GraphStore;

/// Where a run reports: the CLI wires it to the tracker; the trainer knows nothing of it.
pub trait RunLog {
    fn params(&mut self, params: &[(String, String)]);
    fn metric(&mut self, key: &str, value: f64, step: i64);
    /// Called after each checkpoint: what was logged up to it must not be lost to a crash,
    /// since a resumed run does not log it again.
    fn flush(&mut self) {}
    /// A checkpoint was written (at an evaluation, or at a stop).
    fn checkpoint(&mut self, _record: &CheckpointRecord) {}
    /// A file of the run folder worth keeping with the run (`artifact_path` relative).
    fn artifact(&mut self, _path: &Path, _artifact_path: &str) {}
}

/// What the tracker records about a checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointRecord {
    /// `epoch-NNNN` (folder under `checkpoints/`).
    pub name: String,
    pub path: PathBuf,
    /// Of its `model.safetensors`.
    pub sha256: String,
    pub epoch: usize,
    pub step: i64,
    /// The evaluation it was written at (`valid/…`, `test/…`); empty at a stop.
    pub metrics: BTreeMap<String, f64>,
    /// The best validation metric so far.
    pub best: bool,
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

impl RunOptions {
    /// Whether Ctrl-C (or SIGTERM) asked the run to stop.
    fn stop_requested(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    }
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
    /// The metric that picks the best evaluation (`f1_max`, MSP `auroc`).
    pub selection: String,
    /// Wall seconds this process spent in training steps (reading, forward, backward, update;
    /// evaluations excluded), and the examples they covered.
    pub train_seconds: f64,
    pub train_examples_seen: usize,
}

impl Summary {
    pub fn best(&self) -> Option<&Evaluation> {
        self.state.best.map(|i| &self.state.evaluations[i])
    }

    pub fn last(&self) -> Option<&Evaluation> {
        self.state.evaluations.last()
    }
}

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

/// The micro-batches of one epoch: the reference's order cut into `micro_batch`-sized pieces;
/// with `bucket`, each window of `bucket` examples is sorted by length first and its micro-batches
/// shuffled (seeded by epoch and window), so a micro-batch holds proteins of similar length.
pub fn micro_batches(
    n: usize,
    epoch: usize,
    micro_batch: usize,
    bucket: Option<(usize, &dyn Fn(usize) -> usize)>,
) -> Vec<Vec<usize>> {
    let order = epoch_order(n, epoch as u64, 1, 0);
    let Some((window, length)) = bucket else {
        return order.chunks(micro_batch).map(<[usize]>::to_vec).collect();
    };
    let mut out = Vec::with_capacity(n.div_ceil(micro_batch));
    for (w, block) in order.chunks(window.max(micro_batch)).enumerate() {
        let mut block = block.to_vec();
        block.sort_by_key(|&i| length(i));
        let chunks: Vec<Vec<usize>> = block.chunks(micro_batch).map(<[usize]>::to_vec).collect();
        let shuffle = epoch_order(chunks.len(), (epoch as u64) << 20 | w as u64, 1, 0);
        out.extend(shuffle.into_iter().map(|k| chunks[k].clone()));
    }
    out
}

/// The model kind and the task's data, refused when the task, the split or its train part is
/// not there.
fn task_data(cfg: &TrainConfig) -> Result<(ModelKind, super::TaskData), ModelError> {
    let kind = cfg.kind().map_err(ModelError::Input)?;
    let data = load_task(&cfg.data.dataset, &cfg.data.task, &cfg.data.split)?;
    if data.parts.get("train").is_none_or(Vec::is_empty) {
        return Err(ModelError::Input(format!(
            "split {:?} of {} has no train proteins",
            cfg.data.split,
            cfg.data.dataset.display()
        )));
    }
    Ok((kind, data))
}

/// Checks what [`train`] checks about its data before any work (model kind, dataset, task,
/// split, a non-empty train part), so a caller can refuse a mistyped task or split before it
/// creates a tracked run.
///
/// # Errors
/// As `train` would, for the same reasons.
pub fn preflight(cfg: &TrainConfig) -> Result<(), ModelError> {
    task_data(cfg).map(|_| ())
}

/// Runs (or resumes) a fine-tuning run.
///
/// # Errors
/// Bad configuration or data (before any training: unknown task or split, no train proteins, a
/// checkpoint folder in the way without `resume`), weights that do not load, I/O.
#[allow(clippy::too_many_lines)]
pub fn train(
    cfg: &TrainConfig,
    opts: &RunOptions,
    log: &mut dyn RunLog,
    progress: &ProgressBar,
) -> Result<Summary, ModelError> {
    let input = ModelError::Input;
    let (kind, data) = task_data(cfg)?;
    let part = |name: &str| data.parts.get(name).cloned().unwrap_or_default();
    let (train_set, valid_set, test_set) = (part("train"), part("valid"), part("test"));
    let resume_from = if opts.resume {
        Some(checkpoint::newest(&opts.out).ok_or_else(|| {
            input(format!(
                "--resume: no checkpoint in {}/checkpoints",
                opts.out.display()
            ))
        })?)
    } else {
        if checkpoint::newest(&opts.out).is_some() {
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
    if resume_from.is_none() {
        // The task's vocabulary in label-index order: `evaluate` on another dataset checks its
        // terms against these (the same count in another order scores nonsense).
        let record = serde_json::json!({
            "task": data.task,
            "labels": data.labels,
            "terms": data.terms,
        });
        let text = serde_json::to_string_pretty(&record).map_err(|e| input(e.to_string()))?;
        checkpoint::write_atomic(&opts.out.join(super::runner::TASK_FILE), text.as_bytes())?;
    }
    let store = open_store(&cfg.data.dataset, &data)?;
    let selection = selection_metric(&data.task);

    tch::manual_seed(cfg.seed);
    let (mut model, head) = model_and_head(cfg, kind, &data, opts.device, true)?;
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
        scaler: o.amp.then(LossScaler::default),
    };
    if o.amp && opts.device == Device::Cpu {
        tracing::warn!("optim.amp on CPU: autocast is CUDA-only, so only the loss scaling runs");
    }
    if let Some(dir) = &resume_from {
        state = checkpoint::load(dir, &mut model, &mut opt)?;
        tracing::info!(checkpoint = %dir.display(), epoch = state.epoch, "resuming");
    } else {
        let mut params = Vec::new();
        flatten(
            "",
            &serde_json::to_value(cfg).unwrap_or_default(),
            &mut params,
        );
        params.push(("data.labels".into(), data.labels.to_string()));
        params.push(("data.train_examples".into(), train_set.len().to_string()));
        log.params(&params);
    }
    let resumed_from_epoch = resume_from.as_ref().map(|_| state.epoch);
    let run = Runner {
        model: &model,
        head: &head,
        store: std::sync::Arc::clone(&store),
        data: &data,
        device: opts.device,
        micro_batch: o.micro_batch,
        max_residues: cfg.data.max_residues,
        prefetch: cfg.data.prefetch,
    };
    let length = |i: usize| example_length(&store, &train_set[i], cfg.data.max_residues);
    let bucket = cfg
        .data
        .bucket_by_length
        .then_some((cfg.data.prefetch, &length as &dyn Fn(usize) -> usize));
    let micro_per_epoch = train_set.len().div_ceil(o.micro_batch);
    progress.set_length((o.epochs * micro_per_epoch) as u64);
    progress.set_position((state.epoch * micro_per_epoch) as u64);
    let summary = |state: State, interrupted: bool, seconds: f64, seen: usize| Summary {
        train_proteins: train_set.len(),
        valid_proteins: valid_set.len(),
        test_proteins: test_set.len(),
        labels: data.labels,
        resumed_from_epoch,
        interrupted,
        selection: selection.to_owned(),
        train_seconds: seconds,
        train_examples_seen: seen,
        state,
    };
    let (mut seconds, mut seen) = (0.0f64, 0usize);
    for epoch in state.epoch..o.epochs {
        let micro = micro_batches(train_set.len(), epoch, o.micro_batch, bucket);
        let groups_total = micro.len().div_ceil(o.gradient_interval);
        let skip = state.groups_done * o.gradient_interval;
        // Done before a mid-epoch checkpoint this run resumed from.
        progress.inc(skip.min(micro.len()) as u64);
        let todo: Vec<Vec<&Example>> = micro[skip.min(micro.len())..]
            .iter()
            .map(|b| b.iter().map(|&i| &train_set[i]).collect())
            .collect();
        let mut loader = run.prefetch(&todo);
        let mut todo = todo.iter();
        let started = Instant::now();
        for g in state.groups_done..groups_total {
            let size = micro[g * o.gradient_interval..]
                .len()
                .min(o.gradient_interval);
            let mut loss_sum = 0.0;
            for rows in todo.by_ref().take(size) {
                let graphs = loader.next_batch()?;
                let scale = state.scaler.as_ref().map(|s| s.scale);
                loss_sum += memory_guard(rows, &graphs, o.micro_batch, || {
                    let loss = tch::autocast(scale.is_some(), || run.loss(rows, &graphs, true))?;
                    let value = loss.double_value(&[]);
                    // Without loss scaling a non-finite loss only spreads (NaN weights, then
                    // every later loss): stop at the first one, before it reaches the weights.
                    if scale.is_none() && !value.is_finite() {
                        return Err(ModelError::Diverged {
                            epoch: epoch + 1,
                            step: state.step + 1,
                            loss: value,
                            lr: o.lr,
                            last_checkpoint: checkpoint::newest(&opts.out)
                                .map(|c| c.display().to_string()),
                        });
                    }
                    match scale {
                        Some(scale) => {
                            (loss.to_kind(tch::Kind::Float) * scale / size as f64).backward()
                        }
                        None => (loss / size as f64).backward(),
                    }
                    Ok(value)
                })?;
                seen += rows.len();
                progress.inc(1);
            }
            let take = match &mut state.scaler {
                Some(scaler) => {
                    let finite = opt.unscale_grads(1.0 / scaler.scale);
                    let take = scaler.update(finite);
                    if !take {
                        tracing::warn!(
                            scale = scaler.scale,
                            "non-finite gradients: step skipped, loss scale halved"
                        );
                    }
                    take
                }
                None => true,
            };
            if take {
                opt.step();
            }
            opt.zero_grad();
            state.step += 1;
            state.groups_done = g + 1;
            log.metric("train/loss", loss_sum / size as f64, state.step);
            for (name, lr, _) in opt.groups() {
                log.metric(&format!("lr/{name}"), lr, state.step);
            }
            let elapsed = seconds + started.elapsed().as_secs_f64();
            progress.set_message(format!(
                "epoch {}/{} loss {:.4} {:.1} ex/s",
                epoch + 1,
                o.epochs,
                loss_sum / size as f64,
                seen as f64 / elapsed.max(1e-9)
            ));
            if opts.stop_requested() && state.groups_done < groups_total {
                save_and_record(cfg, opts, &model, &opt, &state, log, BTreeMap::new(), false)?;
                tracing::warn!(
                    epoch = state.epoch,
                    step = state.step,
                    "interrupted: checkpoint written, --resume continues"
                );
                return Ok(summary(state, true, elapsed, seen));
            }
        }
        seconds += started.elapsed().as_secs_f64();
        drop(loader);
        state.groups_done = 0;
        state.epoch = epoch + 1;
        let evaluated = state.epoch.is_multiple_of(o.eval_every) || state.epoch == o.epochs;
        if evaluated {
            evaluate_and_save(
                cfg, opts, &run, &model, &mut opt, &mut state, log, selection, &train_set,
                &valid_set, &test_set,
            )?;
        }
        // Ctrl-C during an epoch's last accumulation group (every group, when an epoch is one
        // optimizer step) stops here, at the epoch's end, with a checkpoint there.
        if opts.stop_requested() && state.epoch < o.epochs {
            if !evaluated {
                save_and_record(cfg, opts, &model, &opt, &state, log, BTreeMap::new(), false)?;
            }
            tracing::warn!(
                epoch = state.epoch,
                step = state.step,
                "interrupted: checkpoint written, --resume continues"
            );
            return Ok(summary(state, true, seconds, seen));
        }
    }
    let summary = summary(state, false, seconds, seen);
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
    let best_predictions = opts.out.join("test-predictions-best.parquet");
    if best_predictions.is_file() {
        log.artifact(&best_predictions, "test-predictions-best.parquet");
    }
    let text = serde_json::to_string_pretty(&summary).map_err(|e| input(e.to_string()))?;
    checkpoint::write_atomic(&opts.out.join("summary.json"), text.as_bytes())?;
    log.artifact(&opts.out.join("summary.json"), "summary.json");
    log.flush();
    Ok(summary)
}

/// Residues an example puts through the model (its window, truncated).
fn example_length(store: &GraphStore, e: &Example, max_residues: usize) -> usize {
    let n = match e {
        Example::Labels { id, .. } => store.residue_count(id).unwrap_or(0),
        Example::Pair { window, .. } => window.1,
    };
    n.min(max_residues)
}

/// One evaluation: valid, test (and train), logged; the best test predictions kept; the
/// scheduler stepped; a checkpoint written and recorded.
#[allow(clippy::too_many_arguments)]
fn evaluate_and_save(
    cfg: &TrainConfig,
    opts: &RunOptions,
    run: &Runner<'_>,
    model: &crate::model::Model,
    opt: &mut AdamW,
    state: &mut State,
    log: &mut dyn RunLog,
    selection: &str,
    train_set: &[Example],
    valid_set: &[Example],
    test_set: &[Example],
) -> Result<(), ModelError> {
    let (valid, _) = run.evaluate(valid_set)?;
    let (test, test_predictions) = run.evaluate(test_set)?;
    let train_metrics = if cfg.data.evaluate_train {
        run.evaluate(train_set)?.0
    } else {
        BTreeMap::new()
    };
    let mut metrics = BTreeMap::new();
    for (prefix, m) in [
        ("train", &train_metrics),
        ("valid", &valid),
        ("test", &test),
    ] {
        for (k, v) in m {
            log.metric(&format!("{prefix}/{k}"), *v, state.step);
            metrics.insert(format!("{prefix}/{k}"), *v);
        }
    }
    let selected = valid.get(selection).copied().unwrap_or(f64::NEG_INFINITY);
    let is_best = state.best.is_none_or(|b| {
        selected
            > state.evaluations[b]
                .valid
                .get(selection)
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
                .map_err(|e| ModelError::Input(e.to_string()))?;
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
    save_and_record(cfg, opts, model, opt, state, log, metrics, is_best)
}

/// Writes a checkpoint, records it in the run's log and flushes the log (what was logged up to a
/// checkpoint is not logged again by a resumed run).
#[allow(clippy::too_many_arguments)]
fn save_and_record(
    cfg: &TrainConfig,
    opts: &RunOptions,
    model: &crate::model::Model,
    opt: &AdamW,
    state: &State,
    log: &mut dyn RunLog,
    metrics: BTreeMap<String, f64>,
    best: bool,
) -> Result<(), ModelError> {
    let saved = checkpoint::save(&opts.out, model, opt, state, cfg.checkpoint.keep)?;
    log.checkpoint(&CheckpointRecord {
        name: saved.name,
        path: saved.dir,
        sha256: saved.sha256,
        epoch: state.epoch,
        step: state.step,
        metrics,
        best,
    });
    log.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucketing_keeps_every_example_once_and_groups_lengths_within_a_window() {
        let n = 37;
        let length = |i: usize| (i * 7919) % 101;
        let plain = micro_batches(n, 3, 2, None);
        let want: Vec<usize> = epoch_order(n, 3, 1, 0);
        assert_eq!(plain.concat(), want);
        let bucketed = micro_batches(n, 3, 2, Some((8, &length)));
        let mut all = bucketed.concat();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        // Within each window of 8 (4 micro-batches) the batches partition the window's examples
        // sorted by length: no batch straddles another's length range.
        for (w, window) in bucketed.chunks(4).enumerate() {
            let mut members: Vec<usize> = window.concat();
            members.sort_unstable();
            let mut expected: Vec<usize> = want[w * 8..(w * 8 + 8).min(n)].to_vec();
            expected.sort_unstable();
            assert_eq!(members, expected, "window {w}");
            for a in window {
                for b in window {
                    let (amax, bmin) = (
                        a.iter().map(|&i| length(i)).max(),
                        b.iter().map(|&i| length(i)).min(),
                    );
                    let (amin, bmax) = (
                        a.iter().map(|&i| length(i)).min(),
                        b.iter().map(|&i| length(i)).max(),
                    );
                    assert!(a == b || amax <= bmin || bmax <= amin, "{a:?} {b:?}");
                }
            }
        }
        assert_eq!(bucketed, micro_batches(n, 3, 2, Some((8, &length))));
        assert_ne!(bucketed, micro_batches(n, 4, 2, Some((8, &length))));
    }
}
