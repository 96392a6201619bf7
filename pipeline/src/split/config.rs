//! What `split` is asked to do (`SplitConfig`, `SplitBy`) and the errors that stop it.

use std::path::{Path, PathBuf};

use super::report::MaxPair;
use super::significance::Significance;
use super::{Identity, PairAlignment, SearchParams};
use crate::dataset::read::ReadError;
use crate::dataset::write::WriteError;
use crate::mmseqs::MmseqsError;

/// Split names, in the order of `fractions`.
pub const SPLIT_NAMES: [&str; 3] = ["train", "valid", "test"];
/// The `split` value of proteins dropped by `--remove-to-separate`.
pub const REMOVED: &str = "removed";

/// Which proteins must stay together besides sequence similarity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// Sequence similarity only.
    Sequence,
    /// Also keep proteins with equal values of this `proteins` column together (e.g. `entry_id`).
    Column(String),
    /// Also keep the members of each cluster of an MMseqs2 cluster TSV (`representative<TAB>member`,
    /// protein ids) together.
    ClusterFile(PathBuf),
}

/// How to split; validated by the caller.
#[derive(Debug, Clone)]
pub struct SplitConfig {
    pub dataset: PathBuf,
    /// The split's name in `splits/` (others already there are kept); `family` by default.
    pub name: String,
    /// Significant pairs at or above this identity (under `identity`) are linked and never cross
    /// splits.
    pub min_seq_id: f32,
    /// Which identity `min_seq_id` and the guarantee are about.
    pub identity: Identity,
    /// A pair links only when its Smith-Waterman score's E-value is at most this
    /// ([`Significance`]); `f64::INFINITY` links on identity alone.
    pub max_evalue: f64,
    /// Every pair of distinct sequences is aligned (exhaustive, no search, no sampled audit)
    /// when there are at most this many; above, the MMseqs2 search, the re-checks and the
    /// sampled audit, repeated until an audit finds no linked pair across splits.
    pub all_pairs_below: usize,
    pub search: SearchParams,
    /// Train, valid, test; sum to 1.
    pub fractions: [f64; 3],
    pub seed: u64,
    pub split_by: SplitBy,
    /// Random cross-split pairs aligned exactly for the audit.
    pub audit_pairs: usize,
    /// When a family is too large for the train fraction, drop the fewest proteins needed to break
    /// it apart (GraphPart's remedy) instead of failing; dropped proteins get the split `removed`.
    pub remove_to_separate: bool,
    /// The all-vs-all search's hits, from the N files of `split --search-chunk I/N` (array tasks),
    /// instead of searching here.
    pub hits: Option<Vec<PathBuf>>,
}

/// Errors that stop `split`; nothing is written when one occurs.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("split name {0:?}: use letters, digits, '.', '_' and '-' (at most 64)")]
    Name(String),
    #[error(transparent)]
    Mmseqs(#[from] MmseqsError),
    #[error("{}: {message}", .path.display())]
    Hits { path: PathBuf, message: String },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: unexpected MMseqs2 output", .path.display())]
    Output { path: PathBuf, line: usize },
    #[error("{}: no column {column:?} of text type in proteins; try entry_id", .dataset.display())]
    NoColumn { dataset: PathBuf, column: String },
    #[error("{}:{line}: expected `representative<TAB>member` protein ids", .path.display())]
    ClusterFile { path: PathBuf, line: usize },
    #[error(
        "no split exists: the largest family holds {size} of {total} proteins ({:.1}%), more than the train \
         fraction allows ({members}); raise --min-seq-id or the train fraction, or pass --remove-to-separate to \
         drop the fewest proteins that break it apart",
        100.0 * *.size as f64 / *.total as f64
    )]
    Oversized {
        size: u64,
        total: u64,
        /// Some of its proteins, named.
        members: String,
    },
    #[error(
        "guarantee broken: {} ({sa}) and {} ({sb}) are {:.1}% identical by the `{}` definition ({} identical residues; \
         lengths {} and {}, the alignment covers {:.0}%/{:.0}% of them) ({how})",
        .pair.a, .pair.b, 100.0 * .pair.identity, .pair.definition, .pair.alignment.identical,
        .pair.alignment.len_a, .pair.alignment.len_b, 100.0 * .pair.alignment.cov_a, 100.0 * .pair.alignment.cov_b
    )]
    Violation {
        pair: Box<MaxPair>,
        sa: &'static str,
        sb: &'static str,
        how: &'static str,
    },
    #[error("another command is writing {} (lock held on {})", .dataset.display(), .lock.display())]
    Locked { dataset: PathBuf, lock: PathBuf },
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SplitError + '_ {
    move |source| SplitError::Io {
        path: path.to_owned(),
        source,
    }
}

/// When two sequences link: significance and identity, over one dataset's search space.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkRule {
    pub identity: Identity,
    pub min_seq_id: f32,
    pub significance: Significance,
}

impl LinkRule {
    /// Whether a pair with this local score can link at all (its E-value): the only question
    /// for most pairs, answered without an alignment.
    pub(super) fn significant(&self, score: i32, len_a: usize, len_b: usize) -> bool {
        self.significance
            .significant(score, len_a as u32, len_b as u32)
    }

    /// Whether an exactly aligned pair links its proteins: significant, the coverage rule holds
    /// (if the definition has one) and its identity is at or above the threshold.
    pub(super) fn links(&self, p: &PairAlignment) -> bool {
        self.significance.significant(p.score, p.len_a, p.len_b)
            && self.identity.covered(p.cov_a, p.cov_b)
            && self.identity.of(p) >= self.min_seq_id
    }

    /// Decides a pair: its score first (striped, no traceback), the alignment only when the score
    /// is significant. None: not significant, so it cannot link.
    pub(super) fn examine(&self, a: &str, b: &str) -> Option<PairAlignment> {
        let score = super::striped::score(a.as_bytes(), b.as_bytes());
        self.significant(score, a.len(), b.len())
            .then(|| self.identity.align(a.as_bytes(), b.as_bytes()))
    }
}

impl SplitConfig {
    /// The rule over a dataset whose distinct sequences hold `residues` residues.
    pub(super) fn rule(&self, residues: u64) -> LinkRule {
        LinkRule {
            identity: self.identity,
            min_seq_id: self.min_seq_id,
            significance: Significance {
                max_evalue: self.max_evalue,
                search_space_residues: residues,
            },
        }
    }

    /// The threshold of the MMseqs2 candidate search (its `--min-seq-id`, under the definition's
    /// `--seq-id-mode`): `min_seq_id` less the candidate margin for `shorter`, so that pairs its
    /// heuristic alignment scores a little lower than the exact one are still re-checked; 0 for
    /// `aligned`, whose search reports every pair under the E-value cut-off as before.
    pub(super) fn candidate_seq_id(&self) -> f32 {
        match self.identity {
            Identity::Shorter | Identity::Full => {
                (self.min_seq_id - self.search.candidate_margin).max(0.0)
            }
            Identity::Aligned { .. } => 0.0,
        }
    }
}
