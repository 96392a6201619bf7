//! The one optimizer step every objective takes ([`Trainer::step`], what `fit` calls and what the
//! parity tests run): micro-batches forward and backward (with AMP's loss scaling when on), in a
//! data-parallel job the gradients averaged over the ranks once (DDP), then the optimizer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use fusionprot_dist::{BUCKET_BYTES, Group};

use super::adamw::AdamW;
use super::objective::{Draw, MicroBatch, Objective};
use super::runner::memory_guard;
use super::scaler::LossScaler;
use crate::error::ModelError;
use crate::model::Model;

/// What one optimizer step computed.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// The mean of the micro-batches' losses.
    pub loss: f64,
    /// The objective's other scalars, each the mean over the micro-batches.
    pub scalars: BTreeMap<&'static str, f64>,
    /// Examples the step covered.
    pub examples: usize,
    /// Whether the optimizer stepped (loss scaling skips a step with non-finite gradients).
    pub stepped: bool,
}

/// The model and its optimizer, stepping; the loss scaler when AMP is on.
#[derive(Debug)]
pub struct Trainer<'m> {
    pub model: &'m Model,
    pub opt: AdamW,
    pub scaler: Option<LossScaler>,
    /// The configured learning rate (named in the divergence error).
    pub lr: f64,
    /// Proteins per micro-batch (named in the out-of-memory error).
    pub micro_batch: usize,
    /// A data-parallel run's process group: gradients are averaged over the ranks before the
    /// optimizer steps (DDP's mean), and the step's loss and scalars too.
    pub dist: Option<Arc<Group>>,
    /// Time spent in the gradient all-reduce, and bytes reduced, since the last read.
    pub comm: CommStats,
}

/// The all-reduce's share of training, for a rank's system metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommStats {
    pub seconds: f64,
    pub bytes: usize,
    pub steps: usize,
}

impl Trainer<'_> {
    /// One optimizer step over `group`: each micro-batch's loss (from `objective`, drawn at
    /// `draws[i]`), divided by the group's size (and scaled, with AMP), backward; then the
    /// optimizer steps and the gradients are cleared. A non-finite loss without loss scaling
    /// stops here, before it reaches the weights.
    ///
    /// # Errors
    /// The objective's, out of memory (naming the micro-batch), or [`ModelError::Diverged`].
    pub fn step(
        &mut self,
        objective: &mut dyn Objective,
        group: &[MicroBatch<'_>],
        draws: &[Draw],
    ) -> Result<StepReport, ModelError> {
        self.step_inspecting(objective, group, draws, &mut |_| {})
    }

    /// [`Trainer::step`], calling `inspect` with the model once the gradients of the whole group
    /// are accumulated, before the optimizer uses (and clears) them: what a test compares.
    ///
    /// # Errors
    /// As [`Trainer::step`].
    pub fn step_inspecting(
        &mut self,
        objective: &mut dyn Objective,
        group: &[MicroBatch<'_>],
        draws: &[Draw],
        inspect: &mut dyn FnMut(&Model),
    ) -> Result<StepReport, ModelError> {
        let size = group.len();
        let ranks = self
            .dist
            .as_deref()
            .filter(|g| g.world_size() > 1)
            .map(|g| (g.rank(), g.world_size()));
        let mut loss_sum = 0.0;
        let mut scalar_sums: BTreeMap<&'static str, f64> = BTreeMap::new();
        let mut examples = 0;
        for (batch, draw) in group.iter().zip(draws) {
            let scale = self.scaler.as_ref().map(|s| s.scale);
            let model = self.model;
            let lr = self.lr;
            let (value, scalars) = memory_guard(
                batch.rows,
                batch.graphs,
                self.micro_batch,
                || {
                    let loss =
                        tch::autocast(scale.is_some(), || objective.loss(model, *batch, *draw))?;
                    let value = loss.loss.double_value(&[]);
                    // Without loss scaling a non-finite loss only spreads (NaN weights, then every
                    // later loss): stop at the first one, before it reaches the weights.
                    if scale.is_none() && !value.is_finite() {
                        return Err(ModelError::Diverged {
                            epoch: draw.epoch + 1,
                            step: draw.step,
                            loss: value,
                            lr,
                            last_checkpoint: None,
                        });
                    }
                    let scaled = match scale {
                        Some(scale) => loss.loss.to_kind(tch::Kind::Float) * scale / size as f64,
                        None => loss.loss / size as f64,
                    };
                    // SyncBatchNorm's backward all-reduces: a dead peer fails it, as an error.
                    scaled.f_backward().map_err(|e| match &ranks {
                        Some((rank, world)) => ModelError::Distributed(format!(
                            "rank {rank} of {world}: backward failed (a peer rank exited or timed out?): {e}"
                        )),
                        None => ModelError::from(e),
                    })?;
                    Ok((value, loss.scalars))
                },
            )?;
            loss_sum += value;
            for (k, v) in scalars {
                *scalar_sums.entry(k).or_default() += v;
            }
            examples += batch.rows.len();
        }
        let mut loss_mean = loss_sum / size as f64;
        let mut scalar_means: BTreeMap<&'static str, f64> = scalar_sums
            .into_iter()
            .map(|(k, v)| (k, v / size as f64))
            .collect();
        if let Some(g) = self.dist.as_deref().filter(|g| g.world_size() > 1) {
            // DDP: one all-reduce of the accumulated gradients per optimizer step, averaged.
            let started = Instant::now();
            self.comm.bytes += g.average_gradients(&self.opt.trainable(), BUCKET_BYTES)?;
            self.comm.seconds += started.elapsed().as_secs_f64();
            self.comm.steps += 1;
            // What the step reports is the job's: the mean over ranks, examples summed.
            let mut values = vec![loss_mean];
            values.extend(scalar_means.values());
            values.push(examples as f64);
            let t = tch::Tensor::from_slice(&values);
            g.all_reduce_sum(&[&t])?;
            let values = Vec::<f64>::try_from(&t).map_err(ModelError::from)?;
            let world = g.world_size() as f64;
            loss_mean = values[0] / world;
            for (v, (_, m)) in values[1..].iter().zip(scalar_means.iter_mut()) {
                *m = v / world;
            }
            examples = values[values.len() - 1].round() as usize;
        }
        inspect(self.model);
        let stepped = match &mut self.scaler {
            Some(scaler) => {
                let finite = self.opt.unscale_grads(1.0 / scaler.scale);
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
        if stepped {
            self.opt.step();
        }
        self.opt.zero_grad();
        Ok(StepReport {
            loss: loss_mean,
            scalars: scalar_means,
            examples,
            stepped,
        })
    }
}
