//! The four networks `fusionprot embed` builds, sharing ESM-2 and GearNet: FusionProt's fused
//! network (spec §1.4–1.5), ESM-2 alone, GearNet alone and ESM-GearNet serial fusion. Each
//! owns a var store whose names are the reference `state_dict` names.

use tch::{Device, Kind, Tensor, nn};

use super::batch::Batch;
use super::esm::{Esm2, alphabet};
use super::gearnet::{Edges, GearNet};
use super::layers::{BatchNorm, linear, segment_mean, segment_sum};
use crate::config::{ModelConfig, ModelKind};

/// What every model returns.
#[derive(Debug)]
pub struct Output {
    /// `[B, D]` per-protein embedding.
    pub graph_feature: Tensor,
    /// `[N, D]` per-residue embedding.
    pub node_feature: Tensor,
}

#[derive(Debug)]
struct FusionParts {
    structure_embed_linear: nn::Linear,
    embedding_batch_norm: BatchNorm,
    structure_token: Tensor,
    structure_linears: Vec<nn::Linear>,
    seq_linears: Vec<nn::Linear>,
    injections: Vec<usize>,
}

/// A model and the var store that holds its weights.
#[derive(Debug)]
pub struct Model {
    pub kind: ModelKind,
    pub config: ModelConfig,
    pub vs: nn::VarStore,
    esm: Option<Esm2>,
    gearnet: Option<GearNet>,
    fusion: Option<FusionParts>,
    /// Prefix of the ESM weights in the var store (`sequence_model.model.` or `model.`).
    pub esm_prefix: &'static str,
}

impl Model {
    /// Makes every BatchNorm a SyncBatchNorm over `group` (a data-parallel run); returns how
    /// many there are.
    pub fn synchronise_batch_norms(&self, group: &std::sync::Arc<fusionprot_dist::Group>) -> usize {
        let mut all: Vec<&BatchNorm> = self.gearnet.iter().flat_map(GearNet::batch_norms).collect();
        all.extend(self.fusion.iter().map(|f| &f.embedding_batch_norm));
        for bn in &all {
            bn.synchronise(group);
        }
        all.len()
    }

    /// Builds a randomly initialised model (PyTorch's default initialisations).
    ///
    /// # Errors
    /// An invalid configuration for this model kind.
    pub fn new(
        kind: ModelKind,
        config: &ModelConfig,
        device: Device,
    ) -> Result<Model, crate::config::ConfigError> {
        config.validate_for(kind)?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let e = config.esm.embed_dim;
        let (esm_scope, gear_scope, esm_prefix) = match kind {
            ModelKind::Fusionprot | ModelKind::EsmGearnet => (
                Some(&root / "sequence_model"),
                Some(&root / "structure_model"),
                "sequence_model.model.",
            ),
            ModelKind::Esm2 => (
                Some(&root / "sequence_model"),
                None,
                "sequence_model.model.",
            ),
            ModelKind::Gearnet => (None, Some(root.clone()), ""),
        };
        let esm = esm_scope.as_ref().map(|s| {
            let _mapping = s.add(
                "mapping",
                Tensor::from_slice(&alphabet::mapping()).to_device(device),
                false,
            );
            Esm2::new(&(s / "model"), &config.esm)
        });
        let (gear_in, relations) = match kind {
            ModelKind::Gearnet => (21, config.gearnet.num_relation),
            ModelKind::EsmGearnet => (e, config.gearnet.num_relation),
            ModelKind::Fusionprot => (e, config.fused_relations()),
            ModelKind::Esm2 => (0, 0),
        };
        let gearnet = gear_scope
            .as_ref()
            .map(|s| GearNet::new(s, &config.gearnet, gear_in, relations));
        let fusion = if kind == ModelKind::Fusionprot {
            let h = &config.gearnet.hidden_dims;
            let last = h.last().copied().unwrap_or(0);
            let token_init = nn::Init::Randn {
                mean: 0.0,
                stdev: config.fusion.token_init_std,
            };
            Some(FusionParts {
                structure_embed_linear: linear(&root / "structure_embed_linear", 21, e),
                embedding_batch_norm: BatchNorm::new(&root / "embedding_batch_norm", e as i64),
                structure_token: root.var("structure_token", &[e as i64], token_init),
                structure_linears: (0..h.len())
                    .map(|k| linear(&root / "structure_linears" / k, h[k], e))
                    .collect(),
                // seq_linears[k] feeds GearNet layer k (input width h[k-1]); [0] is never used
                // (quirk §6.3) but kept, with the reference's shape, so checkpoints load.
                seq_linears: (0..h.len())
                    .map(|k| {
                        let out = if k == 0 { last } else { h[k - 1] };
                        linear(&root / "seq_linears" / k, e, out)
                    })
                    .collect(),
                injections: config.injection_layers()?,
            })
        } else {
            None
        };
        Ok(Model {
            kind,
            config: config.clone(),
            vs,
            esm,
            gearnet,
            fusion,
            esm_prefix,
        })
    }

    /// Embedding width of `graph_feature` / `node_feature`.
    pub fn output_dim(&self) -> usize {
        let e = self.config.esm.embed_dim;
        let g = self.config.gearnet.output_dim();
        match self.kind {
            ModelKind::Fusionprot | ModelKind::EsmGearnet => e + g,
            ModelKind::Esm2 => e,
            ModelKind::Gearnet => g,
        }
    }

    /// Number of scalar parameters (trainable and not, buffers excluded).
    pub fn num_parameters(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .map(|n| n as i64)
            .sum()
    }

