//! Multiview Contrast (TorchDrug `models.MultiviewContrast`, FusionProt's pre-training; spec §4,
//! training.md §3.3) as an [`Objective`]: two views of every protein of a micro-batch
//! ([`super::views`]), each its own forward pass of the model (BatchNorm statistics per view), a
//! projection MLP shared by both (`mlp.layers.{0,1}`: two layers of the model's output width,
//! ReLU between), and one-directional InfoNCE on cosine similarity over τ: with
//! `S_ij = cos(x_i, y_j) / τ`, the mutual information is `mean_i(S_ii − logsumexp_j S_ij)` and the
//! loss its negative; the negatives are the other proteins of the micro-batch.

use std::collections::VecDeque;
use std::sync::Arc;

use tch::{Kind, Tensor};

use super::examples::Example;
use super::objective::{Draw, Loss, MicroBatch, Objective};
use super::pretrain_data::Proteins;
use super::task::MultiLabelHead;
use super::views::{ViewRule, ViewSpec, apply, draw_views};
use crate::error::ModelError;
use crate::model::{Batch, Model, ProteinGraph};
use crate::store::GraphSource;

/// TorchDrug's `MultiviewContrast` on our models.
#[derive(Debug)]
pub struct MultiviewContrast {
    pub proteins: Proteins,
    /// The projection head (`mlp.layers.k`).
    pub head: MultiLabelHead,
    pub rule: ViewRule,
    /// InfoNCE temperature.
    pub tau: f64,
    pub device: tch::Device,
    /// Views to use instead of drawing them, one pair per micro-batch in order (parity tests).
    pub given: VecDeque<[Vec<ViewSpec>; 2]>,
}

impl MultiviewContrast {
    /// The projections `[x, y]` of the two views of `graphs` cut as `views` (one forward pass of
    /// the model per view, in train mode: BatchNorm statistics are the view's own).
    ///
    /// # Errors
    /// A view that does not fit its protein, or a view count that is not the protein count.
    pub fn project(
        &self,
        model: &Model,
        graphs: &[ProteinGraph],
        views: &[Vec<ViewSpec>; 2],
    ) -> Result<[Tensor; 2], ModelError> {
        let one = |v: &Vec<ViewSpec>| -> Result<Tensor, ModelError> {
            if v.len() != graphs.len() {
                return Err(ModelError::Input(format!(
                    "{} views for {} proteins",
                    v.len(),
                    graphs.len()
                )));
            }
            let cut: Vec<ProteinGraph> = graphs
                .iter()
                .zip(v)
                .map(|(g, spec)| apply(g, spec))
                .collect::<Result<_, _>>()?;
            let out = model.forward(&Batch::new(&cut, self.device), true);
            Ok(self.head.forward(&out.graph_feature))
        };
        Ok([one(&views[0])?, one(&views[1])?])
    }

    /// The two views' loss and mutual information for `graphs` cut as `views`, the model in
    /// train mode.
    ///
    /// # Errors
    /// As [`Self::project`].
    pub fn loss_of_views(
        &self,
        model: &Model,
        graphs: &[ProteinGraph],
        views: &[Vec<ViewSpec>; 2],
    ) -> Result<(Tensor, f64), ModelError> {
        let [x, y] = self.project(model, graphs, views)?;
        let (loss, mi) = info_nce(&x, &y, self.tau);
        Ok((loss, mi.double_value(&[])))
    }
}

/// InfoNCE as TorchDrug computes it: `F.cosine_similarity` (each vector divided by its norm,
/// clamped at 1e-8, then the product summed) over τ; returns (loss, mutual information).
pub fn info_nce(x: &Tensor, y: &Tensor, tau: f64) -> (Tensor, Tensor) {
    let unit = |v: &Tensor| {
        let norm = v.norm_scalaropt_dim(2, [-1i64], true).clamp_min(1e-8);
        v / norm
    };
    let score =
        (unit(x).unsqueeze(1) * unit(y).unsqueeze(0)).sum_dim_intlist(-1, false, Kind::Float) / tau;
    let positive = score.diagonal(0, 0, 1);
    let mi = (positive - score.logsumexp(&[-1i64][..], false)).mean(Kind::Float);
    (mi.neg(), mi)
}

impl Objective for MultiviewContrast {
    fn name(&self) -> &str {
        "multiview-contrast"
    }

    fn examples(&self) -> &[Example] {
        &self.proteins.examples
    }

    fn epoch_batches(&self, epoch: usize, micro_batch: usize) -> Vec<Vec<usize>> {
        self.proteins.epoch_batches(epoch, micro_batch)
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
        let views = match self.given.pop_front() {
            Some(v) => v,
            None => [
                draw_views(batch.graphs, draw, 0, &self.rule),
                draw_views(batch.graphs, draw, 1, &self.rule),
            ],
        };
        let (loss, mi) = self.loss_of_views(model, batch.graphs, &views)?;
        Ok(Loss {
            loss,
            scalars: vec![("mutual_information", mi)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_views_give_the_log_of_the_batch_size_at_most() {
        // Orthogonal unit vectors: S = I/τ; mi = 1/τ − log(e^{1/τ} + 3) for a batch of 4.
        let x = Tensor::eye(4, (Kind::Float, tch::Device::Cpu));
        let (loss, mi) = info_nce(&x, &x, 0.07);
        let s: f64 = 1.0 / 0.07;
        let want = s - (s.exp() + 3.0).ln();
        assert!((mi.double_value(&[]) - want).abs() < 1e-5);
        assert!((loss.double_value(&[]) + want).abs() < 1e-5);
        // Scale does not matter (cosine), a zero vector does not divide by zero.
        let (_, mi2) = info_nce(&(&x * 3.0), &x, 0.07);
        assert!((mi2.double_value(&[]) - want).abs() < 1e-5);
        let z = Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu));
        let (loss, _) = info_nce(&z, &z, 0.07);
        assert!(loss.double_value(&[]).is_finite());
    }
}
