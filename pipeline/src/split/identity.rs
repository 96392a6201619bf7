//! The identity definitions a split can be certified under, and what each means for the MMseqs2
//! search: `shorter` (the default: identical residues / length of the shorter sequence over the
//! local alignment, no coverage rule, CD-HIT's denominator), `aligned` (identical / aligned columns
//! with a coverage rule, as MMseqs2 clusters) and `full` (identical / columns of the global
//! alignment, end gaps included: GraphPart's default). Whichever is chosen, a pair links only when
//! its alignment is also significant ([`Significance`](super::significance::Significance)).

use super::PairAlignment;

/// Which identity `--min-seq-id` and the guarantee are about. Both are computed over the same exact
/// alignment ([`align`](super::align)); they differ in the denominator and in the coverage rule.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Identity {
    /// Identical residues / length of the shorter sequence, with no coverage rule: GraphPart's
    /// `shortest` normalisation and CD-HIT's denominator. Homology over part of a protein (one shared
    /// domain, a fragment) counts in proportion to its length, and a short chance alignment of
    /// unrelated sequences cannot inflate it (its few identities are divided by a whole length).
    Shorter,
    /// Identical columns / aligned columns (gap columns included), MMseqs2's `--seq-id-mode 0`; a pair
    /// counts only when the alignment covers at least `coverage` of both sequences (`cov_mode` 0),
    /// of the second (1) or of the first (2), as MMseqs2's `-c` / `--cov-mode`.
    Aligned { coverage: f32, cov_mode: u8 },
    /// Identical residues / columns of a global alignment with end gaps counted (EMBOSS needle's
    /// defaults: EBLOSUM62, gap open 10, extend 0.5, end gaps free): GraphPart's default `full`
    /// denominator. Never links a short peptide to a long protein by chance, and never a
    /// homologous fragment either (its overhang is in the denominator).
    Full,
}

