//! The audit: cross-split pairs examined exactly with no prefilter, all of them or a seeded random
//! sample, to find what the MMseqs2 search missed (each round's sample is drawn afresh).

use rayon::prelude::*;

use super::PairAlignment;
use super::config::{LinkRule, SplitConfig};
use super::rng::SplitMix;

/// What one audit round examined.
pub(super) struct Audit {
    /// Cross-split pairs examined.
    pub pairs: usize,
    /// Every cross-split pair was examined.
    pub exhaustive: bool,
    /// The significant ones, aligned (the others cannot link).
    pub significant: Vec<(u32, u32, PairAlignment)>,
}

/// Examines cross-split pairs of sequences exactly, with no prefilter: all of them when there are
/// at most `cfg.audit_pairs` (then the audit is exhaustive), else that many drawn at random,
/// uniformly over protein pairs (a sequence shared by k proteins is drawn k times as often), from a
/// generator seeded by the split's seed and `round`.
pub(super) fn audit(
    cfg: &SplitConfig,
    rule: &LinkRule,
    unique: &[&str],
    weight: &[u32],
    split_of: &[u8],
    round: usize,
) -> Audit {
    let examine = |picks: Vec<(u32, u32)>, exhaustive: bool| -> Audit {
        let significant = picks
            .par_iter()
            .filter_map(|&(a, b)| {
                rule.examine(unique[a as usize], unique[b as usize])
                    .map(|p| (a, b, p))
            })
            .collect();
        Audit {
            pairs: picks.len(),
            exhaustive,
            significant,
        }
    };
    let mut members: [Vec<u32>; 3] = Default::default();
    for (i, &s) in split_of.iter().enumerate() {
        // Weight 0: removed by --remove-to-separate, in no split.
        if weight[i] > 0 {
            members[s as usize].push(i as u32);
        }
    }
    let cross_pairs: usize = [(0, 1), (0, 2), (1, 2)]
        .iter()
        .map(|&(a, b)| members[a].len() * members[b].len())
        .sum();
    if cross_pairs <= cfg.audit_pairs {
        let mut picks = Vec::with_capacity(cross_pairs);
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            for &x in &members[a] {
                picks.extend(members[b].iter().map(|&y| (x.min(y), x.max(y))));
            }
        }
        return examine(picks, true);
    }
    // Cumulative protein weights per split, to draw a protein uniformly then its sequence.
    let mut by_split: [Vec<(u64, u32)>; 3] = Default::default();
    let mut totals = [0u64; 3];
    for (i, (&w, &s)) in weight.iter().zip(split_of).enumerate() {
        totals[s as usize] += u64::from(w);
        by_split[s as usize].push((totals[s as usize], i as u32));
    }
    let pair_weight = |a: usize, b: usize| totals[a] * totals[b];
    let combos = [(0usize, 1usize), (0, 2), (1, 2)];
    let all: u64 = combos.iter().map(|&(a, b)| pair_weight(a, b)).sum();
    if all == 0 {
        return examine(Vec::new(), true);
    }
    let mut rng = SplitMix((cfg.seed ^ 0x5eed_a0d1).wrapping_add(round as u64 - 1));
    let draw = |rng: &mut SplitMix, s: usize| -> u32 {
        let x = rng.next() % totals[s];
        let k = by_split[s].partition_point(|&(cum, _)| cum <= x);
        by_split[s][k].1
    };
    let mut picks = Vec::with_capacity(cfg.audit_pairs);
    for _ in 0..cfg.audit_pairs {
        let mut x = rng.next() % all;
        let mut combo = combos[2];
        for &c in &combos {
            let w = pair_weight(c.0, c.1);
            if x < w {
                combo = c;
                break;
            }
            x -= w;
        }
        picks.push((draw(&mut rng, combo.0), draw(&mut rng, combo.1)));
    }
    examine(picks, false)
}
