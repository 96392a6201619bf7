//! Residue-type prediction (FusionProt's `ResidueTypePrediction`, TorchDrug's `AttributeMasking`
//! on residues; FP `config/pretrain/attr_esm_gearnet.yaml`) as an [`Objective`]: each protein is
//! cut to a random window of `truncate` residues (`TruncateProtein(random=True)`: start
//! `⌊U·(L − truncate)⌋`), `max(1, ⌊mask_rate·L⌋)` residue positions are drawn with replacement and
//! hidden — a zero one-hot for GearNet, `<mask>` for ESM — and an MLP on their node features
//! (`mlp.layers.k`, the last to the 20 residue types) is trained with cross-entropy over the drawn
//! positions; accuracy is logged.
//!
//! Named deviation: the reference builds the graph after the window is cut, so radius and KNN
//! edges at the window's border are chosen among its residues; here the window keeps the stored
//! edges of the whole protein among its residues (as MSP's window does).

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::{Kind, Tensor};

use super::examples::Example;
use super::objective::{Draw, EvalOutcome, Loss, MicroBatch, Objective};
use super::pretrain_data::Proteins;
use super::task::MultiLabelHead;
use super::views::{SplitMix, crop_start};
use crate::error::ModelError;
use crate::model::batch::{ONEHOT_MASKED, RESIDUE_MASKED};
use crate::model::{Batch, Model, ProteinGraph};
use crate::store::GraphSource;

/// The residue types TorchDrug predicts (`constant.NUM_AMINO_ACID`).
pub const RESIDUE_TYPES: usize = 20;

#[derive(Debug)]
pub struct ResidueType {
    pub proteins: Proteins,
    /// `mlp.layers.k`: `[dim] × (layers − 1)` then 20.
    pub head: MultiLabelHead,
    pub mask_rate: f64,
    pub truncate: usize,
    pub device: tch::Device,
    /// The proteins (indices into `proteins.examples`) probed at each checkpoint.
    pub probe: Vec<usize>,
    /// The run's seed: the probe's windows and masks are drawn from it alone.
    pub seed: i64,
}

/// One protein's draw: its window and the positions (in the window) hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masking {
    pub start: usize,
    pub len: usize,
    pub positions: Vec<usize>,
}

impl ResidueType {
    /// The windows and hidden positions of a micro-batch, drawn at `draw`.
    pub fn draw(&self, graphs: &[ProteinGraph], draw: Draw) -> Vec<Masking> {
        let mut rng = SplitMix(draw.seed_for(1));
        graphs
            .iter()
            .map(|g| {
                let start = crop_start(rng.unit(), g.len(), self.truncate);
                let len = self.truncate.min(g.len() - start);
                let k = ((len as f64 * self.mask_rate).floor() as usize).max(1);
                let positions = (0..k)
                    .map(|_| (rng.unit() * len as f64).floor() as usize)
                    .collect();
                Masking {
                    start,
                    len,
                    positions,
                }
            })
            .collect()
    }

    /// Loss and accuracy of the masked positions of `graphs`, the model in train mode when
    /// `train`.
    ///
    /// # Errors
    /// An empty protein.
    pub fn loss_of(
        &self,
        model: &Model,
        graphs: &[ProteinGraph],
        masks: &[Masking],
        train: bool,
    ) -> Result<(Tensor, f64), ModelError> {
        let mut cut = Vec::with_capacity(graphs.len());
        let (mut index, mut target) = (Vec::new(), Vec::new());
        let mut offset = 0i64;
        for (g, m) in graphs.iter().zip(masks) {
            if g.is_empty() {
                return Err(ModelError::Input(format!("{}: no residues", g.id)));
            }
            let mut w = g.window(m.start, m.len);
            for &p in &m.positions {
                // The target is read before the residue is hidden (a repeated draw keeps it).
                let original = g.residue_type[m.start + p];
                target.push(original.clamp(0, RESIDUE_TYPES as i64 - 1));
                index.push(offset + p as i64);
                w.residue_type[p] = RESIDUE_MASKED;
                w.onehot[p] = ONEHOT_MASKED;
            }
            offset += w.len() as i64;
            cut.push(w);
        }
        let out = model.forward(&Batch::new(&cut, self.device), train);
        let index = Tensor::from_slice(&index).to_device(self.device);
        let target = Tensor::from_slice(&target).to_device(self.device);
        let pred = self.head.forward(&out.node_feature.index_select(0, &index));
        let loss = pred.cross_entropy_for_logits(&target);
        let accuracy = pred
            .argmax(-1, false)
            .eq_tensor(&target)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        Ok((loss, accuracy))
    }
}

impl Objective for ResidueType {
    fn name(&self) -> &str {
        "residue-type"
    }

    fn examples(&self) -> &[Example] {
        &self.proteins.examples
    }

    fn epoch_batches(&self, epoch: usize, micro_batch: usize) -> Vec<Vec<usize>> {
        self.proteins.epoch_batches(epoch, micro_batch)
    }

    fn epoch_examples(&self, epoch: usize) -> usize {
        self.proteins.epoch_len(epoch)
    }

    fn source(&self) -> Arc<dyn GraphSource> {
        Arc::clone(&self.proteins.source) as Arc<dyn GraphSource>
    }

    fn loss(
        &mut self,
        model: &Model,
        batch: MicroBatch<'_>,
        draw: Draw,
    ) -> Result<Loss, ModelError> {
        let masks = self.draw(batch.graphs, draw);
        let (loss, accuracy) = self.loss_of(model, batch.graphs, &masks, true)?;
        Ok(Loss {
            loss,
            scalars: vec![("accuracy", accuracy)],
        })
    }

    /// The probe: windows and masks of the probe proteins drawn from the seed alone, eval mode;
    /// the masked positions' accuracy and loss, logged as `train/probe_*`.
    fn evaluate(&mut self, model: &Model) -> Result<Option<EvalOutcome>, ModelError> {
        if self.probe.is_empty() {
            return Ok(None);
        }
        let graphs = self.proteins.graphs(&self.probe)?;
        let (mut correct, mut loss, mut positions) = (0.0, 0.0, 0usize);
        tch::no_grad(|| -> Result<(), ModelError> {
            for (k, chunk) in graphs.chunks(16).enumerate() {
                let draw = Draw {
                    seed: self.seed,
                    epoch: usize::MAX,
                    step: 0,
                    micro: k,
                };
                let masks = self.draw(chunk, draw);
                let n: usize = masks.iter().map(|m| m.positions.len()).sum();
                let (l, a) = self.loss_of(model, chunk, &masks, false)?;
                loss += l.double_value(&[]) * n as f64;
                correct += a * n as f64;
                positions += n;
            }
            Ok(())
        })?;
        let n = positions.max(1) as f64;
        Ok(Some(EvalOutcome {
            valid: BTreeMap::new(),
            test: BTreeMap::new(),
            train: BTreeMap::from([
                ("probe_accuracy".to_owned(), correct / n),
                ("probe_loss".to_owned(), loss / n),
                ("probe_positions".to_owned(), positions as f64),
            ]),
            selected: f64::NEG_INFINITY,
            test_predictions: None,
        }))
    }
}
