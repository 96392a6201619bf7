//! What `split` is asked to do (`SplitConfig`, `SplitBy`) and the errors that stop it.

use std::path::{Path, PathBuf};

use super::PairIdentity;
use super::SearchParams;
use crate::mmseqs::MmseqsError;
use crate::read::ReadError;
use crate::write::WriteError;

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
    /// Pairs at or above this identity are linked (MMseqs2's `--min-seq-id`).
    pub min_seq_id: f32,
    /// Coverage a pair needs to count (MMseqs2's `-c`).
    pub coverage: f32,
    /// 0: both sequences covered; 1: the target; 2: the query (MMseqs2's `--cov-mode`).
    pub cov_mode: u8,
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
}

/// Errors that stop `split`; nothing is written when one occurs.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Mmseqs(#[from] MmseqsError),
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
        "the largest family holds {size} of {total} proteins ({:.1}%), more than the train fraction allows; \
         raise --min-seq-id or the train fraction, or pass --remove-to-separate to drop the fewest proteins that \
         break it apart",
        100.0 * *.size as f64 / *.total as f64
    )]
    Oversized { size: u64, total: u64 },
    #[error("guarantee broken: {a} ({sa}) and {b} ({sb}) are {:.1}% identical over {:.0}%/{:.0}% of their lengths ({how})",
        100.0 * .pair.identity, 100.0 * .pair.cov_a, 100.0 * .pair.cov_b)]
    Violation {
        a: String,
        b: String,
        sa: &'static str,
        sb: &'static str,
        pair: PairIdentity,
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


impl SplitConfig {
    /// The coverage rule of `--cov-mode`.
    pub(super) fn covered(&self, p: &PairIdentity) -> bool {
        match self.cov_mode {
            1 => p.cov_b >= self.coverage,
            2 => p.cov_a >= self.coverage,
            _ => p.cov_a >= self.coverage && p.cov_b >= self.coverage,
        }
    }

    /// Whether a pair links its proteins: covered, and at or above the identity threshold.
    pub(super) fn counts(&self, p: &PairIdentity) -> bool {
        self.covered(p) && p.identity >= self.min_seq_id
    }
}

