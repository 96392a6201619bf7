//! Small building blocks with PyTorch's parameter names, so a `state_dict` maps onto the var store
//! name for name.

use std::sync::{Arc, OnceLock};

use fusionprot_dist::Group;
use tch::{Kind, Tensor, nn};

/// What a SyncBatchNorm panics with when its collective fails (a peer died): the training step
/// catches it and returns [`crate::ModelError::Distributed`].
pub const SYNC_BATCH_NORM_FAILED: &str = "SyncBatchNorm failed";

/// `torch.nn.BatchNorm1d` with its five state_dict entries (`weight`, `bias`, `running_mean`,
/// `running_var`, `num_batches_tracked`). Training mode normalises with batch statistics and
/// updates the running ones (momentum 0.1, unbiased variance, as PyTorch); eval mode uses the
/// running ones.
///
/// In a data-parallel run it is torch's `SyncBatchNorm` (the reference converts every BatchNorm):
/// batch statistics over every rank's rows, through the process group set by
/// [`BatchNorm::synchronise`].
#[derive(Debug)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
    sync: OnceLock<Arc<Group>>,
}

impl BatchNorm {
    pub fn new(p: nn::Path, dim: i64) -> Self {
        BatchNorm {
            weight: p.var("weight", &[dim], nn::Init::Const(1.0)),
            bias: p.var("bias", &[dim], nn::Init::Const(0.0)),
            running_mean: p.zeros_no_train("running_mean", &[dim]),
            running_var: p.ones_no_train("running_var", &[dim]),
            num_batches_tracked: p.add(
                "num_batches_tracked",
                Tensor::zeros([], (Kind::Int64, p.device())),
                false,
            ),
            sync: OnceLock::new(),
        }
    }

    /// Makes training-mode forwards SyncBatchNorm over `group` (once; later calls are ignored).
    pub fn synchronise(&self, group: &Arc<Group>) {
        let _ = self.sync.set(Arc::clone(group));
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        if train {
            tch::no_grad(|| {
                let _ = self.num_batches_tracked.shallow_clone().f_add_scalar_(1);
            });
            if let Some(g) = self.sync.get().filter(|g| g.world_size() > 1) {
                return g
                    .sync_batch_norm(
                        x,
                        &self.weight,
                        &self.bias,
                        &self.running_mean,
                        &self.running_var,
                        0.1,
                        1e-5,
                    )
                    // The forward returns a tensor, not a Result: the step turns this panic
                    // (recognised by its text) into an error.
                    .unwrap_or_else(|e| panic!("{SYNC_BATCH_NORM_FAILED}: {e}"));
            }
        }
        Tensor::batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            0.1,
            1e-5,
            false,
        )
    }
}

pub fn linear(p: nn::Path, i: usize, o: usize) -> nn::Linear {
    nn::linear(p, i as i64, o as i64, Default::default())
}

pub fn layer_norm(p: nn::Path, dim: usize) -> nn::LayerNorm {
    nn::layer_norm(p, vec![dim as i64], Default::default())
}

/// Per-protein sum of node rows: `[N, d]` → `[B, d]`.
pub fn segment_sum(x: &Tensor, node2graph: &Tensor, batch: i64) -> Tensor {
    let d = x.size()[1];
    Tensor::zeros([batch, d], (x.kind(), x.device())).index_add(0, node2graph, x)
}

/// Per-protein mean of node rows.
pub fn segment_mean(x: &Tensor, node2graph: &Tensor, lengths: &Tensor) -> Tensor {
    let b = lengths.size()[0];
    segment_sum(x, node2graph, b) / lengths.to_kind(Kind::Float).unsqueeze(1)
}
