//! Each protein's identity to train: for every valid / test sequence, the highest identity (under
//! the split's definition, coverage rule included) of a significant alignment with a train sequence
//! among the pairs the run aligned. With every pair aligned (`--all-pairs-below`) it is exact; after
//! a search it covers the pairs MMseqs2 reported (at or above its candidate identity), those of
//! short sequences and the final audit's sample, so a missing value means "none found there".
//! Written as `splits.max_train_identity`; the dashboard and `score --by identity` bucket by it.

use std::collections::HashMap;

use super::PairAlignment;
use super::config::SplitConfig;

/// The statement the manifest's split section carries next to the column.
pub(super) fn statement(cfg: &SplitConfig, all_pairs: bool, candidate_seq_id: f32) -> String {
    let over = if all_pairs {
        "every pair of distinct sequences (exact)".to_owned()
    } else {
        format!(
            "the pairs the MMseqs2 search reported (its identity ≥ {candidate_seq_id}), every pair with a short sequence, \
             and the final audit's sample: a protein without a value has no significant alignment to train among them"
        )
    };
    format!(
        "splits.max_train_identity: for valid and test proteins, the highest {} identity of a significant alignment \
         with a train protein, over {over}; null for train and removed proteins",
        cfg.identity.name()
    )
}

/// Per sequence node: its highest identity to a train node, for nodes outside train that are
/// not removed. `pairs` are every aligned pair (None: not significant); `audit` the final audit's
/// significant pairs.
pub(super) fn max_train_identity(
    cfg: &SplitConfig,
    pairs: &HashMap<(u32, u32), Option<PairAlignment>>,
    audit: &[(u32, u32, PairAlignment)],
    split_of: &[u8],
    removed: &[bool],
) -> Vec<Option<f32>> {
    let mut best: Vec<Option<f32>> = vec![None; split_of.len()];
    let significant = pairs
        .iter()
        .filter_map(|(&(a, b), p)| p.as_ref().map(|p| (a, b, p)))
        .chain(audit.iter().map(|(a, b, p)| (*a, *b, p)));
    for (a, b, p) in significant {
        let (a, b) = (a as usize, b as usize);
        if removed[a] || removed[b] || !cfg.identity.covered(p.cov_a, p.cov_b) {
            continue;
        }
        let identity = cfg.identity.of(p);
        for (this, other) in [(a, b), (b, a)] {
            if split_of[this] != 0 && split_of[other] == 0 {
                let slot = &mut best[this];
                if slot.is_none_or(|v| identity > v) {
                    *slot = Some(identity);
                }
            }
        }
    }
    best
}
