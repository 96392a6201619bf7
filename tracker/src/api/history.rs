//! MLflow's bulk reads of metric histories, which its UI calls under `/ajax-api/2.0/mlflow/`
//! (served under `/api/2.0/mlflow/` too): `metrics/get-history-bulk` (several runs' whole history
//! of one key, as MLflow's default implementation orders and caps it) and
//! `metrics/get-history-bulk-interval` (each run's history sampled as MLflow's SQL store samples
//! it: the first point of each of `max_results` NTILE buckets over the rows in key order, the last
//! point always kept), and `experiments/search-datasets` (the datasets `log-inputs` recorded per
//! experiment, with their context). Validation and messages are MLflow's.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::request::{ApiResult, Field, checked, missing};
use crate::error::TrackerError;
use crate::model::Metric;
use crate::store::Stored;

/// At most this many runs per bulk request (MLflow's `MAX_RUNS_GET_METRIC_HISTORY_BULK`).
const MAX_RUNS: usize = 100;
/// get-history-bulk's cap on points (MLflow's `MAX_HISTORY_RESULTS`).
const MAX_HISTORY: i64 = 25_000;
/// get-history-bulk-interval's points per run at most (MLflow's `MAX_RESULTS_PER_RUN`).
const MAX_PER_RUN: i64 = 2_500;
const SEE_DOCS: &str = " See the API docs for more information about request parameters.";

pub(super) fn routes() -> Router<AppState> {
    let m = "/api/2.0/mlflow";
    Router::new()
        .route(&format!("{m}/metrics/get-history-bulk"), get(bulk))
        .route(
            &format!("{m}/metrics/get-history-bulk-interval"),
            get(bulk_interval),
        )
        .route(
            &format!("{m}/experiments/search-datasets"),
            post(search_datasets),
        )
        .route("/ajax-api/2.0/mlflow/metrics/get-history-bulk", get(bulk))
        .route(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            get(bulk_interval),
        )
        .route(
            "/ajax-api/2.0/mlflow/experiments/search-datasets",
            post(search_datasets),
        )
}

/// The query string's pairs, decoded (`+` is a space), repeated keys kept in order.
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    raw.unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn all<'a>(q: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    q.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn one<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    all(q, key).into_iter().next()
}

fn int(q: &[(String, String)], key: &str) -> Result<Option<i64>, TrackerError> {
    one(q, key)
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                TrackerError::invalid(format!(
                    "Invalid value \"{v}\" for parameter '{key}' supplied:  Hint: Value was of type 'str'.{SEE_DOCS}"
                ))
            })
        })
        .transpose()
}

fn point(run_id: &str, key: &str, m: &Metric) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    v["run_id"] = json!(run_id);
    v["key"] = json!(key);
    v
}

/// `GET …/metrics/get-history-bulk?run_id=…&run_id=…&metric_key=K[&max_results=N]`.
async fn bulk(State(s): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = pairs(raw.as_deref());
    let mut runs: Vec<&str> = all(&q, "run_id");
    if runs.is_empty() {
        return Err(TrackerError::invalid(
            "GetMetricHistoryBulk request must specify at least one run_id.",
        ));
    }
    if runs.len() > MAX_RUNS {
        return Err(TrackerError::invalid(format!(
            "GetMetricHistoryBulk request cannot specify more than {MAX_RUNS} run_ids. Received {} run_ids.",
            runs.len()
        )));
    }
    let key = one(&q, "metric_key").ok_or_else(|| {
        TrackerError::invalid("GetMetricHistoryBulk request must specify a metric_key.")
    })?;
    let max = int(&q, "max_results")?
        .unwrap_or(MAX_HISTORY)
        .min(MAX_HISTORY);
    runs.sort_unstable();
    let mut out = Vec::new();
    for run in runs {
        let (mut metrics, _) = s
            .store
            .metric_history(run, key, Some(max.max(1)), None)
            .await?;
        metrics.sort_by(|a, b| {
            (a.timestamp, a.step)
                .cmp(&(b.timestamp, b.step))
                .then(a.value.total_cmp(&b.value))
        });
        out.extend(metrics.iter().map(|m| point(run, key, m)));
    }
    out.truncate(usize::try_from(max.max(0)).unwrap_or(0));
    Ok(Json(json!({ "metrics": out })))
}

/// The rows MLflow's SQL store keeps of `rows` (in key order): the first row of each of
/// `max_results` NTILE buckets, then the last row, replacing the last kept one when already at
/// `max_results`.
fn ntile_sample(rows: &[Stored], max_results: usize) -> Vec<Stored> {
    let n = rows.len();
    let k = max_results.max(1);
    let mut kept: Vec<Stored> = if n <= k {
        rows.to_vec()
    } else {
        // NTILE(k) over n rows: the first n % k buckets hold one row more
        let (q, r) = (n / k, n % k);
        (0..k).map(|b| rows[b * q + b.min(r)]).collect()
    };
    if let Some(&last) = rows.last() {
        let same = |a: &Stored, b: &Stored| {
            (a.0, a.1, a.3) == (b.0, b.1, b.3) && (a.3 != 0 || a.2.to_bits() == b.2.to_bits())
        };
        if kept.last().is_none_or(|l| !same(l, &last)) {
            if kept.len() >= k {
                if let Some(l) = kept.last_mut() {
                    *l = last;
                }
            } else {
                kept.push(last);
            }
        }
    }
    kept
}

