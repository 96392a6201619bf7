//! `fusionprot split`: family-level train / valid / test splits, certified.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use fusionprot_pipeline::split::{self, Identity, SPLIT_NAMES, SearchParams, SplitBy, SplitConfig};

use crate::progress;

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Dataset folder written by `fusionprot prepare`.
    dataset: PathBuf,
    /// Proteins with a significant pair (--max-evalue) at or above this identity (under
    /// --identity) stay in one split (0–1).
    #[arg(long, default_value_t = 0.3)]
    min_seq_id: f32,
    /// A pair links only when its exact Smith-Waterman score (BLOSUM62, gap open 11, extend 1) is
    /// significant: E = K·m·N·exp(−λS) at most this, with BLAST's λ = 0.267, K = 0.041, m the
    /// shorter length and N the residues of all distinct sequences. Identity alone links unrelated
    /// short chains by chance (18 identical residues are 30% of a 60-residue chain); `inf` links on
    /// identity alone.
    #[arg(long, default_value_t = 1e-3, value_name = "E")]
    max_evalue: f64,
    /// Align every pair of distinct sequences exactly (no MMseqs2 search, no sampled audit: the
    /// certificate is exact) when there are at most this many; above, the search finds the
    /// candidates and an audit of random cross-split pairs is repeated until it finds none.
    /// Scores only for most pairs (striped SIMD, ~3 billion cells/s a core): 5,000 sequences of
    /// 250 residues take about two minutes on 2 cores.
    #[arg(long, default_value_t = 5000, value_name = "SEQUENCES")]
    all_pairs_below: usize,
    /// What identity means. `shorter`: identical residues / length of the shorter sequence over the
    /// exact Smith-Waterman alignment, no coverage rule (CD-HIT's denominator: one shared domain or a
    /// fragment counts in proportion to its length). `aligned`: identical / aligned columns, counted
    /// only when the alignment covers -c of the sequences (MMseqs2's definition; domain and fragment
    /// homology below -c is not linked). `full`: identical / columns of the global alignment with end
    /// gaps (GraphPart's default; EMBOSS needle's scheme): never links a fragment to its protein.
    #[arg(long, value_enum, default_value_t = IdentityArg::Shorter)]
    identity: IdentityArg,
    /// With --identity aligned: the fraction of the sequences the alignment must cover for a pair
    /// to count (MMseqs2 -c; default 0.8). `shorter` has no coverage rule, so this is refused there.
    #[arg(short = 'c', long = "coverage")]
    coverage: Option<f32>,
    /// With --identity aligned: which sequences -c applies to; 0: both, 1: the target, 2: the query
    /// (MMseqs2 --cov-mode; default 0). Refused with --identity shorter.
    #[arg(long)]
    cov_mode: Option<u8>,
    /// With --identity shorter: the MMseqs2 search reports pairs it scores at or above
    /// --min-seq-id minus this margin, so that pairs its heuristic alignment scores a little lower
    /// than the exact one still get the exact re-check (0–1).
    #[arg(long, default_value_t = 0.1)]
    candidate_margin: f32,
    /// With --identity shorter: sequences shorter than this many residues are re-aligned exactly
    /// against every other sequence (MMseqs2's E-value cannot find their chance alignments, which
    /// can reach the threshold: 4 identical residues are 31% of a 13-residue peptide).
    #[arg(long, default_value_t = 30, value_name = "RESIDUES")]
    exhaustive_below: usize,
    /// MMseqs2 search sensitivity (-s): 1 fast … 7.5 sensitive (5.7 is MMseqs2's default; 7.5 is about
    /// 3x slower and finds more distant pairs, which the exact re-alignment then checks).
    #[arg(short = 's', long = "sensitivity", default_value_t = 5.7)]
    sensitivity: f32,
    /// E-value cut-off of the all-vs-all search (MMseqs2 -e); higher finds more distant pairs.
    /// Default 100 with --identity shorter (a pair counts from a partial alignment, whose E-value
    /// grows with the set: at 50k sequences -e 1 missed a 32% pair the audit then caught), 1 with
    /// --identity aligned.
    #[arg(short = 'e', long = "evalue")]
    evalue: Option<f64>,
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
    /// Run only chunk I of N of the all-vs-all search (the queries i ≡ I mod N against all) and
    /// write its hits to --hits-out; no split is made. For array tasks: then `split --hits` with all N.
    #[arg(long, value_name = "I/N", value_parser = fusionprot_pipeline::prepare::shard::Shard::parse, requires = "hits_out")]
    search_chunk: Option<fusionprot_pipeline::prepare::shard::Shard>,
    /// Where --search-chunk writes its hits.
    #[arg(long, value_name = "FILE", requires = "search_chunk")]
    hits_out: Option<PathBuf>,
    /// Split with the hits of all N `--search-chunk` files instead of searching here (same result
    /// as one process; files of other sequences or settings, missing or repeated chunks are refused).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "search_chunk")]
    hits: Option<Vec<PathBuf>>,
    /// Threads for MMseqs2 and the alignments (default: all cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// The split's name in `splits/`: other named splits there (an import's `official`) are kept,
    /// one of the same name is replaced. Trainers pick a split by name.
    #[arg(long, default_value = "family")]
    name: String,
}

