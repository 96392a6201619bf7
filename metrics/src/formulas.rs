//! TorchDrug's metric formulas (`torchdrug/metrics/metric.py` @ v0.2.1, spec §3.3), accumulated in
//! f64 over one global descending order of the scores.
//!
//! TorchDrug walks the order of torch's unstable `argsort`, so with tied scores its values depend
//! on how the sort happened to break the ties. [`Ties::Index`] (default) fixes that order: tied
//! scores in increasing row-major index, i.e. TorchDrug's formulas over a stable sort.
//! [`Ties::Grouped`] makes every distinct score one threshold that tied items cross together,
//! which is what sklearn's `roc_auc_score` and `average_precision_score` do.

use rayon::prelude::*;

use super::predictions::{MetricError, Predictions};

/// How tied scores are ordered; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ties {
    #[default]
    Index,
    Grouped,
}

/// TorchDrug's guard against division by zero, kept so values match where a denominator is 0.
const EPS: f64 = 1e-10;

/// The metrics of one predictions table, by TorchDrug's names, in a fixed order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scores {
    pub metrics: Vec<(String, f64)>,
}

impl Scores {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }
}

/// Scores a table: `f1_max`, `auprc@micro`, `auroc@micro`, then with `per_task` (or when there is
/// one task, as MSP) `auroc [task]` and `auprc [task]` for each column.
///
/// # Errors
/// More than 2³² − 1 predictions (the sort packs indices in 32 bits).
pub fn score(p: &Predictions, ties: Ties, per_task: bool) -> Result<Scores, MetricError> {
    if p.prediction.len() >= u32::MAX as usize {
        return Err(MetricError::Invalid(format!(
            "{} predictions: at most {} are supported",
            p.prediction.len(),
            u32::MAX - 1
        )));
    }
    let ranked = rank(&p.prediction, &p.target);
    let mut metrics = vec![
        (
            "f1_max".to_owned(),
            f1_max_ranked(&p.target, p.width, &ranked, ties),
        ),
        ("auprc@micro".to_owned(), prc_ranked(&ranked, ties)),
        ("auroc@micro".to_owned(), roc_ranked(&ranked, ties)),
    ];
    if per_task || p.width == 1 {
        for j in 0..p.width {
            let pred: Vec<f32> = p
                .prediction
                .iter()
                .skip(j)
                .step_by(p.width)
                .copied()
                .collect();
            let target: Vec<f32> = p.target.iter().skip(j).step_by(p.width).copied().collect();
            let name = p.task_name(j);
            metrics.push((
                format!("auroc [{name}]"),
                area_under_roc(&pred, &target, ties),
            ));
            metrics.push((
                format!("auprc [{name}]"),
                area_under_prc(&pred, &target, ties),
            ));
        }
    }
    Ok(Scores { metrics })
}

/// Order key of a score: ascending `u32` order is ascending score order (−0.0 counts as 0.0, as
/// torch's comparison does). NaN never reaches here ([`Predictions`] refuses it).
fn ascending_key(x: f32) -> u32 {
    let x = if x == 0.0 { 0.0 } else { x };
    let b = x.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

/// Scores in descending order (ties by increasing index), with what the sweeps read gathered
/// into that order once, so each sweep walks contiguous memory instead of jumping through the
/// targets.
struct Ranked {
    /// Index of the k-th highest score.
    index: Vec<u32>,
    /// Its order key: equal keys are tied scores.
    key: Vec<u32>,
    positive: Vec<bool>,
}

fn rank(scores: &[f32], target: &[f32]) -> Ranked {
    let mut packed: Vec<u64> = scores
        .par_iter()
        .enumerate()
        .map(|(i, &s)| (u64::from(!ascending_key(s)) << 32) | i as u64)
        .collect();
    packed.par_sort_unstable();
    Ranked {
        index: packed.par_iter().map(|&w| w as u32).collect(),
        key: packed.par_iter().map(|&w| (w >> 32) as u32).collect(),
        positive: packed
            .par_iter()
            .map(|&w| target[w as u32 as usize] == 1.0)
            .collect(),
    }
}

/// Calls `f(start, end)` for each run of the order that forms one threshold: single items under
/// [`Ties::Index`], runs of equal scores under [`Ties::Grouped`].
fn for_each_threshold(r: &Ranked, ties: Ties, mut f: impl FnMut(usize, usize)) {
    let n = r.index.len();
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        if ties == Ties::Grouped {
            while end < n && r.key[end] == r.key[start] {
                end += 1;
            }
        }
        f(start, end);
        start = end;
    }
}

/// TorchDrug's `area_under_roc`: Σ over negatives of the positives ranked above, / (P·N + 1e-10).
/// Grouped: a positive tied with a negative counts ½ (sklearn's trapezoid).
pub fn area_under_roc(pred: &[f32], target: &[f32], ties: Ties) -> f64 {
    roc_ranked(&rank(pred, target), ties)
}

fn roc_ranked(r: &Ranked, ties: Ties) -> f64 {
    let (mut hits, mut sum, mut negatives) = (0f64, 0f64, 0f64);
    if ties == Ties::Index {
        for &p in &r.positive {
            if p {
                hits += 1.0;
            } else {
                sum += hits;
                negatives += 1.0;
            }
        }
    } else {
        for_each_threshold(r, ties, |a, b| {
            let pos = r.positive[a..b].iter().filter(|&&p| p).count() as f64;
            let neg = (b - a) as f64 - pos;
            sum += neg * (hits + pos / 2.0);
            hits += pos;
            negatives += neg;
        });
    }
    sum / (hits * negatives + EPS)
}