/// `GET …/metrics/get-history-bulk-interval?run_ids=…&metric_key=K[&start_step&end_step][&max_results]`.
async fn bulk_interval(State(s): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = pairs(raw.as_deref());
    let runs = all(&q, "run_ids");
    if runs.is_empty() {
        return Err(missing("run_ids"));
    }
    if runs.len() > MAX_RUNS {
        return Err(TrackerError::invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS} run_ids. Received {} run_ids.{SEE_DOCS}",
            runs.len()
        )));
    }
    let key = one(&q, "metric_key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| missing("metric_key"))?;
    let start = int(&q, "start_step")?;
    let end = int(&q, "end_step")?;
    let max = int(&q, "max_results")?;
    if let Some(m) = max
        && !(1..=MAX_PER_RUN).contains(&m)
    {
        return Err(TrackerError::invalid(format!(
            "max_results must be between 1 and {MAX_PER_RUN}.{SEE_DOCS}"
        )));
    }
    let range = match (start, end) {
        (Some(a), Some(b)) if a > b => {
            return Err(TrackerError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={a} and end_step={b}."
            )));
        }
        (Some(a), Some(b)) => Some((a, b)),
        (None, None) => None,
        _ => {
            return Err(TrackerError::invalid(
                "If either start step or end step are specified, both must be specified.",
            ));
        }
    };
    let max = usize::try_from(max.unwrap_or(MAX_PER_RUN)).unwrap_or(1);
    for run in &runs {
        s.store.run_info(run).await?;
    }
    let mut out = Vec::new();
    for run in &runs {
        let (rows, _) = s.store.metric_points(run, key).await?;
        let rows: Vec<Stored> = match range {
            Some((a, b)) => rows
                .iter()
                .copied()
                .filter(|r| r.0 >= a && r.0 <= b)
                .collect(),
            None => rows.to_vec(),
        };
        for (step, timestamp, value, nan) in ntile_sample(&rows, max) {
            let m = Metric {
                key: key.to_owned(),
                value: crate::model::loaded(value, nan != 0),
                timestamp,
                step,
            };
            out.push(point(run, key, &m));
        }
    }
    Ok(Json(json!({ "metrics": out })))
}

#[derive(Deserialize)]
struct SearchDatasets {
    #[serde(default)]
    experiment_ids: Vec<String>,
}

/// `POST …/experiments/search-datasets {"experiment_ids": [...]}`.
async fn search_datasets(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: SearchDatasets = checked(&body, &[("experiment_ids", &[Field::Strings])])?;
    if r.experiment_ids.is_empty() {
        return Err(TrackerError::invalid(
            "SearchDatasets request must specify at least one experiment_id.",
        ));
    }
    if r.experiment_ids.len() > 20 {
        return Err(TrackerError::invalid(format!(
            "SearchDatasets request cannot specify more than 20 experiment_ids. Received {} experiment_ids.",
            r.experiment_ids.len()
        )));
    }
    let summaries = s.store.dataset_summaries(&r.experiment_ids).await?;
    Ok(Json(json!({ "dataset_summaries": summaries })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Stored> {
        (0..n).map(|i| (i as i64, 0, i as f64, 0)).collect()
    }

    #[test]
    fn the_sample_is_ntiles_first_rows_and_the_last() {
        // 10 rows into 4 buckets: sizes 3, 3, 2, 2 → first rows 0, 3, 6, 8; the last (9) replaces 8
        let s = ntile_sample(&rows(10), 4);
        assert_eq!(s.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 3, 6, 9]);
        // fewer rows than buckets: all of them
        assert_eq!(ntile_sample(&rows(3), 10).len(), 3);
        // one bucket: only the last
        assert_eq!(
            ntile_sample(&rows(5), 1)
                .iter()
                .map(|r| r.0)
                .collect::<Vec<_>>(),
            [4]
        );
        assert!(ntile_sample(&[], 5).is_empty());
        // 9 rows into 4 buckets: 3, 2, 2, 2 → 0, 3, 5, 7, then 8 appended? no: at 4 already → replaced
        assert_eq!(
            ntile_sample(&rows(9), 4)
                .iter()
                .map(|r| r.0)
                .collect::<Vec<_>>(),
            [0, 3, 5, 8]
        );
    }

    #[test]
    fn repeated_query_keys_are_kept_and_decoded() {
        let q = pairs(Some(
            "run_ids=a&run_ids=b%20c&metric_key=train%2Floss&x=1+2",
        ));
        assert_eq!(all(&q, "run_ids"), ["a", "b c"]);
        assert_eq!(one(&q, "metric_key"), Some("train/loss"));
        assert_eq!(one(&q, "x"), Some("1 2"));
    }
}