/// `--identity`: the identity definitions of [`Identity`], by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum IdentityArg {
    /// Identical residues / length of the shorter sequence, no coverage rule (GraphPart, CD-HIT).
    Shorter,
    /// Identical / aligned columns with a coverage rule (-c, --cov-mode), as MMseqs2.
    Aligned,
    /// Identical / columns of the global alignment, end gaps included (GraphPart's `full`).
    Full,
}

impl SplitArgs {
    fn identity(&self) -> anyhow::Result<Identity> {
        match self.identity {
            IdentityArg::Shorter | IdentityArg::Full => {
                if self.coverage.is_some() || self.cov_mode.is_some() {
                    bail!(
                        "-c / --cov-mode set a coverage rule, which only --identity aligned has: --identity shorter \
                         (the default) divides by the shorter sequence's length, so partial homology counts in \
                         proportion to its length without one; add --identity aligned to use MMseqs2's definition"
                    );
                }
                Ok(if self.identity == IdentityArg::Full {
                    Identity::Full
                } else {
                    Identity::Shorter
                })
            }
            IdentityArg::Aligned => {
                let coverage = self.coverage.unwrap_or(0.8);
                let cov_mode = self.cov_mode.unwrap_or(0);
                if !(0.0..=1.0).contains(&coverage) {
                    bail!("-c must be within 0–1, got {coverage}");
                }
                if cov_mode > 2 {
                    bail!("--cov-mode must be 0, 1 or 2, got {cov_mode}");
                }
                Ok(Identity::Aligned { coverage, cov_mode })
            }
        }
    }

    fn config(&self) -> anyhow::Result<SplitConfig> {
        if !(0.0..=1.0).contains(&self.min_seq_id) {
            bail!("--min-seq-id must be within 0–1, got {}", self.min_seq_id);
        }
        if !(0.0..=1.0).contains(&self.candidate_margin) {
            bail!(
                "--candidate-margin must be within 0–1, got {}",
                self.candidate_margin
            );
        }
        let identity = self.identity()?;
        if self.max_evalue.is_nan() || self.max_evalue <= 0.0 {
            bail!(
                "--max-evalue must be positive (inf for identity alone), got {}",
                self.max_evalue
            );
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
            name: self.name.clone(),
            min_seq_id: self.min_seq_id,
            identity,
            max_evalue: self.max_evalue,
            all_pairs_below: self.all_pairs_below,
            search: SearchParams {
                sensitivity: self.sensitivity,
                evalue: self.evalue.unwrap_or(match identity {
                    Identity::Shorter | Identity::Full => 100.0,
                    Identity::Aligned { .. } => 1.0,
                }),
                max_seqs: self.max_seqs,
                threads,
                candidate_margin: self.candidate_margin,
                exhaustive_below: self.exhaustive_below,
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
            hits: self.hits.clone(),
        })
    }
}

pub fn run(args: &SplitArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.config()?;
    if let (Some(chunk), Some(out)) = (args.search_chunk, &args.hits_out) {
        let c = split::search_chunk(&cfg, chunk, out).with_context(|| {
            format!(
                "searching chunk {}/{} of {}",
                chunk.index,
                chunk.count,
                cfg.dataset.display()
            )
        })?;
        println!(
            "search chunk {}/{} of {}: {} of {} distinct sequences against all, {} hits → {}",
            chunk.index,
            chunk.count,
            cfg.dataset.display(),
            c.queries,
            c.sequences,
            c.hits,
            c.path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
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
            || "none (no significant cross-split pair)".to_owned(),
            |m| {
                format!(
                    "{:.1}% ({} vs {}, E = {:.1e})",
                    100.0 * m.identity,
                    m.a,
                    m.b,
                    m.evalue
                )
            },
        )
    };
    let how = if r.all_pairs {
        format!(
            "every pair of the {} distinct sequences aligned exactly ({} pairs; --all-pairs-below {})",
            r.unique_sequences, r.pairs_examined, cfg.all_pairs_below
        )
    } else {
        format!(
            "{} cross-split pairs reported by an MMseqs2 all-vs-all search (-s {}, -e {}, --max-seqs {}, -c 0, \
             --seq-id-mode {}, candidates at identity >= {:.2}; {} sequences under {} residues paired with all) \
             re-checked exactly; {} audit round(s), the last of {} {}cross-split pairs without prefilter: max {}",
            r.cross_split_pairs_checked,
            cfg.search.sensitivity,
            cfg.search.evalue,
            cfg.search.max_seqs,
            cfg.identity.seq_id_mode(),
            r.candidate_seq_id,
            r.short_sequences,
            cfg.search.exhaustive_below,
            r.audit_rounds.len(),
            r.audit_pairs,
            if r.audit_exhaustive {
                "(all) "
            } else {
                "random "
            },
            pct(&r.audit_max)
        )
    };
    println!(
        "verified: max identity of a significant cross-split pair {} < {:.0}% — rule: {} — {how}; {} linking round(s); {:.1} s",
        pct(&r.max_cross_split),
        100.0 * cfg.min_seq_id,
        r.identity.link_rule,
        r.rounds,
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
