//! GearNet (spec §1.3): relational graph convolution with sum aggregation per (node, relation),
//! a BatchNorm inside each conv (before ReLU), the short-cut when shapes agree, a second
//! BatchNorm after it, hidden layers concatenated. Parameter names are TorchDrug's.

use tch::{Kind, Tensor, nn};

use super::layers::{BatchNorm, linear};
use crate::config::GearNetConfig;

/// Edges of a batch as three `[E]` int64 tensors; messages flow `src → dst`.
#[derive(Debug)]
pub struct Edges {
    pub src: Tensor,
    pub dst: Tensor,
    pub rel: Tensor,
    pub num_nodes: i64,
}

impl Edges {
    pub fn to_device(&self, device: tch::Device) -> Edges {
        Edges {
            src: self.src.to_device(device),
            dst: self.dst.to_device(device),
            rel: self.rel.to_device(device),
            num_nodes: self.num_nodes,
        }
    }
}

#[derive(Debug)]
struct Conv {
    linear: nn::Linear,
    self_loop: nn::Linear,
    batch_norm: Option<BatchNorm>,
    in_dim: i64,
}

#[derive(Debug)]
pub struct GearNet {
    pub config: GearNetConfig,
    num_relation: i64,
    convs: Vec<Conv>,
    batch_norms: Vec<Option<BatchNorm>>,
}

impl GearNet {
    /// Every BatchNorm of the encoder (per-layer and the interleaved ones).
    pub fn batch_norms(&self) -> Vec<&BatchNorm> {
        self.convs
            .iter()
            .filter_map(|c| c.batch_norm.as_ref())
            .chain(self.batch_norms.iter().flatten())
            .collect()
    }

    /// `input_dim` is 21 for GearNet alone and the ESM width for the fused models;
    /// `num_relation` may exceed the config's by one (a separate token relation).
    pub fn new(
        p: &nn::Path,
        config: &GearNetConfig,
        input_dim: usize,
        num_relation: usize,
    ) -> Self {
        let mut dims = vec![input_dim];
        dims.extend(&config.hidden_dims);
        let mut convs = Vec::new();
        let mut batch_norms = Vec::new();
        for k in 0..config.hidden_dims.len() {
            let l = p / "layers" / k;
            let (i, o) = (dims[k], dims[k + 1]);
            convs.push(Conv {
                linear: linear(&l / "linear", num_relation * i, o),
                self_loop: linear(&l / "self_loop", i, o),
                batch_norm: config
                    .batch_norm
                    .then(|| BatchNorm::new(&l / "batch_norm", o as i64)),
                in_dim: i as i64,
            });
            batch_norms.push(
                config
                    .batch_norm
                    .then(|| BatchNorm::new(p / "batch_norms" / k, o as i64)),
            );
        }
        GearNet {
            config: config.clone(),
            num_relation: num_relation as i64,
            convs,
            batch_norms,
        }
    }

    pub fn num_layers(&self) -> usize {
        self.convs.len()
    }

    /// Layer `k` on node states `h` `[N, d_in]` → `[N, d_out]`.
    pub fn layer(&self, k: usize, edges: &Edges, h: &Tensor, train: bool) -> Tensor {
        let c = &self.convs[k];
        let r = self.num_relation;
        let n = edges.num_nodes;
        // U[v, r] = Σ_{(u → v, r)} h[u], laid out node-major: index v·R + r.
        let idx = &edges.dst * r + &edges.rel;
        let msg = h.index_select(0, &edges.src);
        let agg = Tensor::zeros([n * r, c.in_dim], (h.kind(), h.device()))
            .index_add(0, &idx, &msg)
            .view([n, r * c.in_dim]);
        let mut out = agg.apply(&c.linear) + h.apply(&c.self_loop);
        if let Some(bn) = &c.batch_norm {
            out = bn.forward(&out, train);
        }
        let out = out.relu();
        // Not `+=`: ReLU's backward needs its output unmodified.
        let out = if self.config.short_cut && out.size() == h.size() {
            out + h
        } else {
            out
        };
        match &self.batch_norms[k] {
            Some(bn) => bn.forward(&out, train),
            None => out,
        }
    }

    /// All layers; returns the node feature (hidden states concatenated, or the last one).
    pub fn forward(&self, edges: &Edges, input: &Tensor, train: bool) -> Tensor {
        let mut hiddens = Vec::with_capacity(self.convs.len());
        let mut h = input.shallow_clone();
        for k in 0..self.convs.len() {
            h = self.layer(k, edges, &h, train);
            hiddens.push(h.shallow_clone());
        }
        self.node_feature(&hiddens)
    }

    pub fn node_feature(&self, hiddens: &[Tensor]) -> Tensor {
        if self.config.concat_hidden {
            Tensor::cat(hiddens, -1)
        } else {
            hiddens
                .last()
                .map(Tensor::shallow_clone)
                .unwrap_or_else(|| Tensor::zeros([0], (Kind::Float, tch::Device::Cpu)))
        }
    }
}
