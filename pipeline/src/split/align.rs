//! Exact pairwise identity: Smith-Waterman (rust-bio, BLOSUM62, gap open 11, extend 1, as BLAST and
//! MMseqs2 score proteins) and the identity definition the split certificate states:
//! identical columns / aligned columns of the local alignment (gap columns included), with the
//! coverage of each sequence by the aligned region.

use std::cell::RefCell;

use bio::alignment::AlignmentOperation;
use bio::alignment::pairwise::Aligner;

/// Identity and coverage of one aligned pair.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairIdentity {
    /// Identical columns / aligned columns, 0–1.
    pub identity: f32,
    /// Fraction of the first sequence inside the local alignment.
    pub cov_a: f32,
    /// Fraction of the second sequence inside the local alignment.
    pub cov_b: f32,
    pub aligned_columns: u32,
}

type Scorer = fn(u8, u8) -> i32;

thread_local! {
    static ALIGNER: RefCell<Aligner<Scorer>> =
        RefCell::new(Aligner::with_capacity(512, 512, -11, -1, bio::scores::blosum62 as Scorer));
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

/// Aligns `a` with `b` exactly (O(len_a · len_b)).
pub fn align(a: &[u8], b: &[u8]) -> PairIdentity {
    let (a, b) = (clean(a), clean(b));
    if a.is_empty() || b.is_empty() {
        return PairIdentity {
            identity: 0.0,
            cov_a: 0.0,
            cov_b: 0.0,
            aligned_columns: 0,
        };
    }
    let aln = ALIGNER.with(|al| al.borrow_mut().local(&a, &b));
    let mut identical = 0u32;
    let mut columns = 0u32;
    for op in &aln.operations {
        match op {
            AlignmentOperation::Match => {
                identical += 1;
                columns += 1;
            }
            AlignmentOperation::Subst | AlignmentOperation::Del | AlignmentOperation::Ins => {
                columns += 1
            }
            AlignmentOperation::Xclip(_) | AlignmentOperation::Yclip(_) => {}
        }
    }
    PairIdentity {
        identity: if columns == 0 {
            0.0
        } else {
            identical as f32 / columns as f32
        },
        cov_a: (aln.xend - aln.xstart) as f32 / a.len() as f32,
        cov_b: (aln.yend - aln.ystart) as f32 / b.len() as f32,
        aligned_columns: columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sequences_are_fully_identical_and_covered() {
        let p = align(b"MKTAYIAKQRQISFVKSHFSRQ", b"MKTAYIAKQRQISFVKSHFSRQ");
        assert_eq!(
            (p.identity, p.cov_a, p.cov_b, p.aligned_columns),
            (1.0, 1.0, 1.0, 22)
        );
    }

    #[test]
    fn one_substitution_in_twenty_gives_ninety_five_percent() {
        let a = b"MKTAYIAKQRQISFVKSHFS";
        let mut b = a.to_vec();
        b[10] = b'W';
        let p = align(a, &b);
        assert_eq!(p.aligned_columns, 20);
        assert!((p.identity - 0.95).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn unknown_letters_do_not_panic() {
        let p = align(b"MKUOJ*", b"mkxxxx");
        assert!(p.identity <= 1.0);
    }
}
