//! What `split` did: the report that is also the manifest's `split` section (the certificate).

use super::PairIdentity;
use crate::write::PartInfo;

/// The highest identity found between two proteins of different splits.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MaxPair {
    pub a: String,
    pub b: String,
    #[serde(flatten)]
    pub pair: PairIdentity,
}

/// What `split` did; also the manifest's `split` section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitReport {
    pub tool_version: &'static str,
    pub mmseqs_version: String,
    pub parameters: serde_json::Value,
    pub identity_definition: &'static str,
    pub proteins: usize,
    pub unique_sequences: usize,
    pub counts: [usize; 3],
    /// Proteins dropped by `--remove-to-separate` (split `removed` in the table).
    pub removed: Vec<String>,
    pub requested_fractions: [f64; 3],
    pub achieved_fractions: [f64; 3],
    pub components: usize,
    pub largest_component: u64,
    pub search_pairs: usize,
    /// Cross-split pairs the search reported, each re-aligned exactly.
    pub cross_split_pairs_checked: usize,
    /// Linking rounds: a round re-links pairs that the exact alignment found above the threshold.
    pub rounds: usize,
    pub max_cross_split: Option<MaxPair>,
    pub audit_pairs: usize,
    /// The audit aligned every cross-split pair (there were at most `--audit-pairs`).
    pub audit_exhaustive: bool,
    pub audit_max: Option<MaxPair>,
    pub parts: Vec<PartInfo>,
}

/// States the identity the guarantee is about; printed in the certificate.
pub const IDENTITY_DEFINITION: &str = "identical columns / aligned columns (gaps included) of the Smith-Waterman \
local alignment (BLOSUM62, gap open 11, extend 1); a pair counts when the alignment covers at least -c of \
both sequences (--cov-mode 0), the target (1) or the query (2)";