impl Identity {
    /// The definition's name, as `--identity` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Shorter => "shorter",
            Self::Aligned { .. } => "aligned",
            Self::Full => "full",
        }
    }

    /// What the identical residues are divided by.
    pub fn denominator(&self) -> &'static str {
        match self {
            Self::Shorter => "length of the shorter sequence",
            Self::Aligned { .. } => "aligned columns (gap columns included)",
            Self::Full => "columns of the global alignment, end gaps included",
        }
    }

    /// The whole definition in words: the certificate's statement.
    pub fn statement(&self) -> String {
        if *self == Self::Full {
            return format!(
                "full: identical residues / {} of the Needleman-Wunsch alignment with free end gaps \
                 (EMBOSS needle's defaults: EBLOSUM62, gap open 10, extend 0.5); no coverage rule",
                self.denominator()
            );
        }
        let base = format!(
            "{}: identical residues / {} over the Smith-Waterman local alignment (BLOSUM62, gap open 11, \
             extend 1)",
            self.name(),
            self.denominator()
        );
        match self {
            Self::Shorter | Self::Full => format!("{base}; no coverage rule"),
            Self::Aligned { coverage, cov_mode } => format!(
                "{base}; a pair counts only when the alignment covers at least {coverage} of {}",
                match cov_mode {
                    1 => "the target (--cov-mode 1)",
                    2 => "the query (--cov-mode 2)",
                    _ => "both sequences (--cov-mode 0)",
                }
            ),
        }
    }

    /// The identity of an exact alignment under this definition, 0–1.
    pub fn of(&self, p: &PairAlignment) -> f32 {
        match self {
            Self::Shorter => p.identity_shorter(),
            Self::Aligned { .. } => p.identity_aligned(),
            Self::Full => p.identity_full(),
        }
    }

    /// The exact alignment this definition reads: the local one, and for `full` the global one.
    pub fn align(&self, a: &[u8], b: &[u8]) -> PairAlignment {
        let mut p = super::align(a, b);
        if *self == Self::Full {
            p.global = Some(super::align::align_global(a, b));
        }
        p
    }

    /// Whether the coverage rule lets a pair count at all (always, for `shorter`). `cov_a` / `cov_b`
    /// are the fractions of the first (query) and second (target) sequence inside the alignment.
    pub fn covered(&self, cov_a: f32, cov_b: f32) -> bool {
        match *self {
            Self::Shorter | Self::Full => true,
            Self::Aligned { coverage, cov_mode } => match cov_mode {
                1 => cov_b >= coverage,
                2 => cov_a >= coverage,
                _ => cov_a >= coverage && cov_b >= coverage,
            },
        }
    }

    /// The MMseqs2 `--seq-id-mode` whose `fident` matches this definition's denominator (for
    /// `full`, which MMseqs2 has not, the shorter length: its candidates are then a superset).
    pub fn seq_id_mode(&self) -> u8 {
        match self {
            Self::Shorter | Self::Full => 1,
            Self::Aligned { .. } => 0,
        }
    }

    /// MMseqs2's coverage settings for the clustering that names `cluster_id` (`-c`, `--cov-mode`).
    pub(crate) fn mmseqs_coverage(&self) -> (f32, u8) {
        match *self {
            Self::Shorter | Self::Full => (0.0, 0),
            Self::Aligned { coverage, cov_mode } => (coverage, cov_mode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(identical: u32, columns: u32, len_a: u32, len_b: u32, span: u32) -> PairAlignment {
        PairAlignment {
            identical,
            aligned_columns: columns,
            len_a,
            len_b,
            cov_a: span as f32 / len_a as f32,
            cov_b: span as f32 / len_b as f32,
            score: 0,
            global: None,
        }
    }

    #[test]
    fn shorter_divides_by_the_shorter_length_and_has_no_coverage_rule() {
        // A 70-residue domain, 49% identical, inside two 100-residue proteins.
        let p = pair(34, 70, 100, 120, 70);
        assert!((Identity::Shorter.of(&p) - 0.34).abs() < 1e-6);
        assert!(Identity::Shorter.covered(p.cov_a, p.cov_b));
        let aligned = Identity::Aligned {
            coverage: 0.8,
            cov_mode: 0,
        };
        assert!((aligned.of(&p) - 34.0 / 70.0).abs() < 1e-6);
        assert!(!aligned.covered(p.cov_a, p.cov_b), "70% < -c 0.8");
    }

    #[test]
    fn a_short_chance_alignment_cannot_inflate_the_shorter_identity() {
        // 9 identical of 12 aligned columns between two unrelated 200-residue proteins.
        let p = pair(9, 12, 200, 250, 12);
        assert_eq!(Identity::Shorter.of(&p), 9.0 / 200.0);
        assert_eq!(p.identity_aligned(), 0.75);
    }

    #[test]
    fn cov_modes_check_both_the_target_or_the_query() {
        let mode = |cov_mode| Identity::Aligned {
            coverage: 0.5,
            cov_mode,
        };
        assert!(!mode(0).covered(0.9, 0.3));
        assert!(!mode(1).covered(0.9, 0.3));
        assert!(mode(2).covered(0.9, 0.3));
        assert!(mode(1).covered(0.3, 0.9));
    }

    #[test]
    fn the_statement_names_the_definition_and_its_denominator() {
        assert_eq!(
            Identity::Shorter.statement(),
            "shorter: identical residues / length of the shorter sequence over the Smith-Waterman local \
             alignment (BLOSUM62, gap open 11, extend 1); no coverage rule"
        );
        let s = Identity::Aligned {
            coverage: 0.8,
            cov_mode: 1,
        }
        .statement();
        assert!(
            s.starts_with("aligned: identical residues / aligned columns (gap columns included)"),
            "{s}"
        );
        assert!(
            s.ends_with("covers at least 0.8 of the target (--cov-mode 1)"),
            "{s}"
        );
    }
}
