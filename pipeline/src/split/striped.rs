//! Smith-Waterman scores without the alignment, for the many pairs whose score alone decides:
//! a pair whose best local score is not significant cannot link, so it needs no traceback.
//! Farrar's striped algorithm (Bioinformatics 23:156, 2007) on SSE2 (8 lanes of i16, in every
//! x86-64 CPU), with a linear-space scalar Gotoh elsewhere. Same scoring as
//! [`align`](super::align) — BLOSUM62, a gap of k residues costs 11 + k — and the same score:
//! checked against rust-bio's alignment on random and real sequences. A score that comes near
//! the i16 limit is recomputed in i32.

/// The letters BLOSUM62 scores, in the order of `SCORE`'s rows; any other letter is `X`.
const LETTERS: &[u8; 23] = b"ARNDCQEGHILKMFPSTWYVBZX";
const X: u8 = 22;
/// Cost of a gap's first residue (open 11 + extend 1) and of each further one.
const GAP_OPEN: i32 = 12;
const GAP_EXTEND: i32 = 1;

fn index(c: u8) -> u8 {
    let c = c.to_ascii_uppercase();
    LETTERS.iter().position(|&l| l == c).map_or(X, |i| i as u8)
}

/// BLOSUM62 by letter index (rust-bio's matrix, so both paths score alike).
fn table() -> [[i8; 23]; 23] {
    let mut t = [[0i8; 23]; 23];
    for (i, &a) in LETTERS.iter().enumerate() {
        for (j, &b) in LETTERS.iter().enumerate() {
            t[i][j] = bio::scores::blosum62(a, b) as i8;
        }
    }
    t
}

/// The best local alignment score of `a` and `b`.
pub fn score(a: &[u8], b: &[u8]) -> i32 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let t = table();
    let a: Vec<u8> = a.iter().map(|&c| index(c)).collect();
    let b: Vec<u8> = b.iter().map(|&c| index(c)).collect();
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `sse2::score` only needs SSE2, which every x86-64 CPU has (it is part of the
        // architecture's baseline, enabled in every x86_64 target); it touches no raw pointer.
        #[allow(unsafe_code)]
        let striped = unsafe { sse2::score(&a, &b, &t) };
        if let Some(s) = striped {
            return s;
        }
    }
    scalar(&a, &b, &t)
}