    /// Forward pass. `train` selects BatchNorm's batch statistics (and updates running ones).
    pub fn forward(&self, batch: &Batch, train: bool) -> Output {
        match self.kind {
            ModelKind::Fusionprot => self.forward_fusion(batch, train),
            ModelKind::Esm2 => {
                let esm_res = self.esm_residues(batch);
                Output {
                    graph_feature: segment_mean(
                        &esm_res,
                        &batch.node2graph,
                        &batch.lengths_tensor(),
                    ),
                    node_feature: esm_res,
                }
            }
            ModelKind::Gearnet => {
                let g = self.gear();
                let node = g.forward(&batch.edges, &batch.onehot, train);
                Output {
                    graph_feature: segment_sum(&node, &batch.node2graph, batch.num_proteins()),
                    node_feature: node,
                }
            }
            ModelKind::EsmGearnet => {
                let esm_res = self.esm_residues(batch);
                let gear = self.gear().forward(&batch.edges, &esm_res, train);
                combine(batch, &esm_res, &gear)
            }
        }
    }

    /// The ESM-2 part, for models that have one.
    pub fn esm(&self) -> Option<&Esm2> {
        self.esm.as_ref()
    }

    fn gear(&self) -> &GearNet {
        self.gearnet
            .as_ref()
            .unwrap_or_else(|| unreachable!("model kind has GearNet"))
    }

    fn esm_model(&self) -> &Esm2 {
        self.esm
            .as_ref()
            .unwrap_or_else(|| unreachable!("model kind has ESM"))
    }

    /// ESM final hidden states of every residue, `[N, E]`.
    fn esm_residues(&self, batch: &Batch) -> Tensor {
        let esm = self.esm_model();
        let (tokens, _, rows) = batch.esm_tokens(None);
        let x = esm.forward(&tokens);
        let e = x.size()[2];
        x.view([-1, e]).index_select(0, &rows)
    }

    fn forward_fusion(&self, batch: &Batch, train: bool) -> Output {
        let esm = self.esm_model();
        let gear = self.gear();
        let f = self
            .fusion
            .as_ref()
            .unwrap_or_else(|| unreachable!("fusion parts"));
        let n = batch.num_residues();
        let b = batch.num_proteins();
        let dev = batch.device();
        let (tokens, token_col, rows) = batch.esm_tokens(Some(self.config.fusion.token_position));
        let token_col = token_col.unwrap_or_else(|| unreachable!("token column requested"));
        let batch_index = Tensor::arange(b, (Kind::Int64, dev));
        let at = [
            Some(batch_index.shallow_clone()),
            Some(token_col.shallow_clone()),
        ];

        // ESM input with the token written into its column (after token-dropout scaling).
        let e = self.config.esm.embed_dim as i64;
        let t0 = f.structure_token.unsqueeze(0).expand([b, e], false);
        let mut x = esm.embed(&tokens).index_put(&at, &t0, false);
        let ctx = esm.context(&tokens.padding);

        // G' = G ∪ token nodes N..N+B-1, linked both ways to every residue of their protein.
        let rel = self.config.token_relation_id();
        let residues = Tensor::arange(n, (Kind::Int64, dev));
        let token_node = &batch.node2graph + n;
        let token_rel = Tensor::full([n], rel, (Kind::Int64, dev));
        let edges = Edges {
            src: Tensor::cat(&[&batch.edges.src, &token_node, &residues], 0),
            dst: Tensor::cat(&[&batch.edges.dst, &residues, &token_node], 0),
            rel: Tensor::cat(&[&batch.edges.rel, &token_rel, &token_rel], 0),
            num_nodes: n + b,
        };

        let emb = f
            .embedding_batch_norm
            .forward(&batch.onehot.apply(&f.structure_embed_linear), train);
        let mut hs = Tensor::cat(&[emb, t0.shallow_clone()], 0);
        let mut hiddens = Vec::with_capacity(gear.num_layers());
        let mut k = 0usize;
        for l in 0..esm.num_layers() {
            x = esm.layer(l, &x, &ctx);
            if f.injections.get(k) == Some(&l) {
                let z = x.index(&at);
                let token_in = if k == 0 {
                    z
                } else {
                    z.apply(&f.seq_linears[k])
                };
                let input = Tensor::cat(&[hs.narrow(0, 0, n), token_in], 0);
                let h = gear.layer(k, &edges, &input, train);
                let back = h.narrow(0, n, b).apply(&f.structure_linears[k]);
                x = x.index_put(&at, &back, false);
                hiddens.push(h.shallow_clone());
                hs = h;
                k += 1;
            }
        }
        let x = esm.final_norm(&x);
        let esm_res = x.view([-1, e]).index_select(0, &rows);
        let gear_all = gear.node_feature(&hiddens);
        combine(batch, &esm_res, &gear_all.narrow(0, 0, n))
    }

    /// Names and shapes of every tensor the model's state_dict holds, in name order.
    pub fn state_shapes(&self) -> Vec<(String, Vec<i64>)> {
        let mut v: Vec<(String, Vec<i64>)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, t)| (k, t.size()))
            .collect();
        v.sort();
        v
    }
}

/// `node = esm ‖ gearnet`, `graph = mean(esm) ‖ sum(gearnet)` per protein.
fn combine(batch: &Batch, esm_res: &Tensor, gear: &Tensor) -> Output {
    let mean = segment_mean(esm_res, &batch.node2graph, &batch.lengths_tensor());
    let sum = segment_sum(gear, &batch.node2graph, batch.num_proteins());
    Output {
        graph_feature: Tensor::cat(&[mean, sum], -1),
        node_feature: Tensor::cat(&[esm_res, gear], -1),
    }
}
