//! ESM-2 (spec §1.2): token embedding with token-dropout scaling, pre-LN transformer blocks with
//! rotary self-attention, final layer norm; the LM and contact heads' weights are held (so
//! checkpoints load strictly) and the LM head can be run on request. Parameter names are
//! fair-esm's, so `sequence_model.model.*` of a FusionProt checkpoint maps onto it directly.

use tch::{Kind, Tensor, nn};

use super::layers::{layer_norm, linear};
use crate::config::EsmConfig;

/// The ESM-1b alphabet used by ESM-2 (fair-esm `Alphabet.from_architecture("ESM-1b")`).
pub mod alphabet {
    pub const CLS: i64 = 0;
    pub const PAD: i64 = 1;
    pub const EOS: i64 = 2;
    pub const MASK: i64 = 32;
    pub const SIZE: i64 = 33;
    /// TorchDrug residue ids (G A S P V T C I L N D Q K E M H F R Y W) → ESM tokens.
    pub const RESIDUE_TO_TOKEN: [i64; 20] = [
        6, 5, 8, 14, 7, 11, 23, 12, 4, 17, 13, 16, 15, 9, 20, 21, 18, 10, 19, 22,
    ];

    /// TorchDrug's 33-entry mapping buffer: entries past 19 are −1, "pass the id through" (so a
    /// task can put `<mask>` = 32 straight into `residue_type`).
    pub fn mapping() -> Vec<i64> {
        let mut m = vec![-1; SIZE as usize];
        m[..20].copy_from_slice(&RESIDUE_TO_TOKEN);
        m
    }

    /// The ESM token of a residue id (ids ≥ 20 pass through, as in TorchDrug).
    pub fn token(residue_type: i64) -> i64 {
        usize::try_from(residue_type)
            .ok()
            .and_then(|i| RESIDUE_TO_TOKEN.get(i).copied())
            .unwrap_or(residue_type)
    }
}

#[derive(Debug)]
struct Attention {
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    out: nn::Linear,
}

#[derive(Debug)]
struct Block {
    attn: Attention,
    attn_ln: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    final_ln: nn::LayerNorm,
}

#[derive(Debug)]
struct LmHead {
    dense: nn::Linear,
    layer_norm: nn::LayerNorm,
    bias: Tensor,
}

/// ESM-2 of any size.
#[derive(Debug)]
pub struct Esm2 {
    pub config: EsmConfig,
    embed_tokens: Tensor,
    blocks: Vec<Block>,
    emb_layer_norm_after: nn::LayerNorm,
    lm_head: LmHead,
    inv_freq: Tensor,
}

/// Padded token ids and what the model needs to know about them.
#[derive(Debug)]
pub struct Tokens {
    /// `[B, T]` token ids.
    pub ids: Tensor,
    /// `[B, T]` true where a column is padding (no attention to it).
    pub padding: Tensor,
}