/// Gotoh's recurrences in one column of i32 (exact at any length).
fn scalar(a: &[u8], b: &[u8], t: &[[i8; 23]; 23]) -> i32 {
    const NEG: i32 = i32::MIN / 4;
    let m = a.len();
    // h[i]: best score ending at (i, current column), from the previous column until overwritten;
    // e[i]: best ending with a gap along b at row i.
    let mut h = vec![0i32; m + 1];
    let mut e = vec![NEG; m + 1];
    let mut best = 0;
    for &cb in b {
        let row = &t[cb as usize];
        let mut diag = 0;
        let mut up = 0;
        let mut f = NEG;
        for i in 1..=m {
            e[i] = (e[i] - GAP_EXTEND).max(h[i] - GAP_OPEN);
            f = (f - GAP_EXTEND).max(up - GAP_OPEN);
            let here = (diag + i32::from(row[a[i - 1] as usize]))
                .max(e[i])
                .max(f)
                .max(0);
            diag = h[i];
            h[i] = here;
            up = here;
            best = best.max(here);
        }
    }
    best
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_adds_epi16, _mm_cmpgt_epi16, _mm_cvtsi128_si32, _mm_max_epi16,
        _mm_movemask_epi8, _mm_or_si128, _mm_set_epi16, _mm_set1_epi16, _mm_setzero_si128,
        _mm_slli_si128, _mm_srli_si128, _mm_subs_epi16,
    };

    const LANES: usize = 8;
    /// Above this the i16 lanes may have saturated: the caller recomputes in i32.
    const SAFE: i32 = i16::MAX as i32 - 64;

    #[target_feature(enable = "sse2")]
    fn hmax(v: __m128i) -> i32 {
        let v = _mm_max_epi16(v, _mm_srli_si128::<8>(v));
        let v = _mm_max_epi16(v, _mm_srli_si128::<4>(v));
        let v = _mm_max_epi16(v, _mm_srli_si128::<2>(v));
        i32::from(_mm_cvtsi128_si32(v) as i16)
    }

    /// Farrar's striped local alignment score; None when it may have saturated.
    #[target_feature(enable = "sse2")]
    pub(super) fn score(a: &[u8], b: &[u8], t: &[[i8; 23]; 23]) -> Option<i32> {
        let m = a.len();
        let seg = m.div_ceil(LANES);
        // The query profile: for each target letter, query position k·seg + j in lane k of
        // vector j; positions past the end score 0 (they only follow the query, never feed it).
        let mut profile: Vec<__m128i> = Vec::with_capacity(23 * seg);
        for row in t {
            for j in 0..seg {
                let s = |k: usize| {
                    let i = k * seg + j;
                    if i < m {
                        i16::from(row[a[i] as usize])
                    } else {
                        0
                    }
                };
                profile.push(_mm_set_epi16(
                    s(7),
                    s(6),
                    s(5),
                    s(4),
                    s(3),
                    s(2),
                    s(1),
                    s(0),
                ));
            }
        }
        let zero = _mm_setzero_si128();
        // No vertical gap enters a column from above its first row, nor a lane from "before" the
        // query: i16::MIN, not 0 (0 would keep the lazy loop below re-entering lane 0 forever).
        let none = _mm_set1_epi16(i16::MIN);
        let none_lane0 = _mm_set_epi16(0, 0, 0, 0, 0, 0, 0, i16::MIN);
        let gap_open = _mm_set1_epi16(super::GAP_OPEN as i16);
        let gap_extend = _mm_set1_epi16(super::GAP_EXTEND as i16);
        let mut load = vec![zero; seg];
        let mut store = vec![zero; seg];
        let mut e = vec![zero; seg];
        let mut best = zero;
        for &c in b {
            let prof = &profile[c as usize * seg..(c as usize + 1) * seg];
            let mut f = none;
            let mut h = _mm_slli_si128::<2>(store[seg - 1]);
            std::mem::swap(&mut load, &mut store);
            for j in 0..seg {
                h = _mm_adds_epi16(h, prof[j]);
                best = _mm_max_epi16(best, h);
                h = _mm_max_epi16(_mm_max_epi16(h, e[j]), _mm_max_epi16(f, zero));
                store[j] = h;
                let gap = _mm_subs_epi16(h, gap_open);
                e[j] = _mm_max_epi16(_mm_subs_epi16(e[j], gap_extend), gap);
                f = _mm_max_epi16(_mm_subs_epi16(f, gap_extend), gap);
                h = load[j];
            }
            // Gaps along the query that cross a segment boundary: carried lane to lane until they
            // no longer improve any cell.
            f = _mm_or_si128(_mm_slli_si128::<2>(f), none_lane0);
            let mut j = 0;
            while _mm_movemask_epi8(_mm_cmpgt_epi16(f, _mm_subs_epi16(store[j], gap_open))) != 0 {
                let h = _mm_max_epi16(store[j], f);
                store[j] = h;
                e[j] = _mm_max_epi16(e[j], _mm_subs_epi16(h, gap_open));
                f = _mm_subs_epi16(f, gap_extend);
                j += 1;
                if j == seg {
                    j = 0;
                    f = _mm_or_si128(_mm_slli_si128::<2>(f), none_lane0);
                }
            }
        }
        let s = hmax(best);
        (s < SAFE).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::rng::SplitMix;

    fn random(rng: &mut SplitMix, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| LETTERS[(rng.next() % 20) as usize])
            .collect()
    }

    /// rust-bio's local alignment score with the same scheme.
    fn reference(a: &[u8], b: &[u8]) -> i32 {
        let mut al = bio::alignment::pairwise::Aligner::with_capacity(
            a.len(),
            b.len(),
            -12,
            -1,
            bio::scores::blosum62,
        );
        al.local(a, b).score
    }

    #[test]
    fn striped_and_scalar_scores_equal_rust_bio_on_random_and_related_pairs() {
        let mut rng = SplitMix(42);
        for n in 0..400 {
            let la = 1 + (rng.next() % 300) as usize;
            let lb = 1 + (rng.next() % 300) as usize;
            let a = random(&mut rng, la);
            let mut b = random(&mut rng, lb);
            if n % 3 == 0 {
                // A mutated, gapped copy of part of `a`: long alignments with gaps.
                b = a.clone();
                for _ in 0..la / 5 {
                    let i = (rng.next() as usize) % b.len();
                    match rng.next() % 3 {
                        0 => b[i] = LETTERS[(rng.next() % 20) as usize],
                        1 if b.len() > 2 => {
                            b.remove(i);
                        }
                        _ => b.insert(i, LETTERS[(rng.next() % 20) as usize]),
                    }
                }
            }
            let want = reference(&a, &b);
            let t = table();
            let (ia, ib): (Vec<u8>, Vec<u8>) = (
                a.iter().map(|&c| index(c)).collect(),
                b.iter().map(|&c| index(c)).collect(),
            );
            assert_eq!(scalar(&ia, &ib, &t), want, "scalar, pair {n}");
            assert_eq!(score(&a, &b), want, "striped, pair {n}");
        }
        // Letters outside BLOSUM62 score as X, as `align` cleans them.
        assert_eq!(score(b"MKUOJ*", b"mkxxxx"), reference(b"MKXXXX", b"MKXXXX"));
    }

    #[test]
    fn a_score_near_the_i16_limit_is_recomputed_exactly() {
        // 3,500 tryptophans score 11 each: 38,500, past what 16-bit lanes hold.
        let w = vec![b'W'; 3500];
        assert_eq!(score(&w, &w), 38_500);
    }
}
