//! What `split` did: the report that is also the manifest's `split` section (the certificate).

use super::PairAlignment;
use crate::write::PartInfo;

/// The highest identity found between two proteins of different splits, under the run's definition.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MaxPair {
    pub a: String,
    pub b: String,
    /// Identity under `definition`, 0–1.
    pub identity: f32,
    /// The identity definition's name (`shorter` or `aligned`), so each maximum states its own.
    pub definition: &'static str,
    /// The exact alignment it was read from.
    #[serde(flatten)]
    pub alignment: PairAlignment,
}

/// The identity definition the certificate holds under.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdentityStatement {
    /// `shorter` or `aligned`, as `--identity` spells it.
    pub name: &'static str,
    /// What the identical residues are divided by.
    pub denominator: &'static str,
    /// The whole definition in words, coverage rule included.
    pub definition: String,
    /// The identity threshold: no pair at or above it (under this definition) crosses splits.
    pub threshold: f32,
}

/// What `split` did; also the manifest's `split` section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitReport {
    pub tool_version: &'static str,
    pub mmseqs_version: String,
    pub parameters: serde_json::Value,
    /// The definition under which the guarantee, both maxima and the audit hold.
    pub identity: IdentityStatement,
    pub proteins: usize,
    pub unique_sequences: usize,
    pub counts: [usize; 3],
    /// Proteins dropped by `--remove-to-separate` (split `removed` in the table).
    pub removed: Vec<String>,
    pub requested_fractions: [f64; 3],
    pub achieved_fractions: [f64; 3],
    pub components: usize,
    pub largest_component: u64,
    /// Candidate pairs: those the search reported plus those of short sequences.
    pub search_pairs: usize,
    /// Sequences under `exhaustive_below` residues (`shorter` only), paired with every other
    /// sequence for the exact re-check.
    pub short_sequences: usize,
    /// The MMseqs2 search's own identity threshold (its `--min-seq-id`, in the definition's
    /// `--seq-id-mode`): pairs it scores at or above this are candidates for the exact re-check.
    pub candidate_seq_id: f32,
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
