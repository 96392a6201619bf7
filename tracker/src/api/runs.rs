//! Runs: create, get, update, delete / restore, search, and what is logged to them (metrics,
//! params, tags, batches, inputs) with the metric history.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::request::Field::{self, Array, AtMost, Float, Int, Required, Str, Strings};
use super::request::{ApiResult, checked, checked_then, missing, need, required};
use crate::error::TrackerError;
use crate::model::{DatasetInput, KeyValue, Metric, de_f64, de_opt_i64};
use crate::store::{Batch, limits, now_ms};

pub(crate) fn routes() -> Router<AppState> {
    let m = "/api/2.0/mlflow";
    Router::new()
        .route(&format!("{m}/runs/create"), post(create_run))
        .route(&format!("{m}/runs/get"), get(get_run))
        .route(&format!("{m}/runs/update"), post(update_run))
        .route(&format!("{m}/runs/delete"), post(delete_run))
        .route(&format!("{m}/runs/restore"), post(restore_run))
        .route(&format!("{m}/runs/search"), post(search_runs))
        .route(&format!("{m}/runs/log-metric"), post(log_metric))
        .route(&format!("{m}/runs/log-parameter"), post(log_param))
        .route(&format!("{m}/runs/set-tag"), post(set_tag))
        .route(&format!("{m}/runs/delete-tag"), post(delete_tag))
        .route(&format!("{m}/runs/log-batch"), post(log_batch))
        .route(&format!("{m}/runs/log-inputs"), post(log_inputs))
        .route(&format!("{m}/metrics/get-history"), get(metric_history))
        // The MLflow UI's prefix for the same reads.
        .route("/ajax-api/2.0/mlflow/runs/get", get(get_run))
        .route("/ajax-api/2.0/mlflow/runs/search", post(search_runs))
        .route(
            "/ajax-api/2.0/mlflow/metrics/get-history",
            get(metric_history),
        )
}

/// Requests that name only a run.
const RUN_ID: &[(&str, &[Field])] = &[("run_id", &[Required, Str])];

