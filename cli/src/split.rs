//! `fusionprot split`: family-level train / valid / test splits, certified.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use fusionprot_pipeline::split::{self, SPLIT_NAMES, SearchParams, SplitBy, SplitConfig};

use crate::progress;

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Dataset folder written by `fusionprot prepare`.
    dataset: PathBuf,
    /// Proteins with a pair at or above this identity stay in one split (0–1).
    #[arg(long, default_value_t = 0.3)]
    min_seq_id: f32,
    /// Fraction of the sequences the alignment must cover for a pair to count (MMseqs2 -c).
    #[arg(short = 'c', long = "coverage", default_value_t = 0.8)]
    coverage: f32,
    /// 0: both sequences covered, 1: the target, 2: the query (MMseqs2 --cov-mode).
    #[arg(long, default_value_t = 0)]
    cov_mode: u8,
    /// MMseqs2 search sensitivity (-s): 1 fast … 7.5 sensitive (5.7 is MMseqs2's default; 7.5 is about
    /// 3x slower and finds more distant pairs, which the exact re-alignment then checks).
    #[arg(short = 's', long = "sensitivity", default_value_t = 5.7)]
    sensitivity: f32,
    /// E-value cut-off of the all-vs-all search (MMseqs2 -e); higher finds more distant pairs.
    #[arg(short = 'e', long = "evalue", default_value_t = 1.0)]
    evalue: f64,
    /// Targets per query passing MMseqs2's prefilter (--max-seqs).
    #[arg(long, default_value_t = 300)]
    max_seqs: usize,
    /// Train, valid and test fractions, comma-separated, summing to 1.
    #[arg(long, default_value = "0.8,0.1,0.1")]
    fractions: String,
    /// Seed of the audit sample (the assignment itself is deterministic).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also keep proteins with equal values of this `proteins` column together (e.g. entry_id).
    #[arg(long, value_name = "COLUMN", conflicts_with = "clusters")]
    split_by: Option<String>,
    /// Also keep the clusters of this MMseqs2 cluster TSV (representative, member) together.
    #[arg(long, value_name = "TSV")]
    clusters: Option<PathBuf>,
    /// Random cross-split pairs to align exactly, without a prefilter, as an audit.
    #[arg(long, default_value_t = 100_000)]
    audit_pairs: usize,
    /// When a family is too large for the train fraction, drop the fewest proteins that break it
    /// apart (GraphPart's remedy; they are listed, with split `removed`) instead of failing.
    #[arg(long)]
    remove_to_separate: bool,
    /// Threads for MMseqs2 and the alignments (default: all cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
}

impl SplitArgs {
    fn config(&self) -> anyhow::Result<SplitConfig> {
        if !(0.0..=1.0).contains(&self.min_seq_id) {
            bail!("--min-seq-id must be within 0–1, got {}", self.min_seq_id);
        }
        if !(0.0..=1.0).contains(&self.coverage) {
            bail!("-c must be within 0–1, got {}", self.coverage);
        }
        if self.cov_mode > 2 {
            bail!("--cov-mode must be 0, 1 or 2, got {}", self.cov_mode);
        }
        let f: Vec<f64> = self
            .fractions
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| {
                format!(
                    "--fractions {:?}: expected three numbers like 0.8,0.1,0.1",
                    self.fractions
                )
            })?;
        let [train, valid, test] = f[..] else {
            bail!(
                "--fractions needs three values (train, valid, test), got {}",
                f.len()
            );
        };
        if f.iter().any(|x| !(0.0..=1.0).contains(x)) || (train + valid + test - 1.0).abs() > 1e-6 {
            bail!(
                "--fractions must be within 0–1 and sum to 1, got {}",
                self.fractions
            );
        }
        let threads = crate::threads::resolve(self.jobs)?;
        Ok(SplitConfig {
            dataset: self.dataset.clone(),
            min_seq_id: self.min_seq_id,
            coverage: self.coverage,
            cov_mode: self.cov_mode,
            search: SearchParams {
                sensitivity: self.sensitivity,
                evalue: self.evalue,
                max_seqs: self.max_seqs,
                threads,
            },
            fractions: [train, valid, test],
            seed: self.seed,
            split_by: match (&self.split_by, &self.clusters) {
                (Some(c), _) => SplitBy::Column(c.clone()),
                (_, Some(p)) => SplitBy::ClusterFile(p.clone()),
                _ => SplitBy::Sequence,
            },
            audit_pairs: self.audit_pairs,
            remove_to_separate: self.remove_to_separate,
        })
    }
}

pub fn run(args: &SplitArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.config()?;
    let bar = progress::bar("steps");
    let start = std::time::Instant::now();
    let r =
        split::split(&cfg, &bar).with_context(|| format!("splitting {}", cfg.dataset.display()))?;
    bar.finish_and_clear();
    println!(
        "split {}: {} proteins ({} distinct sequences) in {} families → {}",
        cfg.dataset.display(),
        r.proteins,
        r.unique_sequences,
        r.components,
        (0..3)
            .map(|i| format!(
                "{} {} ({:.1}%, asked {:.0}%)",
                SPLIT_NAMES[i],
                r.counts[i],
                100.0 * r.achieved_fractions[i],
                100.0 * r.requested_fractions[i]
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !r.removed.is_empty() {
        println!(
            "removed {} proteins to separate an oversized family (--remove-to-separate; {:.2}% kept): {}",
            r.removed.len(),
            100.0 * (r.proteins - r.removed.len()) as f64 / r.proteins.max(1) as f64,
            r.removed.join(" ")
        );
    }
    let pct = |m: &Option<split::MaxPair>| {
        m.as_ref().map_or_else(
            || {
                format!(
                    "none (no pair's alignment covers {:.0}% of the sequences)",
                    100.0 * cfg.coverage
                )
            },
            |m| format!("{:.1}% ({} vs {})", 100.0 * m.pair.identity, m.a, m.b),
        )
    };
    println!(
        "verified: max cross-split identity {} < {:.0}% over {} cross-split pairs reported by an MMseqs2 all-vs-all search \
         (-s {}, -e {}, --max-seqs {}) and re-aligned exactly (Smith-Waterman, BLOSUM62; identity = identical/aligned columns, \
         coverage -c {} --cov-mode {}); audit of {} {}cross-split pairs without prefilter: max {}; {} linking round(s); {:.1} s",
        pct(&r.max_cross_split),
        100.0 * cfg.min_seq_id,
        r.cross_split_pairs_checked,
        cfg.search.sensitivity,
        cfg.search.evalue,
        cfg.search.max_seqs,
        cfg.coverage,
        cfg.cov_mode,
        r.audit_pairs,
        if r.audit_exhaustive {
            "(all) "
        } else {
            "random "
        },
        pct(&r.audit_max),
        r.rounds,
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
