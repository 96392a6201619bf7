//! Runs grouped by params, tags or datasets — or by "every param but these" (all but the seed) —
//! with mean ± sd and n of each requested value, over every run that matches (never a sample).

use std::collections::BTreeMap;

/// How runs are grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// By these fields (`params.K`, `tags.K`, `dataset`), in this order.
    Fields(Vec<String>),
    /// By every param except these keys (`seed`, …): runs that differ only in them are one group.
    AllParamsBut(Vec<String>),
}

/// A `group_by` that names no field, or a field runs cannot be grouped by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadGroupBy {
    #[error("group_by is empty")]
    Empty,
    #[error("group_by field {0:?}: use params.KEY, tags.KEY, dataset or all-but:KEY,…")]
    Field(String),
}

impl GroupBy {
    /// `params.model,tags.task` or `all-but:seed,params.fold`.
    ///
    /// # Errors
    /// An empty spec, or a field that is not `params.*`, `tags.*` or `dataset`.
    pub fn parse(spec: &str) -> Result<GroupBy, BadGroupBy> {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(rest) = spec.strip_prefix("all-but:") {
            let keys = list(rest)
                .into_iter()
                .map(|k| k.strip_prefix("params.").unwrap_or(&k).to_owned())
                .collect();
            return Ok(GroupBy::AllParamsBut(keys));
        }
        let fields = list(spec);
        if fields.is_empty() {
            return Err(BadGroupBy::Empty);
        }
        for f in &fields {
            if !(f.starts_with("params.") || f.starts_with("tags.") || f == "dataset") {
                return Err(BadGroupBy::Field(f.clone()));
            }
        }
        Ok(GroupBy::Fields(fields))
    }
}

/// What grouping needs of one run.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub run_id: String,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Names of the datasets linked to the run, sorted.
    pub datasets: Vec<String>,
    /// One value per requested column (None: missing or NaN).
    pub values: Vec<Option<f64>>,
}

/// Mean, sample standard deviation (n − 1; None below 2) and n of the values present.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub n: usize,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
}

pub fn stat(values: impl IntoIterator<Item = f64>) -> Stat {
    let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return Stat {
            n,
            mean: None,
            sd: None,
        };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let sd = (n > 1)
        .then(|| (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64).sqrt());
    Stat {
        n,
        mean: Some(mean),
        sd,
    }
}

/// One group: its key (field → value, None where a run lacks it), its runs and a stat per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: Vec<(String, Option<String>)>,
    pub runs: Vec<String>,
    pub stats: Vec<Stat>,
}

/// Groups `runs` (order kept within a group; groups ordered by key).
pub fn group(runs: &[RunFacts], by: &GroupBy, columns: usize) -> Vec<Group> {
    let key_of = |r: &RunFacts| -> Vec<(String, Option<String>)> {
        match by {
            GroupBy::Fields(fields) => fields
                .iter()
                .map(|f| {
                    let v = if let Some(k) = f.strip_prefix("params.") {
                        r.params.get(k).cloned()
                    } else if let Some(k) = f.strip_prefix("tags.") {
                        r.tags.get(k).cloned()
                    } else {
                        (!r.datasets.is_empty()).then(|| r.datasets.join("+"))
                    };
                    (f.clone(), v)
                })
                .collect(),
            GroupBy::AllParamsBut(skip) => r
                .params
                .iter()
                .filter(|(k, _)| !skip.contains(k))
                .map(|(k, v)| (format!("params.{k}"), Some(v.clone())))
                .collect(),
        }
    };
    let mut groups: BTreeMap<Vec<(String, Option<String>)>, Vec<&RunFacts>> = BTreeMap::new();
    for r in runs {
        groups.entry(key_of(r)).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|(key, members)| Group {
            stats: (0..columns)
                .map(|c| {
                    stat(
                        members
                            .iter()
                            .filter_map(|r| r.values.get(c).copied().flatten()),
                    )
                })
                .collect(),
            runs: members.iter().map(|r| r.run_id.clone()).collect(),
            key,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, params: &[(&str, &str)], v: Option<f64>) -> RunFacts {
        RunFacts {
            run_id: id.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            values: vec![v],
            ..RunFacts::default()
        }
    }

    #[test]
    fn all_but_the_seed_groups_runs_that_differ_only_in_the_seed() {
        let runs = [
            run("a", &[("model", "fp"), ("seed", "1")], Some(0.5)),
            run("b", &[("model", "fp"), ("seed", "2")], Some(0.7)),
            run("c", &[("model", "esm"), ("seed", "1")], Some(0.4)),
            run("d", &[("model", "fp"), ("seed", "3")], None),
            run(
                "e",
                &[("model", "fp"), ("seed", "4"), ("lr", "1")],
                Some(0.9),
            ),
        ];
        let g = group(&runs, &GroupBy::parse("all-but:seed").expect("spec"), 1);
        assert_eq!(g.len(), 3, "{g:?}");
        let fp = g
            .iter()
            .find(|g| g.key == [("params.model".to_owned(), Some("fp".to_owned()))])
            .expect("fp group");
        assert_eq!(fp.runs, ["a", "b", "d"]);
        assert_eq!(fp.stats[0].n, 2);
        assert!((fp.stats[0].mean.expect("mean") - 0.6).abs() < 1e-12);
        // sample sd of 0.5, 0.7 = sqrt(0.02)
        assert!((fp.stats[0].sd.expect("sd") - 0.02f64.sqrt()).abs() < 1e-12);
        let single = g.iter().find(|g| g.runs == ["c"]).expect("esm");
        assert_eq!(single.stats[0].sd, None);
    }

    #[test]
    fn fields_group_with_missing_values_apart_and_specs_are_checked() {
        let runs = [
            run("a", &[("model", "fp")], Some(1.0)),
            run("b", &[], Some(2.0)),
        ];
        let g = group(&runs, &GroupBy::parse("params.model").expect("spec"), 1);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].key[0].1, None, "missing sorts first");
        assert_eq!(
            GroupBy::parse("metrics.x"),
            Err(BadGroupBy::Field("metrics.x".into()))
        );
        assert_eq!(GroupBy::parse(" "), Err(BadGroupBy::Empty));
        assert_eq!(
            GroupBy::parse("all-but:params.seed, fold").expect("spec"),
            GroupBy::AllParamsBut(vec!["seed".into(), "fold".into()])
        );
        assert_eq!(stat([f64::NAN, f64::INFINITY]).n, 0);
    }
}