impl Esm2 {
    pub fn new(p: &nn::Path, config: &EsmConfig) -> Self {
        let e = config.embed_dim;
        let blocks = (0..config.layers)
            .map(|i| {
                let l = p / "layers" / i;
                let a = &l / "self_attn";
                Block {
                    attn: Attention {
                        q: linear(&a / "q_proj", e, e),
                        k: linear(&a / "k_proj", e, e),
                        v: linear(&a / "v_proj", e, e),
                        out: linear(&a / "out_proj", e, e),
                    },
                    attn_ln: layer_norm(&l / "self_attn_layer_norm", e),
                    fc1: linear(&l / "fc1", e, config.ffn()),
                    fc2: linear(&l / "fc2", config.ffn(), e),
                    final_ln: layer_norm(&l / "final_layer_norm", e),
                }
            })
            .collect();
        let embed_tokens = (p / "embed_tokens").var(
            "weight",
            &[alphabet::SIZE, e as i64],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        // nn.Embedding(padding_idx=1) starts with a zero padding row.
        tch::no_grad(|| {
            let _ = embed_tokens.get(alphabet::PAD).f_zero_();
        });
        let lm = p / "lm_head";
        let lm_head = LmHead {
            dense: linear(&lm / "dense", e, e),
            layer_norm: layer_norm(&lm / "layer_norm", e),
            bias: lm.zeros("bias", &[alphabet::SIZE]),
        };
        // contact_head.regression: held for strict loading, computed only by contact prediction.
        let _ = linear(
            p / "contact_head" / "regression",
            config.layers * config.heads,
            1,
        );
        let hd = config.head_dim() as i64;
        let inv_freq = (Tensor::arange_start_step(0, hd, 2, (Kind::Float, p.device())) / hd as f64
            * (10000f64).ln())
        .exp()
        .reciprocal();
        Esm2 {
            config: config.clone(),
            embed_tokens,
            blocks,
            emb_layer_norm_after: layer_norm(p / "emb_layer_norm_after", e),
            lm_head,
            inv_freq,
        }
    }

    /// Token embedding with ESM-2's token-dropout rescaling (always applied, also at inference):
    /// `<mask>` rows zeroed, then × (1 − 0.12) / (1 − observed mask ratio); padding rows zeroed.
    pub fn embed(&self, tokens: &Tokens) -> Tensor {
        let x = Tensor::embedding(&self.embed_tokens, &tokens.ids, alphabet::PAD, false, false);
        // By token id, as fair-esm does: a fusion-token placeholder (padding id, but attended
        // to) is neither counted in the mask ratio nor kept; the caller writes the token there.
        let not_pad = tokens.ids.ne(alphabet::PAD);
        let x = if self.config.token_dropout {
            let is_mask = tokens.ids.eq(alphabet::MASK);
            let src_len = not_pad.sum_dim_intlist(-1, false, Kind::Float);
            let ratio = is_mask.sum_dim_intlist(-1, false, Kind::Float) / src_len;
            let scale = (ratio.neg() + 1.0).reciprocal() * (1.0 - 0.15 * 0.8);
            x.masked_fill(&is_mask.unsqueeze(-1), 0.0) * scale.view([-1, 1, 1])
        } else {
            x
        };
        let kind = x.kind();
        x * not_pad.unsqueeze(-1).to_kind(kind)
    }

    /// cos and sin tables for `t` positions, `[t, head_dim]`.
    fn rotary(&self, t: i64) -> (Tensor, Tensor) {
        let pos = Tensor::arange(t, (Kind::Float, self.inv_freq.device()));
        let freqs = pos.outer(&self.inv_freq);
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        (emb.cos(), emb.sin())
    }

    fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
        let half = x.size()[3] / 2;
        let x1 = x.narrow(3, 0, half);
        let x2 = x.narrow(3, half, half);
        let rotated = Tensor::cat(&[&x2.neg(), &x1], -1);
        x * cos + rotated * sin
    }

    /// Prepares the per-forward constants: rotary tables and the attention mask.
    pub fn context(&self, padding: &Tensor) -> LayerContext {
        let t = padding.size()[1];
        let (cos, sin) = self.rotary(t);
        // [B, 1, 1, T]: true = attend.
        let attend = padding.logical_not().unsqueeze(1).unsqueeze(1);
        LayerContext { cos, sin, attend }
    }

    /// Block `i` on `x` `[B, T, E]`.
    pub fn layer(&self, i: usize, x: &Tensor, ctx: &LayerContext) -> Tensor {
        let b = &self.blocks[i];
        let (bsz, t, e) = x.size3().unwrap_or((0, 0, 0));
        let h = self.config.heads as i64;
        let d = e / h;
        let y = x.apply(&b.attn_ln);
        let split = |z: Tensor| z.view([bsz, t, h, d]).transpose(1, 2);
        let q = split(y.apply(&b.attn.q) * (d as f64).powf(-0.5));
        let k = split(y.apply(&b.attn.k));
        let v = split(y.apply(&b.attn.v));
        let q = Self::rotate(&q, &ctx.cos, &ctx.sin);
        let k = Self::rotate(&k, &ctx.cos, &ctx.sin);
        let a = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            Some(&ctx.attend),
            0.0,
            false,
            1.0,
            false,
        );
        let a = a.transpose(1, 2).reshape([bsz, t, e]).apply(&b.attn.out);
        let x = x + a;
        let y = x
            .apply(&b.final_ln)
            .apply(&b.fc1)
            .gelu("none")
            .apply(&b.fc2);
        x + y
    }

    pub fn final_norm(&self, x: &Tensor) -> Tensor {
        x.apply(&self.emb_layer_norm_after)
    }

    /// The whole encoder: `[B, T]` tokens → final hidden states `[B, T, E]` (after
    /// `emb_layer_norm_after`).
    pub fn forward(&self, tokens: &Tokens) -> Tensor {
        let ctx = self.context(&tokens.padding);
        let mut x = self.embed(tokens);
        for i in 0..self.blocks.len() {
            x = self.layer(i, &x, &ctx);
        }
        self.final_norm(&x)
    }

    /// Masked-LM logits from final hidden states (the LM head, tied to the token embedding).
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        let h = hidden
            .apply(&self.lm_head.dense)
            .gelu("none")
            .apply(&self.lm_head.layer_norm);
        h.matmul(&self.embed_tokens.tr()) + &self.lm_head.bias
    }

    pub fn num_layers(&self) -> usize {
        self.blocks.len()
    }
}

/// Per-forward constants shared by every block.
#[derive(Debug)]
pub struct LayerContext {
    cos: Tensor,
    sin: Tensor,
    attend: Tensor,
}