/// MLflow's per-item checks of a log-batch body: each metric's key, value and timestamp, each
/// param's and tag's key.
fn batch_items_present(json: &serde_json::Value) -> Result<(), TrackerError> {
    let given =
        |v: Option<&serde_json::Value>| v.is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
    for (list, fields) in [
        ("metrics", &["key", "value", "timestamp"][..]),
        ("params", &["key"][..]),
        ("tags", &["key"][..]),
    ] {
        for (i, item) in json[list].as_array().into_iter().flatten().enumerate() {
            for f in fields {
                if !given(item.get(f)) {
                    return Err(missing(&format!("{list}[{i}].{f}")));
                }
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct CreateRun {
    experiment_id: Option<String>,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    run_name: String,
    #[serde(default, deserialize_with = "de_opt_i64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_run(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: CreateRun = checked(
        &body,
        &[
            ("experiment_id", &[Str]),
            ("user_id", &[Str]),
            ("start_time", &[Int]),
            ("tags", &[Array]),
            ("run_name", &[Str]),
        ],
    )?;
    let exp = r.experiment_id.unwrap_or_else(|| "0".into());
    let run = s
        .store
        .create_run(&exp, &r.user_id, &r.run_name, r.start_time, &r.tags)
        .await?;
    Ok(Json(json!({ "run": run })))
}

fn run_id_of(q_run_id: Option<String>, q_run_uuid: Option<String>) -> Result<String, TrackerError> {
    need(q_run_id.filter(|s| !s.is_empty()).or(q_run_uuid), "run_id")
}

async fn get_run(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let id = run_id_of(q.get("run_id").cloned(), q.get("run_uuid").cloned())?;
    Ok(Json(json!({ "run": s.store.get_run(&id).await? })))
}

#[derive(Deserialize)]
struct RunRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    end_time: Option<i64>,
    run_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

async fn update_run(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: RunRequest = checked(
        &body,
        &[
            ("run_id", &[Required, Str]),
            ("end_time", &[Int]),
            ("status", &[Str]),
            ("run_name", &[Str]),
        ],
    )?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    let info = s
        .store
        .update_run(&id, r.status.as_deref(), r.end_time, r.run_name.as_deref())
        .await?;
    Ok(Json(json!({ "run_info": info })))
}

async fn delete_run(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: RunRequest = checked(&body, RUN_ID)?;
    s.store
        .set_run_lifecycle(&run_id_of(r.run_id, r.run_uuid)?, true)
        .await?;
    Ok(Json(json!({})))
}

async fn restore_run(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: RunRequest = checked(&body, RUN_ID)?;
    s.store
        .set_run_lifecycle(&run_id_of(r.run_id, r.run_uuid)?, false)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct LogMetric {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: Option<String>,
    #[serde(deserialize_with = "de_f64")]
    value: f64,
    #[serde(default, deserialize_with = "de_opt_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    step: Option<i64>,
}

async fn log_metric(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: LogMetric = checked(
        &body,
        &[
            ("run_id", &[Required, Str]),
            ("key", &[Required, Str]),
            ("value", &[Required, Float]),
            ("timestamp", &[Int, Required]),
            ("step", &[Int]),
        ],
    )?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    let metric = Metric {
        key: need(r.key, "key")?,
        value: r.value,
        timestamp: r.timestamp.unwrap_or_else(now_ms),
        step: r.step.unwrap_or(0),
    };
    crate::store::valid_metric_time("", &metric)?;
    s.store
        .log_batch(
            &id,
            &Batch {
                metrics: vec![metric],
                ..Batch::default()
            },
        )
        .await?;
    Ok(Json(json!({})))
}

/// log-parameter and set-tag: one key/value, logged as a one-item batch.
async fn log_one(s: &AppState, body: &Bytes, into: fn(KeyValue) -> Batch) -> ApiResult {
    let r: RunRequest = checked(
        body,
        &[
            ("run_id", &[Required, Str]),
            ("key", &[Required, Str]),
            ("value", &[Str]),
        ],
    )?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    let kv = KeyValue {
        key: need(r.key, "key")?,
        value: r.value.unwrap_or_default(),
    };
    s.store.log_batch(&id, &into(kv)).await?;
    Ok(Json(json!({})))
}

async fn log_param(State(s): State<AppState>, body: Bytes) -> ApiResult {
    log_one(&s, &body, |p| Batch {
        params: vec![p],
        ..Batch::default()
    })
    .await
}

async fn set_tag(State(s): State<AppState>, body: Bytes) -> ApiResult {
    log_one(&s, &body, |t| Batch {
        tags: vec![t],
        ..Batch::default()
    })
    .await
}

async fn delete_tag(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: RunRequest = checked(
        &body,
        &[("run_id", &[Required, Str]), ("key", &[Required, Str])],
    )?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    s.store.delete_tag(&id, &need(r.key, "key")?).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct LogBatch {
    run_id: Option<String>,
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn log_batch(State(s): State<AppState>, body: Bytes) -> ApiResult {
    if body.len() > limits::MAX_BATCH_BYTES {
        return Err(TrackerError::invalid(format!(
            "log-batch request of {} bytes exceeds the {} byte limit",
            body.len(),
            limits::MAX_BATCH_BYTES
        )));
    }
    let r: LogBatch = checked_then(
        &body,
        &[
            ("run_id", &[Str, Required]),
            ("metrics", &[Array]),
            ("params", &[Array]),
            ("tags", &[Array]),
        ],
        batch_items_present,
    )?;
    let id = need(r.run_id, "run_id")?;
    s.store
        .log_batch(
            &id,
            &Batch {
                metrics: r.metrics,
                params: r.params,
                tags: r.tags,
            },
        )
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct LogInputs {
    run_id: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetInput>,
    #[serde(default)]
    models: Vec<serde_json::Value>,
}

/// Dataset inputs (MLflow 2.4+): kept (`input_datasets`, `run_inputs`, `run_input_tags`) and
/// returned by runs/get and runs/search as MLflow returns them. Logged-model inputs (MLflow 3)
/// belong to the model API this tracker does not keep: refused, not dropped.
async fn log_inputs(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: LogInputs = checked(
        &body,
        &[
            ("run_id", &[Required, Str]),
            ("datasets", &[Array]),
            ("models", &[Array]),
        ],
    )?;
    let run_id = need(r.run_id, "run_id")?;
    if !r.models.is_empty() {
        return Err(TrackerError::invalid(
            "logged-model inputs (`models`) are not kept by this tracker; log the datasets alone",
        ));
    }
    s.store.log_inputs(&run_id, &r.datasets).await?;
    Ok(Json(json!({})))
}

async fn metric_history(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let id = run_id_of(q.get("run_id").cloned(), q.get("run_uuid").cloned())?;
    let key = required(&q, "metric_key")?;
    let max = match q.get("max_results") {
        Some(m) => Some(
            m.parse()
                .map_err(|_| TrackerError::invalid("max_results must be an integer"))?,
        ),
        None => None,
    };
    let (metrics, next) = s
        .store
        .metric_history(&id, key, max, q.get("page_token").map(String::as_str))
        .await?;
    let mut out = json!({ "metrics": metrics });
    if let Some(t) = next {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct SearchRuns {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

async fn search_runs(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: SearchRuns = checked(
        &body,
        &[
            ("experiment_ids", &[Array]),
            ("filter", &[Str]),
            ("max_results", &[Int, AtMost(limits::MAX_RESULTS)]),
            ("order_by", &[Array, Strings]),
        ],
    )?;
    let (runs, next) = s
        .store
        .search_runs(
            &r.experiment_ids,
            r.filter.as_deref(),
            r.run_view_type.as_deref(),
            r.max_results,
            &r.order_by,
            r.page_token.as_deref(),
        )
        .await?;
    let mut out = json!({ "runs": runs });
    if let Some(t) = next {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}
