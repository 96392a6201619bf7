//! A batch of protein graphs as tensors: residue types, one-hot features, the graph's edges with
//! global node indices, and the ESM token rows built from them.

use tch::{Device, Kind, Tensor};

use super::esm::{Tokens, alphabet};
use super::gearnet::Edges;
use crate::config::TokenPosition;

/// A residue hidden from the model (residue-type prediction): its `onehot` index, a row of zeros
/// for GearNet (TorchDrug zeroes `residue_feature`), and its `residue_type`, ESM's `<mask>` (the
/// mapping passes ids past 19 through, as TorchDrug's).
pub const ONEHOT_MASKED: i64 = 21;
pub const RESIDUE_MASKED: i64 = super::esm::alphabet::MASK;

/// One protein as the pipeline's tables describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProteinGraph {
    pub id: String,
    /// TorchDrug residue ids (0..20; non-standard residues are 0 = GLY, as the pipeline writes).
    pub residue_type: Vec<i64>,
    /// One-hot index (0..21; 20 = unknown residue).
    pub onehot: Vec<i64>,
    /// `(src, dst, relation)` within the protein, 0-based residue indices.
    pub edges: Vec<(i32, i32, i8)>,
}

impl ProteinGraph {
    pub fn len(&self) -> usize {
        self.residue_type.len()
    }

    pub fn is_empty(&self) -> bool {
        self.residue_type.is_empty()
    }

    /// The first `max` residues and the edges among them (spec §6.4: truncate up front so ESM
    /// and GearNet see the same residues).
    pub fn truncated(&self, max: usize) -> ProteinGraph {
        if self.len() <= max {
            return self.clone();
        }
        let m = max as i32;
        ProteinGraph {
            id: self.id.clone(),
            residue_type: self.residue_type[..max].to_vec(),
            onehot: self.onehot[..max].to_vec(),
            edges: self
                .edges
                .iter()
                .copied()
                .filter(|(s, d, _)| *s < m && *d < m)
                .collect(),
        }
    }
}

impl ProteinGraph {
    /// Residues `start .. start + len` (clamped to the protein) and the edges among them,
    /// renumbered from 0: MSP's window (TorchDrug's `TruncateProteinPair`, which cuts the same
    /// residues from both graphs of a pair).
    pub fn window(&self, start: usize, len: usize) -> ProteinGraph {
        let start = start.min(self.len());
        let end = start.saturating_add(len).min(self.len());
        if start == 0 && end == self.len() {
            return self.clone();
        }
        let (s, e) = (start as i32, end as i32);
        ProteinGraph {
            id: self.id.clone(),
            residue_type: self.residue_type[start..end].to_vec(),
            onehot: self.onehot[start..end].to_vec(),
            edges: self
                .edges
                .iter()
                .filter(|(a, b, _)| (s..e).contains(a) && (s..e).contains(b))
                .map(|&(a, b, r)| (a - s, b - s, r))
                .collect(),
        }
    }
}

/// Proteins packed for a forward pass.
#[derive(Debug)]
pub struct Batch {
    pub ids: Vec<String>,
    pub lengths: Vec<i64>,
    /// `[N]` TorchDrug residue ids.
    pub residue_type: Tensor,
    /// `[N, 21]` float one-hot.
    pub onehot: Tensor,
    /// `[N]` protein index of each residue node.
    pub node2graph: Tensor,
    /// The residue graph (N nodes, relations as the pipeline wrote them).
    pub edges: Edges,
    device: Device,
}

