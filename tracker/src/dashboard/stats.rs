//! Uncertainty for groups of runs (usually one run per seed): a percentile bootstrap confidence
//! interval of the mean with a fixed resampling seed, and Welch's or the paired t-test between
//! two groups with its two-sided p-value.
//!
//! The bootstrap draws `RESAMPLES` resamples with SplitMix64 seeded with `SEED` (index
//! `floor(u · n)` with `u` the top 53 bits of each draw over 2⁵³), takes each resample's mean
//! (summed in draw order) and reads the quantiles with linear interpolation between order
//! statistics (numpy's default): the same numbers give the same interval, anywhere.
//! `cli/tests/peer/stats_check.py` redraws them in numpy and checks the tests against scipy.

/// Resamples per bootstrap interval.
pub const RESAMPLES: usize = 10_000;
/// The resampling seed.
pub const SEED: u64 = 0x5EED;
/// The interval's confidence level.
pub const LEVEL: f64 = 0.95;

/// A test name that is neither `welch` nor `paired`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("test must be welch or paired, got {0:?}")]
pub struct BadTest(pub String);

/// Which test compares a group with its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Welch's unequal-variances t-test (independent groups).
    Welch,
    /// The paired t-test, runs paired by a param (the seed): only pairs present in both count.
    Paired,
}

impl Test {
    /// `welch` or `paired`.
    ///
    /// # Errors
    /// Anything else, named.
    pub fn parse(s: &str) -> Result<Test, BadTest> {
        match s {
            "welch" => Ok(Test::Welch),
            "paired" => Ok(Test::Paired),
            other => Err(BadTest(other.to_owned())),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Test::Welch => "Welch's t-test, two-sided",
            Test::Paired => "paired t-test, two-sided",
        }
    }
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An index below `n`.
    fn below(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * n as f64) as usize).min(n - 1)
    }
}

/// The `q` quantile of sorted `v`, interpolating linearly between order statistics.
fn quantile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// The percentile bootstrap interval of the mean of `values` at `level`, from `resamples`
/// resamples drawn with `seed`; `None` below two values.
pub fn bootstrap_ci(values: &[f64], resamples: usize, seed: u64, level: f64) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 2 || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut sum = 0.0;
            for _ in 0..n {
                sum += values[rng.below(n)];
            }
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some((quantile(&means, tail), quantile(&means, 1.0 - tail)))
}

/// A t-test's statistic, degrees of freedom and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    pub t: f64,
    pub df: f64,
    pub p: f64,
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Welch's t-test of mean(a) − mean(b); `None` with fewer than two values on a side or no
/// variance on either.
pub fn welch(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    if sa + sb <= 0.0 {
        return None;
    }
    let t = (ma - mb) / (sa + sb).sqrt();
    let df =
        (sa + sb).powi(2) / (sa * sa / (a.len() as f64 - 1.0) + sb * sb / (b.len() as f64 - 1.0));
    Some(TTest {
        t,
        df,
        p: two_sided_p(t, df),
    })
}

/// The paired t-test of a − b (equal lengths, in pair order); `None` below two pairs or when
/// every difference is equal.
pub fn paired(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (m, v) = mean_var(&d);
    if v <= 0.0 {
        return None;
    }
    let t = m / (v / d.len() as f64).sqrt();
    let df = d.len() as f64 - 1.0;
    Some(TTest {
        t,
        df,
        p: two_sided_p(t, df),
    })
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2).
fn two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    inc_beta(df / (df + t * t), df / 2.0, 0.5).clamp(0.0, 1.0)
}

/// ln Γ(x), x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised incomplete beta function I_x(a, b) (continued fraction, modified Lentz).
fn inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(1.0 - x, b, a);
    }
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let num = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        for num in [
            num,
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + num / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f / a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_tests_match_published_values() {
        // scipy.stats.ttest_ind([0.81, 0.82, 0.80], [0.78, 0.79, 0.77], equal_var=False)
        let w = welch(&[0.81, 0.82, 0.80], &[0.78, 0.79, 0.77]).expect("welch");
        assert!((w.t - 3.674_234_614_174_777).abs() < 1e-9, "{w:?}");
        assert!((w.df - 4.0).abs() < 1e-9);
        assert!((w.p - 0.021_311_641_128_756_5).abs() < 1e-9, "{w:?}");
        // t = 2.0 with 10 degrees of freedom: p = 0.07338803477074...
        assert!((two_sided_p(2.0, 10.0) - 0.073_388_034_770_740_39).abs() < 1e-12);
        assert!((two_sided_p(0.0, 3.0) - 1.0).abs() < 1e-12);
        let p = paired(&[1.0, 2.0, 3.0, 4.0], &[1.1, 2.3, 3.2, 4.6]).expect("paired");
        assert_eq!(p.df, 3.0);
        // scipy.stats.ttest_rel(...): t = -2.7774602993176565, p = 0.06913686926442862
        assert!((p.t + 2.777_460_299_317_656_5).abs() < 1e-9, "{p:?}");
        assert!((p.p - 0.069_136_869_264_428_62).abs() < 1e-9, "{p:?}");
        assert_eq!(welch(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(
            welch(&[1.0, 1.0], &[2.0, 2.0]),
            None,
            "no variance: no test"
        );
        assert_eq!(paired(&[1.0, 2.0], &[0.0, 1.0]), None, "equal differences");
    }

    #[test]
    fn the_bootstrap_is_fixed_by_its_seed_and_brackets_the_mean() {
        let v = [0.61, 0.63, 0.60, 0.66, 0.62];
        let a = bootstrap_ci(&v, RESAMPLES, SEED, LEVEL).expect("ci");
        assert_eq!(Some(a), bootstrap_ci(&v, RESAMPLES, SEED, LEVEL));
        assert_ne!(Some(a), bootstrap_ci(&v, RESAMPLES, SEED + 1, LEVEL));
        let mean = v.iter().sum::<f64>() / 5.0;
        assert!(
            a.0 < mean && mean < a.1 && a.0 >= 0.60 && a.1 <= 0.66,
            "{a:?}"
        );
        assert_eq!(bootstrap_ci(&[1.0], RESAMPLES, SEED, LEVEL), None);
        // a constant sample has a zero-width interval
        assert_eq!(
            bootstrap_ci(&[2.0, 2.0, 2.0], 100, SEED, LEVEL),
            Some((2.0, 2.0))
        );
    }
}
