//! Exact pairwise alignment: Smith-Waterman (rust-bio, BLOSUM62, gap open 11, extend 1, as BLAST and
//! MMseqs2 score proteins), counted so that every identity definition ([`Identity`](super::Identity))
//! can be read off it: the score, identical residues, aligned columns, both lengths and both
//! coverages; and, for `--identity full`, the global alignment EMBOSS needle makes by default
//! (EBLOSUM62, gap open 10, extend 0.5, end gaps free but counted in the alignment's length).

use std::cell::RefCell;

use bio::alignment::AlignmentOperation;
use bio::alignment::pairwise::{Aligner, Scoring};

/// The counts of one exact local alignment of two sequences.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairAlignment {
    /// Identical residues (match columns).
    pub identical: u32,
    /// Columns of the local alignment, gap columns included.
    pub aligned_columns: u32,
    /// Length of the first sequence, residues.
    pub len_a: u32,
    /// Length of the second sequence, residues.
    pub len_b: u32,
    /// Fraction of the first sequence inside the local alignment.
    pub cov_a: f32,
    /// Fraction of the second sequence inside the local alignment.
    pub cov_b: f32,
    /// The local alignment's score (BLOSUM62; a gap of k residues costs 11 + k).
    pub score: i32,
    /// The global alignment's counts, for `--identity full` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalCounts>,
}

/// Identical residues and columns (end gaps included) of a global alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GlobalCounts {
    pub identical: u32,
    pub columns: u32,
}

impl PairAlignment {
    /// Identical residues / length of the shorter sequence, 0–1 (0 when one is empty).
    pub fn identity_shorter(&self) -> f32 {
        let shorter = self.len_a.min(self.len_b);
        if shorter == 0 {
            0.0
        } else {
            self.identical as f32 / shorter as f32
        }
    }

    /// Identical columns / aligned columns (gap columns included), 0–1 (0 when nothing aligns).
    pub fn identity_aligned(&self) -> f32 {
        if self.aligned_columns == 0 {
            0.0
        } else {
            self.identical as f32 / self.aligned_columns as f32
        }
    }

    /// Identical residues / columns of the global alignment, end gaps included (GraphPart's
    /// `full`), 0–1; 0 when the global alignment was not made.
    pub fn identity_full(&self) -> f32 {
        match self.global {
            Some(g) if g.columns > 0 => g.identical as f32 / g.columns as f32,
            _ => 0.0,
        }
    }
}

type Scorer = fn(u8, u8) -> i32;

thread_local! {
    // rust-bio scores a gap of k residues as open + extend·(k − 1): -12, -1 is BLAST's
    // existence 11 + extension 1 per residue (11 + k), the scheme BLAST's λ and K are for.
    static ALIGNER: RefCell<Aligner<Scorer>> =
        RefCell::new(Aligner::with_capacity(512, 512, -12, -1, bio::scores::blosum62 as Scorer));
}

/// Letters BLOSUM62 scores; anything else is aligned as `X`.
fn clean(seq: &[u8]) -> Vec<u8> {
    seq.iter()
        .map(|&c| {
            let c = c.to_ascii_uppercase();
            if b"ARNDCQEGHILKMFPSTWYVBZX".contains(&c) {
                c
            } else {
                b'X'
            }
        })
        .collect()
}

/// Identical residues, alignment columns (gap columns included) and clipped residues of an
/// alignment's operations.
fn count(ops: &[AlignmentOperation]) -> (u32, u32, u32) {
    let (mut identical, mut columns, mut clipped) = (0u32, 0u32, 0u32);
    for op in ops {
        match op {
            AlignmentOperation::Match => {
                identical += 1;
                columns += 1;
            }
            AlignmentOperation::Subst | AlignmentOperation::Del | AlignmentOperation::Ins => {
                columns += 1;
            }
            AlignmentOperation::Xclip(n) | AlignmentOperation::Yclip(n) => clipped += *n as u32,
        }
    }
    (identical, columns, clipped)
}

/// EMBOSS's EBLOSUM62 doubled, so needle's half-point gap extension is an integer.
fn blosum62_twice(a: u8, b: u8) -> i32 {
    2 * bio::scores::blosum62(a, b)
}

