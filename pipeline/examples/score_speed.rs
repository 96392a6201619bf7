//! Throughput of the split's two exact kernels on the same pairs, for bench/split: the striped
//! Smith-Waterman score (`split::score`, what every pair gets) and rust-bio's alignment with
//! traceback (`split::align`, what only significant pairs get). `score_speed [PROTEINS] [SEED]`
//! draws PROTEINS unrelated proteins of 80–400 residues, scores every pair and aligns a sample,
//! one thread, and prints cells (residue pairs) per second for each.

use std::time::Instant;

use fusionprot_pipeline::split::synthetic::{FamilySpec, synthetic_families};
use fusionprot_pipeline::split::{align, score};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(300);
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let set = synthetic_families(
        &FamilySpec {
            families: n,
            members: 1,
            length: (80, 400),
            member_identity: 0.9,
            chain_every: 0,
            chain_identity: 0.0,
            relative_every: 0,
            relative_identity: 0.0,
            partial_every: 0,
            partial_window: 0.0,
            partial_share: 1.0,
            partial_identity: 0.0,
        },
        seed,
    );
    let seqs: Vec<&[u8]> = set.iter().map(|s| s.sequence.as_bytes()).collect();
    let pairs: Vec<(usize, usize)> = (0..seqs.len())
        .flat_map(|i| (i + 1..seqs.len()).map(move |j| (i, j)))
        .collect();
    let cells = |ps: &[(usize, usize)]| -> f64 {
        ps.iter()
            .map(|&(i, j)| (seqs[i].len() * seqs[j].len()) as f64)
            .sum()
    };
    let t = Instant::now();
    let total: i64 = pairs
        .iter()
        .map(|&(i, j)| i64::from(score(seqs[i], seqs[j])))
        .sum();
    let striped = cells(&pairs) / t.elapsed().as_secs_f64();
    let sample = &pairs[..pairs.len().min(2000)];
    let t = Instant::now();
    let check: i64 = sample
        .iter()
        .map(|&(i, j)| i64::from(align(seqs[i], seqs[j]).score))
        .sum();
    let traceback = cells(sample) / t.elapsed().as_secs_f64();
    let same: i64 = sample
        .iter()
        .map(|&(i, j)| i64::from(score(seqs[i], seqs[j])))
        .sum();
    assert_eq!(check, same, "the two kernels disagree on the sample");
    println!(
        "{} pairs of {} proteins (score sum {total}): striped score {:.0} Mcells/s, rust-bio alignment {:.0} Mcells/s, ratio {:.1}",
        pairs.len(),
        seqs.len(),
        striped / 1e6,
        traceback / 1e6,
        striped / traceback
    );
}
