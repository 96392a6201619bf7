//! When an alignment means homology: its Smith-Waterman score is unlikely by chance. Karlin–
//! Altschul statistics with the gapped parameters BLAST reports for BLOSUM62 with gap costs
//! 11 + k (λ = 0.267, K = 0.041): the E-value of a score S between a sequence of length m and a
//! database of N residues is `E = K · m · N · e^(−λS)`, the number of alignments scoring at least
//! S expected by chance in the whole search.
//!
//! Our choices, stated in the certificate: m is the length of the **shorter** sequence of the
//! pair and N the residues of all distinct sequences of the dataset (the all-vs-all search
//! space), with no edge-effect correction. The shorter length makes a pair's E-value the smaller
//! of the two search directions', so a pair is significant when either direction finds it.

/// BLAST's gapped λ for BLOSUM62, gap existence 11, extension 1 (per score unit).
pub const LAMBDA: f64 = 0.267;
/// BLAST's gapped K for the same scheme.
pub const K: f64 = 0.041;

/// The significance rule of a split: E-values over this dataset's search space.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Significance {
    /// A pair is significant when its E-value is at most this.
    pub max_evalue: f64,
    /// N: residues of all distinct sequences of the dataset.
    pub search_space_residues: u64,
}

impl Significance {
    /// The E-value of a local alignment score between sequences of lengths `len_a`, `len_b`.
    pub fn evalue(&self, score: i32, len_a: u32, len_b: u32) -> f64 {
        let m = f64::from(len_a.min(len_b));
        K * m * self.search_space_residues as f64 * (-LAMBDA * f64::from(score)).exp()
    }

    /// The score in bits, `(λS − ln K) / ln 2`.
    pub fn bits(score: i32) -> f64 {
        (LAMBDA * f64::from(score) - K.ln()) / std::f64::consts::LN_2
    }

    /// Whether a pair with this score is significant (E-value ≤ the cut-off).
    pub fn significant(&self, score: i32, len_a: u32, len_b: u32) -> bool {
        self.evalue(score, len_a, len_b) <= self.max_evalue
    }

    /// The rule in words, for the certificate.
    pub fn statement(&self) -> String {
        format!(
            "E-value ≤ {} for the Smith-Waterman score S (BLOSUM62, gap open 11, extend 1), with \
             E = K·m·N·exp(−λS), λ = {LAMBDA}, K = {K} (BLAST's gapped parameters for that scheme), m the \
             length of the shorter sequence, N = {} residues (all distinct sequences of the dataset), no \
             edge-effect correction",
            self.max_evalue, self.search_space_residues
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chance_scores_between_short_and_long_proteins_are_not_significant() {
        let s = Significance {
            max_evalue: 1e-3,
            search_space_residues: 60_000,
        };
        // 18 identities over a 60-residue stretch can score ~40 by chance: E ≫ 1.
        assert!(!s.significant(40, 60, 172));
        assert!(s.evalue(40, 60, 172) > 1.0);
        // A 60-residue homologous fragment at 40% identity scores ~85: E ≈ 2e-5.
        assert!(s.significant(85, 60, 172));
        // The shorter length is m, whichever comes first.
        assert_eq!(s.evalue(50, 60, 172), s.evalue(50, 172, 60));
        // 40 bits is about 92 score units with these λ, K.
        assert!(
            (Significance::bits(92) - 40.0).abs() < 0.5,
            "{}",
            Significance::bits(92)
        );
    }
}
