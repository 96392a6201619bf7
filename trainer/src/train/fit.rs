//! The one training loop (STYLE §11), driven by an [`Objective`]: each epoch walks the objective's
//! micro-batches, accumulates `gradient_interval` of them per optimizer step (the last group of
//! an epoch divided by its real size), evaluates and checkpoints every `eval_every` epochs (and
//! after the last), steps the plateau scheduler on the objective's selection metric when it has
//! one, and writes a checkpoint (weights with BatchNorm statistics, optimizer state, loop state)
//! that `--resume` continues from bitwise on CPU. Ctrl-C stops after the current optimizer step
//! (or at the end of an epoch of one step) with a checkpoint there.
//!
//! [`Trainer::step`] is the one optimizer step, public so that tests run exactly the code a run
//! runs. Graphs come from the objective's source through a [`Prefetcher`] on a background
//! thread, a window of `prefetch` proteins ahead of the model.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use fusionprot_dist::Group;
use indicatif::ProgressBar;
use serde::Serialize;
use tch::Device;

use super::checkpoint::{self, Evaluation, State};
use super::examples::Example;
pub use super::log::{CheckpointRecord, NoLog, RunLog};
use super::objective::{Draw, MicroBatch, Objective};
use super::sampler::shard_batches;
pub use super::step::{CommStats, StepReport, Trainer};
use crate::error::ModelError;
use crate::metrics::write_predictions;
use crate::model::ProteinGraph;
use crate::store::Prefetcher;

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
    /// The job's process group in a data-parallel run (this process is one rank); None alone.
    pub dist: Option<Arc<Group>>,
}

impl RunOptions {
    /// Whether Ctrl-C (or SIGTERM) asked the run to stop — on any rank: every rank stops at the
    /// same step.
    fn stop_requested(&self) -> Result<bool, ModelError> {
        let here = self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
        match self.ranks() {
            None => Ok(here),
            Some(g) => {
                let flag = tch::Tensor::from_slice(&[f32::from(u8::from(here))]);
                g.all_reduce_sum(&[&flag])?;
                Ok(flag.double_value(&[0]) > 0.0)
            }
        }
    }

    /// The process group when there is more than one rank.
    pub fn ranks(&self) -> Option<&Group> {
        self.dist.as_deref().filter(|g| g.world_size() > 1)
    }

