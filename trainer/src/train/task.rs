//! Task heads and losses as TorchDrug builds them (training.md §3.1, §2.5):
//!
//! - [`MultiLabelHead`] (`tasks.MultipleBinaryClassification`, EC / GO): an MLP on `graph_feature`,
//!   `num_mlp_layer` linear layers (hidden width = input width), ReLU between them and none after
//!   the last; var names `mlp.layers.{k}.{weight,bias}` as in the reference's task checkpoints.
//! - [`MspHead`] (FusionProt's `MSP` task): the node features at the mutated residues (mean over
//!   residues whose type differs, `+1e-10` in the denominator) of wild type and mutant,
//!   concatenated, through an MLP to one logit (one linear layer by default, as the reference's
//!   `num_mlp_layer = 1`; hidden width = input width otherwise).
//! - [`bce_loss`]: BCE-with-logits averaged over every (protein, term) entry (the per-task mean,
//!   then the unweighted mean over tasks, which is the same thing).

use tch::{Kind, Tensor, nn};

use crate::model::layers::{linear, segment_sum};

/// The EC / GO head.
#[derive(Debug)]
pub struct MultiLabelHead {
    layers: Vec<nn::Linear>,
}

impl MultiLabelHead {
    /// `root` is the var store's root: the layers go under `mlp.layers.{k}`.
    pub fn new(root: &nn::Path, input: usize, labels: usize, num_layers: usize) -> Self {
        let n = num_layers.max(1);
        let layers = (0..n)
            .map(|k| {
                let out = if k + 1 == n { labels } else { input };
                linear(root / "mlp" / "layers" / k, input, out)
            })
            .collect();
        Self { layers }
    }

    /// `[B, D]` → `[B, labels]` logits.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for (k, layer) in self.layers.iter().enumerate() {
            h = h.apply(layer);
            if k + 1 < self.layers.len() {
                h = h.relu();
            }
        }
        h
    }
}

/// The MSP head: an MLP over `[wild-type site ‖ mutant site]`.
#[derive(Debug)]
pub struct MspHead {
    mlp: MultiLabelHead,
}

impl MspHead {
    /// Node feature width `dim`; the layers are `mlp.layers.{k}` (the last `→ 1`).
    pub fn new(root: &nn::Path, dim: usize, num_layers: usize) -> Self {
        Self {
            mlp: MultiLabelHead::new(root, 2 * dim, 1, num_layers),
        }
    }

    /// `[B, 1]` logits from both passes' node features `[N, D]` (same residues, same order),
    /// `mutated` `[N]` (1.0 where the residue types differ) and `node2graph` `[N]`.
    pub fn forward(
        &self,
        wild_type: &Tensor,
        mutant: &Tensor,
        mutated: &Tensor,
        node2graph: &Tensor,
        batch: i64,
    ) -> Tensor {
        let m = mutated.to_kind(Kind::Float).unsqueeze(1);
        let count = segment_sum(&m, node2graph, batch) + 1e-10;
        let site = |x: &Tensor| segment_sum(&(x * &m), node2graph, batch) / &count;
        self.mlp
            .forward(&Tensor::cat(&[site(wild_type), site(mutant)], -1))
    }
}

/// A task's head.
#[derive(Debug)]
pub enum Head {
    Labels(MultiLabelHead),
    Pairs(MspHead),
}

/// BCE-with-logits, the mean over every entry of `[B, T]`.
pub fn bce_loss(logits: &Tensor, targets: &Tensor) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(targets, None, None, tch::Reduction::Mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msp_site_features_are_the_mutated_rows_and_zero_without_a_mutation() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let head = MspHead::new(&vs.root(), 2, 1);
        // Two proteins (3 and 2 residues); protein 0 mutated at residue 1, protein 1 not at all.
        let wt = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6., 7., 8., 9., 10.]).reshape([5, 2]);
        let mt = &wt * 2.0;
        let mutated = Tensor::from_slice(&[0f32, 1., 0., 0., 0.]);
        let node2graph = Tensor::from_slice(&[0i64, 0, 0, 1, 1]);
        let got = head.forward(&wt, &mt, &mutated, &node2graph, 2);
        let site = Tensor::from_slice(&[3f32, 4., 6., 8., 0., 0., 0., 0.]).reshape([2, 4]);
        let want = head.mlp.forward(&site);
        assert!(got.allclose(&want, 1e-6, 1e-6, false), "{got} vs {want}");
        assert_eq!(got.size(), [2, 1]);
    }

    #[test]
    fn the_multilabel_head_has_the_reference_names_and_shapes() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let head = MultiLabelHead::new(&vs.root(), 8, 3, 3);
        let mut names: Vec<(String, Vec<i64>)> = vs
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.size()))
            .collect();
        names.sort();
        assert_eq!(names[0], ("mlp.layers.0.bias".to_owned(), vec![8]));
        assert_eq!(names[5], ("mlp.layers.2.weight".to_owned(), vec![3, 8]));
        assert_eq!(
            head.forward(&Tensor::ones([4, 8], (Kind::Float, tch::Device::Cpu)))
                .size(),
            [4, 3]
        );
    }
}
