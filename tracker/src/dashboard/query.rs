//! The dashboard's reads, answered in columns: a page of runs with the columns on screen only,
//! groups over every matching run, and one metric's downsampled curve.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use sqlx::Row;

use super::compare::{self, KeyPart};
use super::groups::{self, GroupBy, RunFacts};
use super::stats::{self, Test};
use crate::error::TrackerError;
use crate::filter::Bind;
use crate::model::loaded;
use crate::store::{Store, bind_all};

/// What groups are compared with: a baseline (part of a group key) and the test.
#[derive(Debug, Clone)]
pub struct Against {
    pub baseline: Option<KeyPart>,
    pub test: Test,
    /// The param pairing runs for the paired test (default: the first `all-but:` key, else
    /// `seed`).
    pub pair_by: Option<String>,
}

impl Default for Against {
    fn default() -> Self {
        Against {
            baseline: None,
            test: Test::Welch,
            pair_by: None,
        }
    }
}

/// Runs matching a filter, and which page of them.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub experiment_ids: Vec<String>,
    pub filter: Option<String>,
    pub view_type: Option<String>,
    pub order_by: Vec<String>,
}

/// How a metric column summarises a run's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// The latest point (highest step, then timestamp): what MLflow shows.
    Last,
    Min,
    Max,
    /// `Min` for keys that name a loss or an error, `Max` otherwise.
    Best,
}

/// One column of the runs table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Metric(String, Summary),
    Param(String),
    Tag(String),
}

/// Whether lower is better for a metric key (losses, errors, perplexity).
pub fn lower_is_better(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "loss",
        "error",
        "err",
        "rmse",
        "mae",
        "mse",
        "perplexity",
        "nll",
    ]
    .iter()
    .any(|w| {
        k.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|part| part == *w)
    })
}

impl Column {
    /// `metrics.KEY[:last|min|max|best]`, `params.KEY`, `tags.KEY`.
    ///
    /// # Errors
    /// Another entity or summary, named.
    pub fn parse(spec: &str) -> Result<Column, TrackerError> {
        let bad = || {
            TrackerError::invalid(format!(
                "column {spec:?}: use metrics.KEY[:last|min|max|best], params.KEY or tags.KEY"
            ))
        };
        if let Some(rest) = spec.strip_prefix("metrics.") {
            let (key, summary) = match rest.rsplit_once(':') {
                Some((k, "last")) => (k, Summary::Last),
                Some((k, "min")) => (k, Summary::Min),
                Some((k, "max")) => (k, Summary::Max),
                Some((k, "best")) => (k, Summary::Best),
                Some(_) => return Err(bad()),
                None => (rest, Summary::Last),
            };
            if key.is_empty() {
                return Err(bad());
            }
            return Ok(Column::Metric(key.to_owned(), summary));
        }
        if let Some(k) = spec.strip_prefix("params.").filter(|k| !k.is_empty()) {
            return Ok(Column::Param(k.to_owned()));
        }
        if let Some(k) = spec.strip_prefix("tags.").filter(|k| !k.is_empty()) {
            return Ok(Column::Tag(k.to_owned()));
        }
        Err(bad())
    }
}

/// The most columns one request may ask for, and runs in one page.
pub const MAX_COLUMNS: usize = 200;
pub const MAX_PAGE: i64 = 5_000;

/// A number as MLflow's JSON writes it: NaN and infinities as strings.
pub(super) fn number(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(",")
}

impl Store {
    /// The ids (in order) of the runs `sel` matches, all of them or one page.
    async fn selected(
        &self,
        sel: &Selection,
        page: Option<(i64, i64)>,
    ) -> Result<(Vec<String>, i64), TrackerError> {
        if sel.experiment_ids.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let q = self.run_query(
            &sel.experiment_ids,
            sel.filter.as_deref(),
            sel.view_type.as_deref(),
            &sel.order_by,
            true,
        )?;
        let count_sql = format!(
            "SELECT count(*) FROM runs r WHERE {}",
            q.conds.join(" AND ")
        );
        let total: i64 = bind_all(self.query(&count_sql), q.binds.clone())
            .fetch_one(self.reader())
            .await?
            .try_get(0)?;
        let limit = page.map_or(String::new(), |(offset, limit)| {
            format!(" LIMIT {limit} OFFSET {offset}")
        });
        let sql = format!(
            "SELECT r.run_uuid FROM runs r {} WHERE {} ORDER BY {}{limit}",
            q.joins.join(" "),
            q.conds.join(" AND "),
            q.terms.join(", ")
        );
        let mut binds = q.join_binds;
        binds.extend(q.binds);
        let ids = bind_all(self.query(&sql), binds)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        Ok((ids, total))
    }

