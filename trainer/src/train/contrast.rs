//! Multiview Contrast (TorchDrug `models.MultiviewContrast`, FusionProt's pre-training; spec §4,
//! training.md §3.3) as an [`Objective`]: two views of every protein of a micro-batch
//! ([`super::views`]), each its own forward pass of the model (BatchNorm statistics per view), a
//! projection MLP shared by both (`mlp.layers.{0,1}`: two layers of the model's output width,
//! ReLU between), and one-directional InfoNCE on cosine similarity over τ: with
//! `S_ij = cos(x_i, y_j) / τ`, the mutual information is `mean_i(S_ii − logsumexp_j S_ij)` and the
//! loss its negative; the negatives are the other proteins of the micro-batch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tch::{Kind, Tensor};

use super::examples::Example;
use super::objective::{Draw, EvalOutcome, Loss, MicroBatch, Objective};
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
    pub given: VecDeque<Given>,
    /// The proteins (indices into `proteins.examples`) probed at each checkpoint; none: no probe.
    pub probe: Vec<usize>,
    /// The run's seed: the probe's views are drawn from it alone, the same at every checkpoint.
    pub seed: i64,
}

/// Proteins per forward pass of the probe.
const PROBE_CHUNK: usize = 16;

/// Two views given instead of drawn (a reference's draws cannot be re-generated).
#[derive(Debug, Clone)]
pub enum Given {
    /// Crop windows and masked edge positions per protein, cut here.
    Windows([Vec<ViewSpec>; 2]),
    /// The finished view graphs (kept residues, edges in the given order), one per protein.
    Graphs([Vec<ProteinGraph>; 2]),
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
        let cut = |v: &Vec<ViewSpec>| -> Result<Vec<ProteinGraph>, ModelError> {
            if v.len() != graphs.len() {
                return Err(ModelError::Input(format!(
                    "{} views for {} proteins",
                    v.len(),
                    graphs.len()
                )));
            }
            graphs
                .iter()
                .zip(v)
                .map(|(g, spec)| apply(g, spec))
                .collect()
        };
        self.project_graphs(model, &[cut(&views[0])?, cut(&views[1])?])
    }

    /// The projections of two finished views (one forward pass each, train mode).
    ///
    /// # Errors
    /// Views of different protein counts, or an empty view.
    pub fn project_graphs(
        &self,
        model: &Model,
        views: &[Vec<ProteinGraph>; 2],
    ) -> Result<[Tensor; 2], ModelError> {
        if views[0].len() != views[1].len() || views[0].is_empty() {
            return Err(ModelError::Input(format!(
                "two views of {} and {} proteins",
                views[0].len(),
                views[1].len()
            )));
        }
        if let Some(g) = views.iter().flatten().find(|g| g.is_empty()) {
            return Err(ModelError::Input(format!("{}: an empty view", g.id)));
        }
        let one = |cut: &Vec<ProteinGraph>| {
            let out = model.forward(&Batch::new(cut, self.device), true);
            self.head.forward(&out.graph_feature)
        };
        Ok([one(&views[0]), one(&views[1])])
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

/// How well the projections of one view retrieve the other: over `n` proteins, the positive
/// pair's rank among the `n` candidates (1 the best, `(n + 1) / 2` chance), the share ranked
/// first, and InfoNCE over the whole set.
pub fn retrieval(x: &Tensor, y: &Tensor, tau: f64) -> BTreeMap<String, f64> {
    let (loss, _) = info_nce(x, y, tau);
    let unit = |v: &Tensor| v / v.norm_scalaropt_dim(2, [-1i64], true).clamp_min(1e-8);
    let score = unit(x).matmul(&unit(y).tr());
    let positive = score.diagonal(0, 0, 1).unsqueeze(1);
    // Ties count against the positive: a collapsed representation ranks last, not first.
    let rank = score
        .ge_tensor(&positive)
        .sum_dim_intlist(1, false, Kind::Float);
    let n = x.size()[0] as f64;
    BTreeMap::from([
        (
            "probe_rank".to_owned(),
            rank.mean(Kind::Float).double_value(&[]),
        ),
        (
            "probe_top1".to_owned(),
            rank.le(1.0)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[]),
        ),
        ("probe_loss".to_owned(), loss.double_value(&[])),
        ("probe_proteins".to_owned(), n),
    ])
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
        let [x, y] = match self.given.pop_front() {
            Some(Given::Windows(v)) => self.project(model, batch.graphs, &v)?,
            Some(Given::Graphs(v)) => self.project_graphs(model, &v)?,
            None => self.project(
                model,
                batch.graphs,
                &[
                    draw_views(batch.graphs, draw, 0, &self.rule),
                    draw_views(batch.graphs, draw, 1, &self.rule),
                ],
            )?,
        };
        let (loss, mi) = info_nce(&x, &y, self.tau);
        let mi = mi.double_value(&[]);
        Ok(Loss {
            loss,
            scalars: vec![("mutual_information", mi)],
        })
    }

    /// The probe: two views of the probe proteins drawn from the seed alone, in eval mode, and
    /// how well one retrieves the other ([`retrieval`]), logged as `train/probe_*`.
    fn evaluate(&mut self, model: &Model) -> Result<Option<EvalOutcome>, ModelError> {
        if self.probe.len() < 2 {
            return Ok(None);
        }
        let graphs = self.proteins.graphs(&self.probe)?;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        tch::no_grad(|| -> Result<(), ModelError> {
            for (k, chunk) in graphs.chunks(PROBE_CHUNK).enumerate() {
                let draw = Draw {
                    seed: self.seed,
                    epoch: usize::MAX,
                    step: 0,
                    micro: k,
                };
                let views = [0, 1].map(|v| {
                    let specs = draw_views(chunk, draw, v, &self.rule);
                    chunk
                        .iter()
                        .zip(&specs)
                        .map(|(g, s)| apply(g, s))
                        .collect::<Result<Vec<_>, _>>()
                });
                let [one, two] = views;
                for (cut, out) in [(one?, &mut xs), (two?, &mut ys)] {
                    let f = model.forward(&Batch::new(&cut, self.device), false);
                    out.push(self.head.forward(&f.graph_feature));
                }
            }
            Ok(())
        })?;
        let train = retrieval(&Tensor::cat(&xs, 0), &Tensor::cat(&ys, 0), self.tau);
        Ok(Some(EvalOutcome {
            valid: BTreeMap::new(),
            test: BTreeMap::new(),
            train,
            selected: f64::NEG_INFINITY,
            test_predictions: None,
        }))
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

    #[test]
    fn retrieval_ranks_the_positive_among_all_candidates() {
        let x = Tensor::eye(4, (Kind::Float, tch::Device::Cpu));
        let r = retrieval(&x, &x, 0.07);
        assert_eq!((r["probe_rank"], r["probe_top1"]), (1.0, 1.0));
        // y = x rolled by one: each positive is orthogonal while another candidate is parallel.
        let y = x.roll([1i64], [0i64]);
        let r = retrieval(&x, &y, 0.07);
        assert!(r["probe_rank"] > 1.0 && r["probe_top1"] == 0.0, "{r:?}");
        // A collapsed representation (every vector equal) ranks last, not first.
        let c = Tensor::ones([4, 3], (Kind::Float, tch::Device::Cpu));
        let r = retrieval(&c, &c, 0.07);
        assert_eq!((r["probe_rank"], r["probe_top1"]), (4.0, 0.0));
    }
}
