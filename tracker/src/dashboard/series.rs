//! Curves downsampled on the server for drawing: a series of (step, value) points cut to about
//! `budget` points that always keeps the first and the last point, the minimum and maximum of
//! every bucket (so spikes and the global extremes survive), and one marked point — the best
//! valid epoch — wherever it falls. Points come in (step, timestamp, value) order, the order of
//! the metric history.

/// One point of a metric's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: i64,
    pub timestamp: i64,
    pub value: f64,
}

/// Indices into `points` to draw: at most about `budget` (never fewer than what must be kept),
/// ascending. `keep` is an index that must survive (the best-valid point), if any.
///
/// Buckets are equal runs of indices; each contributes its minimum and its maximum (NaN never
/// counts as either, but a bucket of NaN keeps its first point, so gaps stay visible).
pub fn downsample(points: &[Point], budget: usize, keep: Option<usize>) -> Vec<usize> {
    let n = points.len();
    if n <= budget.max(4) {
        return (0..n).collect();
    }
    let buckets = (budget.saturating_sub(2) / 2).max(1);
    let mut out = Vec::with_capacity(budget + 3);
    out.push(0);
    for b in 0..buckets {
        let lo = 1 + b * (n - 2) / buckets;
        let hi = 1 + (b + 1) * (n - 2) / buckets;
        let (mut min, mut max) = (None::<usize>, None::<usize>);
        for i in lo..hi {
            let v = points[i].value;
            if v.is_nan() {
                continue;
            }
            if min.is_none_or(|m| v < points[m].value) {
                min = Some(i);
            }
            if max.is_none_or(|m| v > points[m].value) {
                max = Some(i);
            }
        }
        match (min, max) {
            (Some(a), Some(b)) => {
                out.push(a.min(b));
                out.push(a.max(b));
            }
            _ if lo < hi => out.push(lo),
            _ => {}
        }
    }
    out.push(n - 1);
    if let Some(k) = keep.filter(|&k| k < n) {
        out.push(k);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The index of the best point by value (`maximize` or not), the first of equals; NaN never wins.
pub fn best(points: &[Point], maximize: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, p) in points.iter().enumerate() {
        if p.value.is_nan() {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) if maximize => p.value > points[b].value,
            Some(b) => p.value < points[b].value,
        };
        if better {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(n: usize, seed: u64) -> Vec<Point> {
        let mut x = seed;
        let mut v = 0.0;
        (0..n)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v += ((x >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
                Point {
                    step: i as i64,
                    timestamp: i as i64,
                    value: v,
                }
            })
            .collect()
    }

    #[test]
    fn a_million_points_become_about_the_budget_keeping_ends_extremes_and_the_marked_point() {
        let mut pts = walk(1_000_000, 7);
        pts[123_457].value = 1e9; // a spike
        pts[765_431].value = -1e9;
        let keep = 500_001;
        let idx = downsample(&pts, 2_000, Some(keep));
        assert!(idx.len() <= 2_003, "{}", idx.len());
        assert!(idx.len() >= 1_900, "{}", idx.len());
        assert!(idx.windows(2).all(|w| w[0] < w[1]), "ascending, unique");
        for must in [0, pts.len() - 1, 123_457, 765_431, keep] {
            assert!(idx.binary_search(&must).is_ok(), "{must} dropped");
        }
        // every bucket's extremes: the drawn envelope is the data's envelope
        let max = pts.iter().map(|p| p.value).fold(f64::MIN, f64::max);
        let min = pts.iter().map(|p| p.value).fold(f64::MAX, f64::min);
        let drawn: Vec<f64> = idx.iter().map(|&i| pts[i].value).collect();
        assert_eq!(drawn.iter().copied().fold(f64::MIN, f64::max), max);
        assert_eq!(drawn.iter().copied().fold(f64::MAX, f64::min), min);
    }

    #[test]
    fn short_series_are_returned_whole_and_nan_never_wins() {
        let pts = walk(10, 1);
        assert_eq!(downsample(&pts, 100, None), (0..10).collect::<Vec<_>>());
        assert_eq!(downsample(&[], 100, None), Vec::<usize>::new());
        let mut pts = walk(50, 2);
        for p in &mut pts[10..30] {
            p.value = f64::NAN;
        }
        let idx = downsample(&pts, 10, None);
        assert!(idx.contains(&0) && idx.contains(&49));
        let b = best(&pts, true).expect("best");
        assert!(!pts[b].value.is_nan());
        assert!(
            pts.iter()
                .all(|p| p.value.is_nan() || p.value <= pts[b].value)
        );
        let w = best(&pts, false).expect("worst");
        assert!(
            pts.iter()
                .all(|p| p.value.is_nan() || p.value >= pts[w].value)
        );
        assert_eq!(best(&[], true), None);
    }
}