    /// Values of `columns` for `ids`: one vector per column, aligned with `ids`.
    async fn column_values(
        &self,
        ids: &[String],
        columns: &[Column],
    ) -> Result<Vec<Vec<Value>>, TrackerError> {
        let at: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, r)| (r.as_str(), i))
            .collect();
        let mut out = vec![vec![Value::Null; ids.len()]; columns.len()];
        for chunk in ids.chunks(500) {
            for (c, col) in columns.iter().enumerate() {
                let (sql, key) = match col {
                    Column::Metric(k, Summary::Last) => (
                        "SELECT run_uuid, value, is_nan FROM latest_metrics WHERE key = ? AND run_uuid IN",
                        k,
                    ),
                    Column::Metric(k, s) => {
                        let lowest = match s {
                            Summary::Min => true,
                            Summary::Max => false,
                            _ => lower_is_better(k),
                        };
                        (
                            if lowest {
                                "SELECT run_uuid, min(value), 0 FROM metrics WHERE key = ? AND is_nan = 0 AND run_uuid IN"
                            } else {
                                "SELECT run_uuid, max(value), 0 FROM metrics WHERE key = ? AND is_nan = 0 AND run_uuid IN"
                            },
                            k,
                        )
                    }
                    Column::Param(k) => (
                        "SELECT run_uuid, value, 0 FROM params WHERE key = ? AND run_uuid IN",
                        k,
                    ),
                    Column::Tag(k) => (
                        "SELECT run_uuid, value, 0 FROM tags WHERE key = ? AND run_uuid IN",
                        k,
                    ),
                };
                let group = if matches!(col, Column::Metric(_, s) if *s != Summary::Last) {
                    " GROUP BY run_uuid"
                } else {
                    ""
                };
                let full = format!("{sql} ({}){group}", marks(chunk.len()));
                let mut binds = vec![Bind::Str(key.clone())];
                binds.extend(chunk.iter().cloned().map(Bind::Str));
                for row in bind_all(self.query(&full), binds)
                    .fetch_all(self.reader())
                    .await?
                {
                    let run: String = row.try_get(0)?;
                    let Some(&i) = at.get(run.as_str()) else {
                        continue;
                    };
                    out[c][i] = match col {
                        Column::Metric(..) => {
                            let v: Option<f64> = row.try_get(1)?;
                            let nan = row.try_get::<i64, _>(2)? != 0;
                            v.map_or(Value::Null, |v| number(loaded(v, nan)))
                        }
                        _ => json!(row.try_get::<String, _>(1)?),
                    };
                }
            }
        }
        Ok(out)
    }

    /// One page of the runs table, in columns: the runs' identity and the requested columns.
    /// With a `baseline` run, also that run's value of each column (for Δ).
    ///
    /// # Errors
    /// A malformed selection or column, too many columns, a page out of range, an unknown
    /// baseline run.
    pub async fn dashboard_runs(
        &self,
        sel: &Selection,
        columns: &[String],
        offset: i64,
        limit: i64,
        baseline: Option<&str>,
    ) -> Result<Value, TrackerError> {
        if columns.len() > MAX_COLUMNS {
            return Err(TrackerError::invalid(format!(
                "at most {MAX_COLUMNS} columns per request, got {}",
                columns.len()
            )));
        }
        if !(0..=MAX_PAGE).contains(&limit) || offset < 0 {
            return Err(TrackerError::invalid(format!(
                "limit must be 0 to {MAX_PAGE} and offset at least 0"
            )));
        }
        let cols: Vec<Column> = columns
            .iter()
            .map(|c| Column::parse(c))
            .collect::<Result<_, _>>()?;
        let (ids, total) = self.selected(sel, Some((offset, limit))).await?;
        let mut info: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT run_uuid, run_name, experiment_id, status, start_time, end_time, lifecycle_stage FROM runs WHERE run_uuid IN ({})",
                marks(chunk.len())
            );
            let rows = bind_all(
                self.query(&sql),
                chunk.iter().cloned().map(Bind::Str).collect(),
            )
            .fetch_all(self.reader())
            .await?;
            let mut by_id = HashMap::new();
            for r in &rows {
                by_id.insert(r.try_get::<String, _>(0)?, r);
            }
            for id in chunk {
                let r = by_id
                    .get(id)
                    .ok_or_else(|| TrackerError::not_found(format!("run {id} vanished")))?;
                let mut push = |k: &'static str, v: Value| info.entry(k).or_default().push(v);
                push("run_id", json!(id));
                push("run_name", json!(r.try_get::<String, _>(1)?));
                push("experiment_id", json!(r.try_get::<i64, _>(2)?.to_string()));
                push("status", json!(r.try_get::<String, _>(3)?));
                push("start_time", json!(r.try_get::<Option<i64>, _>(4)?));
                push("end_time", json!(r.try_get::<Option<i64>, _>(5)?));
                push("lifecycle_stage", json!(r.try_get::<String, _>(6)?));
            }
        }
        let values = self.column_values(&ids, &cols).await?;
        let mut out = serde_json::Map::new();
        out.insert("total".into(), json!(total));
        out.insert("offset".into(), json!(offset));
        for k in [
            "run_id",
            "run_name",
            "experiment_id",
            "status",
            "start_time",
            "end_time",
            "lifecycle_stage",
        ] {
            out.insert(k.into(), Value::Array(info.remove(k).unwrap_or_default()));
        }
        let columns: serde_json::Map<String, Value> = columns
            .iter()
            .cloned()
            .zip(values.into_iter().map(Value::Array))
            .collect();
        if let Some(base) = baseline {
            // the baseline run's value of every column, whether or not it is on this page: the
            // page shows each row's Δ to it
            self.run_info(base).await?;
            let values = self.column_values(&[base.to_owned()], &cols).await?;
            let cells: serde_json::Map<String, Value> = columns
                .keys()
                .cloned()
                .zip(values.into_iter().map(|mut v| v.swap_remove(0)))
                .collect();
            out.insert(
                "baseline".into(),
                json!({ "run_id": base, "columns": cells }),
            );
        }
        out.insert("columns".into(), Value::Object(columns));
        Ok(Value::Object(out))
    }

    /// Metric, param and tag keys of the selected experiments' runs (for the column picker), and
    /// `varying_params`: the params that differ among their active runs.
    ///
    /// # Errors
    /// A malformed experiment id.
    pub async fn dashboard_keys(&self, sel: &Selection) -> Result<Value, TrackerError> {
        let mut out = serde_json::Map::new();
        let ids = sel
            .experiment_ids
            .iter()
            .map(|e| crate::store::parse_experiment_id(e).map(Bind::Int))
            .collect::<Result<Vec<_>, _>>()?;
        for (name, table) in [
            ("metrics", "latest_metrics"),
            ("params", "params"),
            ("tags", "tags"),
        ] {
            let keys: Vec<String> = if ids.is_empty() {
                Vec::new()
            } else {
                let sql = format!(
                    "SELECT k.key FROM (SELECT DISTINCT x.key AS key FROM {table} x JOIN runs r ON r.run_uuid = x.run_uuid WHERE r.experiment_id IN ({})) k ORDER BY {}",
                    marks(ids.len()),
                    self.dialect().text_order("k.key")
                );
                bind_all(self.query(&sql), ids.clone())
                    .fetch_all(self.reader())
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?
            };
            out.insert(name.into(), json!(keys));
        }
        // the params whose value differs among the experiments' active runs (or that some runs
        // lack): the columns and axes a comparison defaults to
        let varying: Vec<String> = if ids.is_empty() {
            Vec::new()
        } else {
            let sql = format!(
                "SELECT x.key FROM params x JOIN runs r ON r.run_uuid = x.run_uuid
                 WHERE r.experiment_id IN ({m}) AND r.lifecycle_stage = 'active'
                 GROUP BY x.key
                 HAVING count(DISTINCT x.value) > 1
                     OR count(*) < (SELECT count(*) FROM runs WHERE experiment_id IN ({m}) AND lifecycle_stage = 'active')
                 ORDER BY {o}",
                m = marks(ids.len()),
                o = self.dialect().text_order("x.key")
            );
            let mut binds = ids.clone();
            binds.extend(ids.iter().cloned());
            bind_all(self.query(&sql), binds)
                .fetch_all(self.reader())
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?
        };
        out.insert("varying_params".into(), json!(varying));
        Ok(Value::Object(out))
    }

    /// Every run `sel` matches, grouped, with mean ± sd, n and the 95% bootstrap interval of the
    /// mean of each column (metrics only); with a baseline, each group's Δ to its baseline group
    /// and a t-test's p-value (`compare`).
    ///
    /// # Errors
    /// A malformed selection, group spec or column.
    pub async fn dashboard_groups(
        &self,
        sel: &Selection,
        group_by: &str,
        columns: &[String],
        against: &Against,
    ) -> Result<Value, TrackerError> {
        let by = GroupBy::parse(group_by).map_err(|e| TrackerError::invalid(e.to_string()))?;
        if columns.len() > MAX_COLUMNS {
            return Err(TrackerError::invalid(format!(
                "at most {MAX_COLUMNS} columns per request"
            )));
        }
        let cols: Vec<Column> = columns
            .iter()
            .map(|c| Column::parse(c))
            .collect::<Result<_, _>>()?;
        if cols.iter().any(|c| !matches!(c, Column::Metric(..))) {
            return Err(TrackerError::invalid(
                "group statistics are over metrics.* columns",
            ));
        }
        let (ids, _) = self.selected(sel, None).await?;
        let values = self.column_values(&ids, &cols).await?;
        let mut facts: Vec<RunFacts> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| RunFacts {
                run_id: id.clone(),
                values: values
                    .iter()
                    .map(|col| col[i].as_f64().filter(|v| v.is_finite()))
                    .collect(),
                ..RunFacts::default()
            })
            .collect();
        let at: HashMap<String, usize> = ids.iter().cloned().zip(0..).collect();
        for chunk in ids.chunks(500) {
            let binds: Vec<Bind> = chunk.iter().cloned().map(Bind::Str).collect();
            for (table, which) in [("params", 0), ("tags", 1)] {
                let sql = format!(
                    "SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN ({})",
                    marks(chunk.len())
                );
                for r in bind_all(self.query(&sql), binds.clone())
                    .fetch_all(self.reader())
                    .await?
                {
                    let i = at[&r.try_get::<String, _>(0)?];
                    let (k, v): (String, String) = (r.try_get(1)?, r.try_get(2)?);
                    if which == 0 {
                        facts[i].params.insert(k, v);
                    } else {
                        facts[i].tags.insert(k, v);
                    }
                }
            }
            let sql = format!(
                "SELECT l.run_uuid, d.name FROM run_datasets l JOIN datasets d ON d.dataset_id = l.dataset_id WHERE l.run_uuid IN ({})",
                marks(chunk.len())
            );
            for r in bind_all(self.query(&sql), binds.clone())
                .fetch_all(self.reader())
                .await?
            {
                let i = at[&r.try_get::<String, _>(0)?];
                let name: String = r.try_get(1)?;
                if !facts[i].datasets.contains(&name) {
                    facts[i].datasets.push(name);
                }
            }
        }
        for f in &mut facts {
            f.datasets.sort();
        }
        let groups = groups::group(&facts, &by, cols.len());
        let base = against
            .baseline
            .as_ref()
            .map(|b| compare::baseline_of(&groups, b))
            .transpose()
            .map_err(|e| TrackerError::invalid(e.to_string()))?;
        let pair_by = against.pair_by.clone().unwrap_or_else(|| match &by {
            GroupBy::AllParamsBut(skip) if !skip.is_empty() => skip[0].clone(),
            _ => "seed".into(),
        });
        let cmp = compare::Comparison {
            groups: &groups,
            facts: facts.iter().map(|f| (f.run_id.as_str(), f)).collect(),
            baseline_of: base.clone(),
            test: against.test,
            pair_by: pair_by.clone(),
        };
        let mut stats = serde_json::Map::new();
        for (c, name) in columns.iter().enumerate() {
            let means: Vec<Option<f64>> = groups.iter().map(|g| g.stats[c].mean).collect();
            let mut col = serde_json::Map::new();
            col.insert("mean".into(), json!(means));
            col.insert(
                "sd".into(),
                json!(groups.iter().map(|g| g.stats[c].sd).collect::<Vec<_>>()),
            );
            col.insert(
                "n".into(),
                json!(groups.iter().map(|g| g.stats[c].n).collect::<Vec<_>>()),
            );
            cmp.column(c, &means, &mut col);
            stats.insert(name.clone(), Value::Object(col));
        }
        Ok(json!({
            "runs_total": ids.len(),
            "key": groups.iter().map(|g| g.key.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "runs": groups.iter().map(|g| g.runs.clone()).collect::<Vec<_>>(),
            "columns": stats,
            "bootstrap": { "resamples": stats::RESAMPLES, "seed": stats::SEED, "level": stats::LEVEL,
                           "method": "percentile bootstrap of the mean" },
            "baseline_of": base,
            "test": base.as_ref().map(|_| against.test.label()),
            "pair_by": (base.is_some() && against.test == Test::Paired).then_some(pair_by),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_parse_and_losses_are_minimised() {
        assert_eq!(
            Column::parse("metrics.valid/fmax:best").expect("col"),
            Column::Metric("valid/fmax".into(), Summary::Best)
        );
        assert_eq!(
            Column::parse("metrics.a:b")
                .err()
                .map(|e| e.to_string().contains("column")),
            Some(true)
        );
        assert_eq!(
            Column::parse("metrics.x").expect("col"),
            Column::Metric("x".into(), Summary::Last)
        );
        assert_eq!(
            Column::parse("params.lr").expect("col"),
            Column::Param("lr".into())
        );
        assert!(Column::parse("attributes.status").is_err());
        assert!(lower_is_better("train/loss"));
        assert!(lower_is_better("valid_rmse"));
        assert!(!lower_is_better("valid/fmax"));
        assert!(!lower_is_better("glossary_size"));
    }
}