/// TorchDrug's `area_under_prc`: the mean over positives of precision at their rank,
/// Σ / (P + 1e-10). Grouped: sklearn's average precision, Σ over thresholds of
/// (positives crossing) × precision there, / P.
pub fn area_under_prc(pred: &[f32], target: &[f32], ties: Ties) -> f64 {
    prc_ranked(&rank(pred, target), ties)
}

fn prc_ranked(r: &Ranked, ties: Ties) -> f64 {
    let (mut hits, mut sum) = (0f64, 0f64);
    for_each_threshold(r, ties, |a, b| {
        let pos = r.positive[a..b].iter().filter(|&&p| p).count() as f64;
        hits += pos;
        if pos > 0.0 {
            sum += pos * hits / b as f64;
        }
    });
    sum / (hits + EPS)
}

/// TorchDrug's `f1_max` over a row-major `[rows, width]` matrix: at each threshold, precision is
/// averaged over the proteins with at least one prediction above it, recall over all proteins
/// (`tp / (positives + 1e-10)`), and F1 = 2PR / (P + R + 1e-10); the maximum over thresholds.
pub fn f1_max(pred: &[f32], target: &[f32], width: usize, ties: Ties) -> f64 {
    f1_max_ranked(target, width, &rank(pred, target), ties)
}

fn f1_max_ranked(target: &[f32], width: usize, r: &Ranked, ties: Ties) -> f64 {
    if width == 0 || target.is_empty() {
        return 0.0;
    }
    let rows = target.len() / width;
    let recall_step: Vec<f64> = target
        .par_chunks(width)
        .map(|row| 1.0 / (row.iter().filter(|&&t| t == 1.0).count() as f64 + EPS))
        .collect();
    let mut tp = vec![0u32; rows];
    let mut seen = vec![0u32; rows];
    let (mut precision_sum, mut started, mut recall_sum, mut best) = (0f64, 0f64, 0f64, 0f64);
    for_each_threshold(r, ties, |a, b| {
        for k in a..b {
            let row = r.index[k] as usize / width;
            let before = if seen[row] == 0 {
                started += 1.0;
                0.0
            } else {
                f64::from(tp[row]) / f64::from(seen[row])
            };
            seen[row] += 1;
            if r.positive[k] {
                tp[row] += 1;
                recall_sum += recall_step[row];
            }
            precision_sum += f64::from(tp[row]) / f64::from(seen[row]) - before;
        }
        let p = precision_sum / started;
        let rec = recall_sum / rows as f64;
        let f = 2.0 * p * rec / (p + rec + EPS);
        if f > best {
            best = f;
        }
    });
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_and_prc_on_a_hand_worked_ranking() {
        // Descending: 0.9 (1), 0.8 (0), 0.7 (1), 0.1 (0).
        let pred = [0.1, 0.9, 0.7, 0.8];
        let target = [0.0, 1.0, 1.0, 0.0];
        // Negatives see 1 and 2 positives above: (1 + 2) / (2 · 2).
        assert!((area_under_roc(&pred, &target, Ties::Index) - 0.75).abs() < 1e-9);
        // Positives at ranks 1 and 3: (1/1 + 2/3) / 2.
        let ap = (1.0 + 2.0 / 3.0) / 2.0;
        assert!((area_under_prc(&pred, &target, Ties::Index) - ap).abs() < 1e-9);
    }

    #[test]
    fn ties_by_index_follow_row_major_order_and_grouped_ties_count_half() {
        // All tied: index order puts the negative (index 0) first.
        let pred = [0.5, 0.5];
        let target = [0.0, 1.0];
        assert!(area_under_roc(&pred, &target, Ties::Index).abs() < 1e-9);
        assert!((area_under_roc(&pred, &target, Ties::Grouped) - 0.5).abs() < 1e-9);
        assert!((area_under_prc(&pred, &target, Ties::Index) - 0.5).abs() < 1e-9);
        assert!((area_under_prc(&pred, &target, Ties::Grouped) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn no_positives_gives_zero_not_nan() {
        let pred = [0.3, 0.2];
        let target = [0.0, 0.0];
        for ties in [Ties::Index, Ties::Grouped] {
            assert_eq!(area_under_roc(&pred, &target, ties), 0.0);
            assert_eq!(area_under_prc(&pred, &target, ties), 0.0);
            assert_eq!(f1_max(&pred, &target, 2, ties), 0.0);
        }
    }

    #[test]
    fn f1_max_of_a_perfect_ranking_is_one() {
        // Two proteins, three terms; every positive scored above every negative.
        let pred = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3];
        let target = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let f = f1_max(&pred, &target, 3, Ties::Index);
        assert!((f - 1.0).abs() < 1e-9, "{f}");
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        assert_eq!(ascending_key(-0.0), ascending_key(0.0));
        assert!(ascending_key(-1.0) < ascending_key(-0.5));
        assert!(ascending_key(0.5) < ascending_key(f32::INFINITY));
    }
}
