//! What `split` did: the report that is also the manifest's `split` section (the certificate).

use super::PairAlignment;
use crate::dataset::part::PartInfo;

/// The highest identity found between two proteins of different splits whose alignment is
/// significant (the pairs that could link), under the run's definition.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MaxPair {
    pub a: String,
    pub b: String,
    /// Identity under `definition`, 0–1.
    pub identity: f32,
    /// The identity definition's name (`shorter` or `aligned`), so each maximum states its own.
    pub definition: &'static str,
    /// The E-value of its local alignment score over the dataset's search space.
    pub evalue: f64,
    /// The exact alignment it was read from.
    #[serde(flatten)]
    pub alignment: PairAlignment,
}

/// One round of the audit: what it aligned and what it found linked across splits (then linked,
/// and the split made again).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRound {
    pub round: usize,
    /// Cross-split pairs aligned.
    pub pairs: usize,
    /// Of those, significant ones.
    pub significant: usize,
    /// Of those, pairs that link (identity at or above the threshold): 0 ends the audit.
    pub linked: usize,
}

/// The link rule the certificate holds under: significance and identity.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdentityStatement {
    /// `shorter`, `aligned` or `full`, as `--identity` spells it.
    pub name: &'static str,
    /// What the identical residues are divided by.
    pub denominator: &'static str,
    /// The identity definition in words, coverage rule included.
    pub definition: String,
    /// The identity threshold.
    pub threshold: f32,
    /// When an alignment is significant, in words (E-value, parameters, search space).
    pub significance: String,
    /// The E-value cut-off (`--max-evalue`; infinite: identity alone).
    pub max_evalue: f64,
    /// The whole rule: no pair that satisfies it crosses splits.
    pub link_rule: String,
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
    /// Linking rounds: a round re-links pairs that the exact alignment found linked across
    /// splits (summed over the audit's rounds).
    pub rounds: usize,
    /// Every pair of distinct sequences was aligned (at most `--all-pairs-below` of them): the
    /// links, and so the guarantee, are exact; no search and no sampled audit were needed.
    pub all_pairs: bool,
    /// Pairs whose score was computed exactly (all pairs, or the candidates and audits).
    pub pairs_examined: usize,
    pub max_cross_split: Option<MaxPair>,
    /// Cross-split pairs of the final audit (all of them when every pair was aligned).
    pub audit_pairs: usize,
    /// The audit aligned every cross-split pair (there were at most `--audit-pairs`, or all
    /// pairs were aligned).
    pub audit_exhaustive: bool,
    pub audit_max: Option<MaxPair>,
    /// Each audit round; a round that found linked pairs was followed by another split.
    pub audit_rounds: Vec<AuditRound>,
    /// What `splits.max_train_identity` is the maximum over, in words.
    pub identity_to_train: String,
    pub parts: Vec<PartInfo>,
}