impl Batch {
    /// Packs proteins (already truncated by the caller) on `device`.
    /// `proteins` may be owned graphs or references (a training loop batches without copying).
    pub fn new<P: std::borrow::Borrow<ProteinGraph>>(proteins: &[P], device: Device) -> Batch {
        let lengths: Vec<i64> = proteins.iter().map(|p| p.borrow().len() as i64).collect();
        let mut residue_type = Vec::new();
        let mut onehot = Vec::new();
        let mut node2graph = Vec::new();
        let (mut src, mut dst, mut rel) = (Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0i64;
        for (b, p) in proteins.iter().enumerate() {
            let p = p.borrow();
            residue_type.extend(&p.residue_type);
            onehot.extend(&p.onehot);
            node2graph.extend(std::iter::repeat_n(b as i64, p.len()));
            for (s, d, r) in &p.edges {
                src.push(offset + i64::from(*s));
                dst.push(offset + i64::from(*d));
                rel.push(i64::from(*r));
            }
            offset += p.len() as i64;
        }
        let t = |v: &[i64]| Tensor::from_slice(v).to_device(device);
        let onehot = if onehot.contains(&ONEHOT_MASKED) {
            t(&onehot).one_hot(22).narrow(1, 0, 21).to_kind(Kind::Float)
        } else {
            t(&onehot).one_hot(21).to_kind(Kind::Float)
        };
        Batch {
            ids: proteins.iter().map(|p| p.borrow().id.clone()).collect(),
            lengths,
            residue_type: t(&residue_type),
            onehot,
            node2graph: t(&node2graph),
            edges: Edges {
                src: t(&src),
                dst: t(&dst),
                rel: t(&rel),
                num_nodes: offset,
            },
            device,
        }
    }

    pub fn num_proteins(&self) -> i64 {
        self.lengths.len() as i64
    }

    pub fn num_residues(&self) -> i64 {
        self.edges.num_nodes
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn lengths_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.lengths).to_device(self.device)
    }

    /// ESM token rows: `[<cls>] + residues + [<eos>]`, right-padded. With `token` set, one more
    /// column holds a placeholder for the fusion token (padding id, attended to), at padded
    /// column `T − 1` for every row (`BatchEnd`, the reference) or right after each protein's
    /// last residue (`PerProtein`). Returns the tokens, the token column per row (if any) and
    /// the flat `[N]` index of every residue's row in the `[B·T', E]` view.
    pub fn esm_tokens(&self, token: Option<TokenPosition>) -> (Tokens, Option<Tensor>, Tensor) {
        let types: Vec<i64> =
            Vec::<i64>::try_from(&self.residue_type.to_device(Device::Cpu)).unwrap_or_default();
        let b = self.lengths.len();
        let lmax = self.lengths.iter().copied().max().unwrap_or(0) as usize;
        let t = lmax + 2 + usize::from(token.is_some());
        let mut ids = vec![alphabet::PAD; b * t];
        let mut padding = vec![true; b * t];
        let mut token_col = Vec::with_capacity(b);
        let mut residue_rows = Vec::with_capacity(types.len());
        let mut start = 0usize;
        for (row, &len) in self.lengths.iter().enumerate() {
            let len = len as usize;
            let base = row * t;
            // The placeholder's column, then the sequence laid out around it.
            let tcol = match token {
                Some(TokenPosition::BatchEnd) => Some(t - 2),
                Some(TokenPosition::PerProtein) => Some(len + 1),
                None => None,
            };
            let mut cols = (0..t).filter(|c| Some(*c) != tcol);
            let mut put = |id: i64| -> usize {
                let c = cols.next().unwrap_or(t - 1);
                ids[base + c] = id;
                padding[base + c] = false;
                c
            };
            put(alphabet::CLS);
            for &r in &types[start..start + len] {
                let c = put(alphabet::token(r));
                residue_rows.push((base + c) as i64);
            }
            put(alphabet::EOS);
            if let Some(c) = tcol {
                padding[base + c] = false;
                token_col.push(c as i64);
            }
            start += len;
        }
        let dims = [b as i64, t as i64];
        let tokens = Tokens {
            ids: Tensor::from_slice(&ids).view(dims).to_device(self.device),
            padding: Tensor::from_slice(&padding)
                .view(dims)
                .to_device(self.device),
        };
        let token_col = token.map(|_| Tensor::from_slice(&token_col).to_device(self.device));
        (
            tokens,
            token_col,
            Tensor::from_slice(&residue_rows).to_device(self.device),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_keeps_its_residues_and_the_edges_among_them_renumbered() {
        let g = ProteinGraph {
            id: "p".into(),
            residue_type: vec![0, 1, 2, 3, 4],
            onehot: vec![5, 6, 7, 8, 9],
            edges: vec![(0, 1, 0), (1, 2, 1), (2, 3, 2), (3, 4, 3), (4, 1, 4)],
        };
        let w = g.window(1, 3);
        assert_eq!(w.residue_type, [1, 2, 3]);
        assert_eq!(w.onehot, [6, 7, 8]);
        assert_eq!(w.edges, [(0, 1, 1), (1, 2, 2)]);
        assert_eq!(g.window(0, 9), g);
        assert_eq!(g.window(4, 3).residue_type, [4]);
    }
}
