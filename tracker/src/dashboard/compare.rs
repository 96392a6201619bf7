//! Groups against a baseline: which group each one is compared with, and per metric column the
//! bootstrap interval of every group's mean, its Δ to the baseline's mean and a t-test's p-value.
//!
//! A baseline is named by part of a group key (`[["params.model", "esm2"]]`): each group is
//! compared with the group whose key is its own with those fields set to the baseline's values
//! (so with rows = model and columns = task, every model's EC cell meets the baseline model's EC
//! cell). A group that is its own baseline, or whose baseline group is absent, has no Δ.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::groups::{Group, RunFacts};
use super::stats::{self, TTest, Test};

/// Part of a group key: (field, value) pairs.
pub type KeyPart = Vec<(String, Option<String>)>;

/// A baseline naming a field the groups are not keyed by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("baseline field {0:?} is not one of the group key's fields ({1})")]
pub struct BadBaseline(pub String, pub String);

/// For each group, the index of its baseline group (`None`: itself the baseline, or no match).
///
/// # Errors
/// A baseline field that no group key has.
pub fn baseline_of(groups: &[Group], base: &KeyPart) -> Result<Vec<Option<usize>>, BadBaseline> {
    let fields: Vec<&str> = groups
        .first()
        .map(|g| g.key.iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    for (f, _) in base {
        if !groups.is_empty() && !groups.iter().any(|g| g.key.iter().any(|(k, _)| k == f)) {
            return Err(BadBaseline(f.clone(), fields.join(", ")));
        }
    }
    let at: HashMap<&KeyPart, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (&g.key, i))
        .collect();
    Ok(groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut target = g.key.clone();
            for (f, v) in base {
                for (k, kv) in &mut target {
                    if k == f {
                        kv.clone_from(v);
                    }
                }
            }
            at.get(&target).copied().filter(|&b| b != i)
        })
        .collect())
}

/// Per column statistics beyond mean ± sd: the bootstrap interval of each group's mean, and
/// against its baseline group Δ (mean − baseline mean) with `test`'s t, df and p.
#[derive(Debug)]
pub struct Comparison<'a> {
    pub groups: &'a [Group],
    pub facts: HashMap<&'a str, &'a RunFacts>,
    pub baseline_of: Option<Vec<Option<usize>>>,
    pub test: Test,
    /// The param that pairs runs for the paired test (the seed).
    pub pair_by: String,
}

impl Comparison<'_> {
    /// Column `c`'s values of group `g`, by pairing key (runs without the key, or sharing one,
    /// pair with nothing).
    fn values(&self, g: usize, c: usize) -> (Vec<f64>, BTreeMap<String, f64>) {
        let mut all = Vec::new();
        let mut by_pair: BTreeMap<String, f64> = BTreeMap::new();
        let mut twice = Vec::new();
        for id in &self.groups[g].runs {
            let Some(f) = self.facts.get(id.as_str()) else {
                continue;
            };
            let Some(v) = f.values.get(c).copied().flatten() else {
                continue;
            };
            all.push(v);
            if let Some(k) = f.params.get(&self.pair_by)
                && by_pair.insert(k.clone(), v).is_some()
            {
                twice.push(k.clone());
            }
        }
        for k in twice {
            by_pair.remove(&k);
        }
        (all, by_pair)
    }

    fn test(&self, g: usize, b: usize, c: usize) -> Option<TTest> {
        let (a, pa) = self.values(g, c);
        let (base, pb) = self.values(b, c);
        match self.test {
            Test::Welch => stats::welch(&a, &base),
            Test::Paired => {
                let (x, y): (Vec<f64>, Vec<f64>) = pa
                    .iter()
                    .filter_map(|(k, v)| pb.get(k).map(|w| (*v, *w)))
                    .unzip();
                stats::paired(&x, &y)
            }
        }
    }

    /// `ci_lo`, `ci_hi` and, with a baseline, `delta`, `t`, `df`, `p` and `pairs` for column `c`
    /// (whose means are `means`), into `out`.
    pub fn column(
        &self,
        c: usize,
        means: &[Option<f64>],
        out: &mut serde_json::Map<String, Value>,
    ) {
        let cis: Vec<Option<(f64, f64)>> = (0..self.groups.len())
            .map(|g| {
                stats::bootstrap_ci(
                    &self.values(g, c).0,
                    stats::RESAMPLES,
                    stats::SEED,
                    stats::LEVEL,
                )
            })
            .collect();
        out.insert(
            "ci_lo".into(),
            json!(cis.iter().map(|x| x.map(|c| c.0)).collect::<Vec<_>>()),
        );
        out.insert(
            "ci_hi".into(),
            json!(cis.iter().map(|x| x.map(|c| c.1)).collect::<Vec<_>>()),
        );
        let Some(base) = &self.baseline_of else {
            return;
        };
        let mut delta = Vec::new();
        let mut tests = Vec::new();
        for (g, b) in base.iter().enumerate() {
            let d = b.and_then(|b| Some(means[g]? - means[b]?));
            delta.push(d);
            tests.push(b.and_then(|b| self.test(g, b, c)));
        }
        out.insert("delta".into(), json!(delta));
        out.insert(
            "t".into(),
            json!(tests.iter().map(|t| t.map(|t| t.t)).collect::<Vec<_>>()),
        );
        out.insert(
            "df".into(),
            json!(tests.iter().map(|t| t.map(|t| t.df)).collect::<Vec<_>>()),
        );
        out.insert(
            "p".into(),
            json!(tests.iter().map(|t| t.map(|t| t.p)).collect::<Vec<_>>()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(key: &[(&str, &str)]) -> Group {
        Group {
            key: key
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
                .collect(),
            runs: Vec::new(),
            stats: Vec::new(),
        }
    }

    #[test]
    fn each_group_meets_the_baseline_with_its_other_fields_equal() {
        let gs = [
            group(&[("params.model", "esm2"), ("params.task", "ec")]),
            group(&[("params.model", "esm2"), ("params.task", "go")]),
            group(&[("params.model", "fusion"), ("params.task", "ec")]),
            group(&[("params.model", "fusion"), ("params.task", "go")]),
            group(&[("params.model", "gearnet"), ("params.task", "msp")]),
        ];
        let base = vec![("params.model".to_owned(), Some("esm2".to_owned()))];
        assert_eq!(
            baseline_of(&gs, &base).expect("baseline"),
            vec![None, None, Some(0), Some(1), None]
        );
        let bad = vec![("params.lr".to_owned(), Some("1".to_owned()))];
        let e = baseline_of(&gs, &bad).expect_err("not a key field");
        assert!(e.to_string().contains("params.lr") && e.to_string().contains("params.model"));
    }
}
