//! Fine-tuning on a benchmark task as an [`Objective`]: EC / GO (BCE over the label vocabulary)
//! and MSP (wild type and mutant as two passes), on the train part of a named split, evaluated on
//! valid and test with the metrics TorchDrug reports; the best evaluation is the highest
//! validation `f1_max` (MSP: `auroc`).

use std::sync::Arc;

use super::examples::{Example, TaskData};
use super::objective::{Draw, EvalOutcome, Loss, MicroBatch, Objective};
use super::runner::{Runner, selection_metric};
use super::sampler::micro_batches;
use super::task::Head;
use crate::error::ModelError;
use crate::model::Model;
use crate::store::{GraphSource, GraphStore};

/// A benchmark task on one split, its head and its graphs.
#[derive(Debug)]
pub struct Supervised {
    pub data: TaskData,
    pub head: Head,
    pub store: Arc<GraphStore>,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    pub test: Vec<Example>,
    /// Proteins are cut to their first `max_residues` residues.
    pub max_residues: usize,
    /// Proteins per forward pass in evaluations.
    pub micro_batch: usize,
    pub prefetch: usize,
    pub evaluate_train: bool,
    /// Sort windows of `prefetch` examples by length before cutting micro-batches.
    pub bucket_by_length: bool,
    pub device: tch::Device,
    /// A data-parallel job's group: evaluations split over the ranks.
    pub ranks: Option<Arc<fusionprot_dist::Group>>,
}

impl Supervised {
    fn runner<'a>(&'a self, model: &'a Model) -> Runner<'a> {
        Runner {
            model,
            head: &self.head,
            store: Arc::clone(&self.store),
            data: &self.data,
            device: self.device,
            micro_batch: self.micro_batch,
            max_residues: self.max_residues,
            prefetch: self.prefetch,
            ranks: self.ranks.as_deref(),
        }
    }

    /// Residues an example puts through the model (its window, truncated).
    fn example_length(&self, e: &Example) -> usize {
        let n = match e {
            Example::Labels { id, .. } | Example::Protein { id } => {
                self.store.residue_count(id).unwrap_or(0)
            }
            Example::Pair { window, .. } => window.1,
        };
        n.min(self.max_residues)
    }
}

impl Objective for Supervised {
    fn name(&self) -> &str {
        self.data.task.name()
    }

    fn examples(&self) -> &[Example] {
        &self.train
    }

    fn epoch_batches(&self, epoch: usize, micro_batch: usize) -> Vec<Vec<usize>> {
        let length = |i: usize| self.example_length(&self.train[i]);
        let bucket = self
            .bucket_by_length
            .then_some((self.prefetch, &length as &dyn Fn(usize) -> usize));
        micro_batches(self.train.len(), epoch, micro_batch, bucket)
    }

    fn source(&self) -> Arc<dyn GraphSource> {
        Arc::clone(&self.store) as Arc<dyn GraphSource>
    }

    fn loss(
        &mut self,
        model: &Model,
        batch: MicroBatch<'_>,
        _draw: Draw,
    ) -> Result<Loss, ModelError> {
        Ok(Loss {
            loss: self.runner(model).loss(batch.rows, batch.graphs, true)?,
            scalars: Vec::new(),
        })
    }

    fn selection(&self) -> Option<&'static str> {
        Some(selection_metric(self.data.task))
    }

    fn set_ranks(&mut self, group: Option<Arc<fusionprot_dist::Group>>) {
        self.ranks = group;
    }

    fn evaluate(&mut self, model: &Model) -> Result<Option<EvalOutcome>, ModelError> {
        let runner = self.runner(model);
        let (valid, _) = runner.evaluate(&self.valid)?;
        let (test, test_predictions) = runner.evaluate(&self.test)?;
        let train = if self.evaluate_train {
            runner.evaluate(&self.train)?.0
        } else {
            Default::default()
        };
        let selected = valid
            .get(selection_metric(self.data.task))
            .copied()
            .unwrap_or(f64::NEG_INFINITY);
        Ok(Some(EvalOutcome {
            valid,
            test,
            train,
            selected,
            test_predictions,
        }))
    }
}
