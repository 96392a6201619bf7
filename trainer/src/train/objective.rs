//! What a training objective contributes to the one loop ([`super::fit`]): its examples and their
//! order, the loss of a micro-batch, and (for fine-tuning) an evaluation. The loop does the rest:
//! micro-batches and accumulation, the optimizer, AMP, the evaluation cadence, checkpoints,
//! resume, Ctrl-C, tracking and progress. Fine-tuning on EC / GO / MSP ([`super::supervised`]),
//! Multiview Contrast ([`super::contrast`]) and residue-type prediction ([`super::residue_type`])
//! are the four objectives.

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::Tensor;

use super::examples::Example;
use crate::error::ModelError;
use crate::metrics::Predictions;
use crate::model::{Model, ProteinGraph};
use crate::store::GraphSource;

/// One micro-batch: its examples and the graphs the loader read for them, in the examples'
/// order of [`Example::proteins`] (for a pair: wild type, mutant).
#[derive(Debug, Clone, Copy)]
pub struct MicroBatch<'a> {
    pub rows: &'a [&'a Example],
    pub graphs: &'a [ProteinGraph],
}

/// Where a micro-batch sits in the run. Every random draw an objective makes (views, crops,
/// masks) comes from a generator seeded by these alone, so a resumed run draws exactly what an
/// uninterrupted one would have, and nothing random lives in a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub seed: i64,
    /// 0-based epoch.
    pub epoch: usize,
    /// The optimizer step this micro-batch contributes to (1-based, as logged).
    pub step: i64,
    /// Its place among the step's micro-batches.
    pub micro: usize,
}

impl Draw {
    /// A 64-bit seed mixing every field and `stream` (which draw of the micro-batch this is).
    pub fn seed_for(&self, stream: u64) -> u64 {
        let mut z = 0x9e37_79b9_7f4a_7c15u64;
        for v in [
            self.seed as u64,
            self.epoch as u64,
            self.step as u64,
            self.micro as u64,
            stream,
        ] {
            z = (z ^ v).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z ^= z >> 31;
        }
        z
    }
}

/// A micro-batch's loss (unscaled: the loop divides it for accumulation) and the scalars the
/// objective wants logged, each averaged over the step's micro-batches as `train/<name>`.
#[derive(Debug)]
pub struct Loss {
    pub loss: Tensor,
    pub scalars: Vec<(&'static str, f64)>,
}

/// One evaluation: metrics per part (`valid`, `test`, `train`), the value that picks the best
/// (higher is better), and the test predictions kept when it is the best.
#[derive(Debug)]
pub struct EvalOutcome {
    pub valid: BTreeMap<String, f64>,
    pub test: BTreeMap<String, f64>,
    pub train: BTreeMap<String, f64>,
    pub selected: f64,
    pub test_predictions: Option<Predictions>,
}

/// A training objective: see the module docs.
pub trait Objective {
    /// What the run trains (`ec`, `msp`, `multiview-contrast`, `residue-type`).
    fn name(&self) -> &str;

    /// The training examples; micro-batches index into them.
    fn examples(&self) -> &[Example];

    /// The micro-batches of `epoch` (0-based), as indices into [`Objective::examples`].
    fn epoch_batches(&self, epoch: usize, micro_batch: usize) -> Vec<Vec<usize>>;

    /// How many examples `epoch` walks (all of them unless the objective's order says otherwise),
    /// without computing its order: the progress bar's length.
    fn epoch_examples(&self, _epoch: usize) -> usize {
        self.examples().len()
    }

    /// Where the loader reads graphs from.
    fn source(&self) -> Arc<dyn GraphSource>;

    /// The loss of one micro-batch in train mode.
    ///
    /// # Errors
    /// Inconsistent inputs (a pair whose graphs do not match), libtorch errors.
    fn loss(
        &mut self,
        model: &Model,
        batch: MicroBatch<'_>,
        draw: Draw,
    ) -> Result<Loss, ModelError>;

    /// The metric [`EvalOutcome::selected`] reports (`f1_max`, `auroc`), or `None` when there is
    /// no selection (pre-training: a probe may be logged, and the newest checkpoint counts as the
    /// best).
    fn selection(&self) -> Option<&'static str> {
        None
    }

    /// A data-parallel job's process group (more than one rank), for an evaluation that splits
    /// its work over the ranks; by default every rank evaluates everything (pre-training's probe).
    fn set_ranks(&mut self, _group: Option<std::sync::Arc<fusionprot_dist::Group>>) {}

    /// An evaluation at the loop's cadence (eval mode, no gradient); `None` when there is none.
    ///
    /// # Errors
    /// Unreadable graphs, libtorch errors.
    fn evaluate(&mut self, _model: &Model) -> Result<Option<EvalOutcome>, ModelError> {
        Ok(None)
    }
}