    /// Rank 0, or the only process: writes checkpoints, predictions and the summary.
    pub fn is_leader(&self) -> bool {
        self.dist.as_ref().is_none_or(|g| g.rank() == 0)
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
    /// The metric that picks the best evaluation (`f1_max`, MSP `auroc`; empty when the
    /// objective does not evaluate).
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

/// The loop's settings (from a fine-tuning or a pre-training configuration).
#[derive(Debug, Clone)]
pub struct LoopConfig {
    pub seed: i64,
    pub micro_batch: usize,
    pub gradient_interval: usize,
    pub epochs: usize,
    /// Evaluate (when the objective does) and checkpoint every this many epochs, and after the
    /// last.
    pub eval_every: usize,
    /// Proteins the loader reads per window.
    pub prefetch: usize,
    /// Checkpoints kept besides the best one.
    pub keep: usize,
    /// The configured learning rate (for the divergence message).
    pub lr: f64,
    /// CUDA autocast for the forward passes (with the loss scaler in the state).
    pub amp: bool,
    /// A fresh run evaluates once before its first step and logs it at step 0 (pre-training's
    /// probe: the untrained baseline); no checkpoint, not an evaluation of the state.
    pub evaluate_at_start: bool,
    /// In a data-parallel run, BatchNorm is SyncBatchNorm (the reference's conversion); false
    /// keeps per-rank statistics (`distributed.batch_norm = "per-rank"`).
    pub sync_batch_norm: bool,
}

/// Runs (or resumes) a run of `objective` on `trainer`'s model: `state` is the loop's state to
/// start from (a fresh one, or a checkpoint's). Returns the run's summary; `summary.json` and the
/// final metrics are written and logged here.
///
/// # Errors
/// What a step, an evaluation or a checkpoint meets.
#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
pub fn fit(
    cfg: &LoopConfig,
    objective: &mut dyn Objective,
    trainer: &mut Trainer<'_>,
    mut state: State,
    opts: &RunOptions,
    log: &mut dyn RunLog,
    progress: &ProgressBar,
    counts: Counts,
) -> Result<Summary, ModelError> {
    let selection = objective.selection();
    let resumed_from_epoch = opts.resume.then_some(state.epoch);
    let (world, rank) = opts.ranks().map_or((1, 0), |g| (g.world_size(), g.rank()));
    // optim.micro_batch is per rank; a run resumed on another number of ranks keeps the global
    // batch it was trained with, so its remaining steps are the ones it would have taken.
    if !opts.resume {
        state.ranks = world;
    }
    let micro_batch = per_rank_micro_batch(cfg.micro_batch, state.ranks, world)?;
    if micro_batch != cfg.micro_batch {
        tracing::warn!(
            from_ranks = state.ranks,
            ranks = world,
            micro_batch,
            "resumed on another number of ranks: micro-batch per rank changed to keep the global batch"
        );
    }
    trainer.micro_batch = micro_batch;
    state.ranks = world;
    if let (Some(group), true) = (&opts.dist, world > 1) {
        super::ddp::start(group, trainer, cfg.sync_batch_norm)?;
        objective.set_ranks(Some(std::sync::Arc::clone(group)));
    }
    // This rank's micro-batches per epoch (epochs may differ: pre-training's dataset-by-dataset
    // order; a rank walks its 1/world share, padded).
    let micro_in = |e: usize| {
        objective
            .epoch_examples(e)
            .div_ceil(world)
            .div_ceil(micro_batch) as u64
    };
    progress.set_length((0..cfg.epochs).map(micro_in).sum());
    progress.set_position((0..state.epoch).map(micro_in).sum());
    let summary = |state: State, interrupted: bool, seconds: f64, seen: usize| Summary {
        train_proteins: counts.train,
        valid_proteins: counts.valid,
        test_proteins: counts.test,
        labels: counts.labels,
        resumed_from_epoch,
        interrupted,
        selection: selection.unwrap_or_default().to_owned(),
        train_seconds: seconds,
        train_examples_seen: seen,
        state,
    };
    let (mut seconds, mut seen) = (0.0f64, 0usize);
    // The loop's own copy: micro-batches index into it while the objective is borrowed mutably.
    let examples: Vec<Example> = objective.examples().to_vec();
    if cfg.evaluate_at_start
        && state.step == 0
        && state.groups_done == 0
        && !opts.resume
        && let Some(e) = objective.evaluate(trainer.model)?
    {
        for (prefix, m) in [("train", &e.train), ("valid", &e.valid), ("test", &e.test)] {
            for (k, v) in m {
                log.metric(&format!("{prefix}/{k}"), *v, 0);
            }
        }
    }
    for epoch in state.epoch..cfg.epochs {
        let micro = if world > 1 {
            shard_batches(
                &objective.epoch_batches(epoch, micro_batch * world),
                world,
                rank,
                micro_batch,
            )
        } else {
            objective.epoch_batches(epoch, micro_batch)
        };
        let groups_total = micro.len().div_ceil(cfg.gradient_interval);
        let skip = (state.groups_done * cfg.gradient_interval).min(micro.len());
        // Done before a mid-epoch checkpoint this run resumed from.
        progress.inc(skip as u64);
        let todo: Vec<Vec<&Example>> = micro[skip..]
            .iter()
            .map(|b| b.iter().map(|&i| &examples[i]).collect())
            .collect();
        let mut loader = prefetch(objective, &todo, cfg.prefetch);
        let mut todo = todo.iter();
        let started = Instant::now();
        let mut proteins = 0usize;
        let first_group = state.groups_done;
        for g in state.groups_done..groups_total {
            let size = micro[g * cfg.gradient_interval..]
                .len()
                .min(cfg.gradient_interval);
            let rows: Vec<&Vec<&Example>> = todo.by_ref().take(size).collect();
            let graphs: Vec<Vec<ProteinGraph>> = rows
                .iter()
                .map(|_| loader.next_batch())
                .collect::<Result<_, _>>()?;
            let group: Vec<MicroBatch<'_>> = rows
                .iter()
                .zip(&graphs)
                .map(|(r, g)| MicroBatch { rows: r, graphs: g })
                .collect();
            let draws: Vec<Draw> = (0..size)
                .map(|micro| Draw {
                    seed: cfg.seed,
                    epoch,
                    step: state.step + 1,
                    micro,
                })
                .collect();
            trainer.scaler.clone_from(&state.scaler);
            let report = match trainer.step(objective, &group, &draws) {
                Err(ModelError::Diverged {
                    epoch,
                    step,
                    loss,
                    lr,
                    ..
                }) => {
                    return Err(ModelError::Diverged {
                        epoch,
                        step,
                        loss,
                        lr,
                        last_checkpoint: checkpoint::newest(&opts.out)
                            .map(|c| c.display().to_string()),
                    });
                }
                other => other?,
            };
            state.scaler.clone_from(&trainer.scaler);
            proteins += graphs.iter().map(Vec::len).sum::<usize>();
            progress.inc(size as u64);
            seen += report.examples;
            state.step += 1;
            state.groups_done = g + 1;
            log.metric("train/loss", report.loss, state.step);
            for (k, v) in &report.scalars {
                log.metric(&format!("train/{k}"), *v, state.step);
            }
            for (name, lr, _) in trainer.opt.groups() {
                log.metric(&format!("lr/{name}"), lr, state.step);
            }
            let elapsed = seconds + started.elapsed().as_secs_f64();
            progress.set_message(format!(
                "epoch {}/{} loss {:.4} {:.1} ex/s",
                epoch + 1,
                cfg.epochs,
                report.loss,
                seen as f64 / elapsed.max(1e-9)
            ));
            if opts.stop_requested()? && state.groups_done < groups_total {
                save_and_record(cfg, opts, trainer, &state, log, BTreeMap::new(), false)?;
                tracing::warn!(
                    epoch = state.epoch,
                    step = state.step,
                    "interrupted: checkpoint written, --resume continues"
                );
                return Ok(summary(state, true, elapsed, seen));
            }
        }
        let took = started.elapsed().as_secs_f64();
        seconds += took;
        drop(loader);
        // Throughput of the epoch (or of its part this process ran), data path included; a
        // data-parallel job's is every rank's, with each rank's own under system/rank-N/.
        match opts.ranks() {
            None => log.metric(
                "speed/proteins_per_second",
                proteins as f64 / took.max(1e-9),
                state.step,
            ),
            Some(g) => {
                let steps = groups_total - first_group;
                super::ddp::epoch_report(g, trainer, proteins, took, steps, log, state.step)?;
            }
        }
        state.groups_done = 0;
        state.epoch = epoch + 1;
        let evaluated = state.epoch.is_multiple_of(cfg.eval_every) || state.epoch == cfg.epochs;
        if evaluated {
            evaluate_and_save(cfg, opts, objective, trainer, &mut state, log)?;
        }
        // Ctrl-C during an epoch's last accumulation group (every group, when an epoch is one
        // optimizer step) stops here, at the epoch's end, with a checkpoint there.
        if opts.stop_requested()? && state.epoch < cfg.epochs {
            if !evaluated {
                save_and_record(cfg, opts, trainer, &state, log, BTreeMap::new(), false)?;
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
    if !opts.is_leader() {
        return Ok(summary);
    }
    let best_predictions = opts.out.join(BEST_PREDICTIONS);
    if best_predictions.is_file() {
        log.artifact(&best_predictions, BEST_PREDICTIONS);
    }
    let text =
        serde_json::to_string_pretty(&summary).map_err(|e| ModelError::Input(e.to_string()))?;
    checkpoint::write_atomic(&opts.out.join("summary.json"), text.as_bytes())?;
    log.artifact(&opts.out.join("summary.json"), "summary.json");
    log.flush();
    Ok(summary)
}

/// The test predictions of the best evaluation, in the run folder.
pub const BEST_PREDICTIONS: &str = "test-predictions-best.parquet";

/// Example counts for the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub train: usize,
    pub valid: usize,
    pub test: usize,
    pub labels: usize,
}

/// The loader over micro-batches of examples.
fn prefetch(objective: &dyn Objective, batches: &[Vec<&Example>], window: usize) -> Prefetcher {
    Prefetcher::start(
        objective.source(),
        super::examples::batch_ids(batches),
        window,
        2,
    )
}

/// At the cadence: the objective's evaluation (valid, test, train; logged), the best test
/// predictions kept, the scheduler stepped on the selection metric; then a checkpoint written and
/// recorded (also when the objective does not evaluate).
fn evaluate_and_save(
    cfg: &LoopConfig,
    opts: &RunOptions,
    objective: &mut dyn Objective,
    trainer: &mut Trainer<'_>,
    state: &mut State,
    log: &mut dyn RunLog,
) -> Result<(), ModelError> {
    let Some(e) = objective.evaluate(trainer.model)? else {
        return save_and_record(cfg, opts, trainer, state, log, BTreeMap::new(), false);
    };
    let mut metrics = BTreeMap::new();
    for (prefix, m) in [("train", &e.train), ("valid", &e.valid), ("test", &e.test)] {
        for (k, v) in m {
            log.metric(&format!("{prefix}/{k}"), *v, state.step);
            metrics.insert(format!("{prefix}/{k}"), *v);
        }
    }
    // Without a selection metric (pre-training's probe) the newest evaluation is the best.
    let is_best = match objective.selection() {
        None => true,
        Some(selection) => state.best.is_none_or(|b| {
            e.selected
                > state.evaluations[b]
                    .valid
                    .get(selection)
                    .copied()
                    .unwrap_or(f64::NEG_INFINITY)
        }),
    };
    state.evaluations.push(Evaluation {
        epoch: state.epoch,
        step: state.step,
        valid: e.valid,
        test: e.test,
        train: e.train,
    });
    if is_best {
        state.best = Some(state.evaluations.len() - 1);
        if let Some(p) = e.test_predictions.filter(|_| opts.is_leader()) {
            write_predictions(&opts.out.join(BEST_PREDICTIONS), &p)
                .map_err(|e| ModelError::Input(e.to_string()))?;
        }
    }
    if let Some(plateau) = &mut state.plateau {
        let opt = &mut trainer.opt;
        let mut lrs: Vec<f64> = (0..opt.groups().len()).map(|g| opt.lr(g)).collect();
        if plateau.step(e.selected, &mut lrs) {
            tracing::info!(epoch = state.epoch, lrs = ?lrs, "learning rates reduced");
        }
        for (g, lr) in lrs.into_iter().enumerate() {
            opt.set_lr(g, lr);
        }
    }
    save_and_record(cfg, opts, trainer, state, log, metrics, is_best)
}

/// Writes a checkpoint, records it in the run's log and flushes the log (what was logged up to a
/// checkpoint is not logged again by a resumed run).
fn save_and_record(
    cfg: &LoopConfig,
    opts: &RunOptions,
    trainer: &Trainer<'_>,
    state: &State,
    log: &mut dyn RunLog,
    metrics: BTreeMap<String, f64>,
    best: bool,
) -> Result<(), ModelError> {
    // Rank 0 writes; every rank holds the same weights, optimizer state and loop state.
    if !opts.is_leader() {
        return Ok(());
    }
    let saved = checkpoint::save(&opts.out, trainer.model, &trainer.opt, state, cfg.keep)?;
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

/// The micro-batch per rank that keeps a checkpoint's global batch (`micro_batch × ranks_then`)
/// on `ranks_now` ranks.
///
/// # Errors
/// When the global batch does not split evenly over `ranks_now`.
fn per_rank_micro_batch(
    micro_batch: usize,
    ranks_then: usize,
    ranks_now: usize,
) -> Result<usize, ModelError> {
    let global = micro_batch * ranks_then.max(1);
    if !global.is_multiple_of(ranks_now.max(1)) {
        return Err(ModelError::Input(format!(
            "this run trained {ranks_then} rank(s) × optim.micro_batch {micro_batch} = {global} proteins per micro-batch, which {ranks_now} ranks cannot share evenly: resume on a number of ranks that divides {global}"
        )));
    }
    Ok(global / ranks_now.max(1))
}

#[cfg(test)]
mod tests {
    use super::per_rank_micro_batch;

    #[test]
    fn a_resumed_run_keeps_its_global_batch_on_any_dividing_number_of_ranks() {
        assert_eq!(per_rank_micro_batch(4, 2, 1).expect("1 rank"), 8);
        assert_eq!(per_rank_micro_batch(8, 1, 2).expect("2 ranks"), 4);
        assert_eq!(per_rank_micro_batch(3, 1, 1).expect("alone"), 3);
        let e = per_rank_micro_batch(3, 1, 2)
            .expect_err("3 over 2")
            .to_string();
        assert!(e.contains("divides 3"), "{e}");
    }
}