thread_local! {
    // needle's defaults doubled: a gap of k costs 10 + 0.5·(k − 1), i.e. 20 + (k − 1) half-points
    // (rust-bio scores a gap of k as open + extend·(k − 1)); leading and trailing gaps of either
    // sequence are free (clipped), as needle's end gaps.
    static GLOBAL: RefCell<Aligner<Scorer>> = RefCell::new(Aligner::with_capacity_and_scoring(
        512,
        512,
        Scoring::new(-20, -1, blosum62_twice as Scorer).xclip(0).yclip(0),
    ));
}

/// The global alignment of `a` and `b` with free end gaps: identical residues and columns, the
/// overhangs counted as gap columns.
pub fn align_global(a: &[u8], b: &[u8]) -> GlobalCounts {
    let (a, b) = (clean(a), clean(b));
    if a.is_empty() || b.is_empty() {
        return GlobalCounts {
            identical: 0,
            columns: (a.len() + b.len()) as u32,
        };
    }
    let aln = GLOBAL.with(|al| al.borrow_mut().custom(&a, &b));
    let (identical, columns, clipped) = count(&aln.operations);
    // The overhangs needle shows as end gaps.
    GlobalCounts {
        identical,
        columns: columns + clipped,
    }
}

/// Aligns `a` with `b` exactly (O(len_a · len_b)).
pub fn align(a: &[u8], b: &[u8]) -> PairAlignment {
    let (a, b) = (clean(a), clean(b));
    let (len_a, len_b) = (a.len() as u32, b.len() as u32);
    if a.is_empty() || b.is_empty() {
        return PairAlignment {
            identical: 0,
            aligned_columns: 0,
            len_a,
            len_b,
            cov_a: 0.0,
            cov_b: 0.0,
            score: 0,
            global: None,
        };
    }
    let aln = ALIGNER.with(|al| al.borrow_mut().local(&a, &b));
    let (identical, columns, _) = count(&aln.operations);
    PairAlignment {
        identical,
        aligned_columns: columns,
        len_a,
        len_b,
        cov_a: (aln.xend - aln.xstart) as f32 / a.len() as f32,
        cov_b: (aln.yend - aln.ystart) as f32 / b.len() as f32,
        score: aln.score,
        global: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sequences_are_fully_identical_and_covered() {
        let p = align(b"MKTAYIAKQRQISFVKSHFSRQ", b"MKTAYIAKQRQISFVKSHFSRQ");
        assert_eq!(
            (p.identity_aligned(), p.identity_shorter(), p.cov_a, p.cov_b),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!((p.identical, p.aligned_columns), (22, 22));
    }

    #[test]
    fn one_substitution_in_twenty_gives_ninety_five_percent() {
        let a = b"MKTAYIAKQRQISFVKSHFS";
        let mut b = a.to_vec();
        b[10] = b'W';
        let p = align(a, &b);
        assert_eq!(p.aligned_columns, 20);
        assert!((p.identity_aligned() - 0.95).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn unknown_letters_do_not_panic() {
        let p = align(b"MKUOJ*", b"mkxxxx");
        assert!(p.identity_aligned() <= 1.0 && p.identity_shorter() <= 1.0);
        assert_eq!((p.len_a, p.len_b), (6, 6));
    }

    #[test]
    fn the_global_alignment_counts_overhangs_as_gap_columns() {
        let long = b"MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ";
        let fragment = &long[10..40];
        let g = align_global(fragment, long);
        assert_eq!(
            g,
            GlobalCounts {
                identical: 30,
                columns: 66
            }
        );
        let same = align_global(long, long);
        assert_eq!((same.identical, same.columns), (66, 66));
        // One internal deletion of 3: 63 identical over 66 columns.
        let mut gapped = long.to_vec();
        gapped.drain(30..33);
        assert_eq!(
            align_global(long, &gapped),
            GlobalCounts {
                identical: 63,
                columns: 66
            }
        );
    }

    #[test]
    fn a_fragment_is_identical_by_the_shorter_length_but_covers_little_of_the_longer() {
        let long = b"MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ";
        let fragment = &long[10..40];
        let p = align(fragment, long);
        assert_eq!((p.identical, p.len_a, p.len_b), (30, 30, 66));
        assert_eq!(p.identity_shorter(), 1.0);
        assert!((p.cov_b - 30.0 / 66.0).abs() < 1e-6, "{p:?}");
    }
}
