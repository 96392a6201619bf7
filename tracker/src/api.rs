//! The HTTP API: MLflow's tracking REST endpoints (`/api/2.0/mlflow/…`), behind one guard layer
//! that every route passes (authentication, content type, origin/host, request ids and logs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::artifacts;
use crate::error::{ErrorCode, TrackerError};
use crate::model::{KeyValue, Metric, de_f64, de_opt_i64};
use crate::store::{Batch, Store, limits, now_ms};

/// What every request is checked against.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Bearer token; `None` disables authentication (loopback only, enforced at start).
    pub token: Option<String>,
    /// Host header values accepted (DNS-rebinding defence): the bound address and localhost names.
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub guard: Arc<Guard>,
    /// Root folder of run artifacts.
    pub artifacts: std::path::PathBuf,
    /// Largest artifact accepted in one upload.
    pub max_artifact_bytes: u64,
}

type ApiResult = Result<Json<Value>, TrackerError>;

/// Every route of the API, as (method, path). The guard test walks this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/version"),
    ("POST", "/api/2.0/mlflow/experiments/create"),
    ("GET", "/api/2.0/mlflow/experiments/get"),
    ("GET", "/api/2.0/mlflow/experiments/get-by-name"),
    ("POST", "/api/2.0/mlflow/experiments/search"),
    ("GET", "/api/2.0/mlflow/experiments/search"),
    ("POST", "/api/2.0/mlflow/experiments/delete"),
    ("POST", "/api/2.0/mlflow/experiments/restore"),
    ("POST", "/api/2.0/mlflow/experiments/update"),
    ("POST", "/api/2.0/mlflow/experiments/set-experiment-tag"),
    ("POST", "/api/2.0/mlflow/runs/create"),
    ("GET", "/api/2.0/mlflow/runs/get"),
    ("POST", "/api/2.0/mlflow/runs/update"),
    ("POST", "/api/2.0/mlflow/runs/delete"),
    ("POST", "/api/2.0/mlflow/runs/restore"),
    ("POST", "/api/2.0/mlflow/runs/search"),
    ("POST", "/api/2.0/mlflow/runs/log-metric"),
    ("POST", "/api/2.0/mlflow/runs/log-parameter"),
    ("POST", "/api/2.0/mlflow/runs/set-tag"),
    ("POST", "/api/2.0/mlflow/runs/delete-tag"),
    ("POST", "/api/2.0/mlflow/runs/log-batch"),
    ("POST", "/api/2.0/mlflow/runs/log-inputs"),
    ("GET", "/api/2.0/mlflow/metrics/get-history"),
    ("POST", "/api/2.0/mlflow/logged-models/search"),
    ("POST", "/api/fusionprot/datasets/register"),
    ("GET", "/api/fusionprot/datasets/list"),
    ("POST", "/api/fusionprot/runs/link-dataset"),
    ("POST", "/api/fusionprot/checkpoints/log"),
    ("GET", "/api/fusionprot/checkpoints/list"),
    ("POST", "/api/sql"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/{*path}"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/{*path}"),
    ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/{*path}"),
];

pub fn router(state: AppState) -> Router {
    let m = "/api/2.0/mlflow";
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .route(&format!("{m}/experiments/create"), post(create_experiment))
        .route(&format!("{m}/experiments/get"), get(get_experiment))
        .route(
            &format!("{m}/experiments/get-by-name"),
            get(get_experiment_by_name),
        )
        .route(
            &format!("{m}/experiments/search"),
            post(search_experiments).get(search_experiments_get),
        )
        .route(&format!("{m}/experiments/delete"), post(delete_experiment))
        .route(
            &format!("{m}/experiments/restore"),
            post(restore_experiment),
        )
        .route(&format!("{m}/experiments/update"), post(update_experiment))
        .route(
            &format!("{m}/experiments/set-experiment-tag"),
            post(set_experiment_tag),
        )
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
        .route(
            &format!("{m}/logged-models/search"),
            post(search_logged_models),
        )
        .route("/api/2.0/mlflow-artifacts/artifacts", get(artifacts::list))
        .route(
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            get(artifacts::download)
                .put(artifacts::upload)
                .delete(artifacts::delete),
        )
        .route("/api/fusionprot/datasets/register", post(register_dataset))
        .route("/api/fusionprot/datasets/list", get(list_datasets))
        .route("/api/fusionprot/runs/link-dataset", post(link_dataset))
        .route("/api/fusionprot/checkpoints/log", post(log_checkpoint))
        .route("/api/fusionprot/checkpoints/list", get(list_checkpoints))
        .route("/api/sql", post(sql_query))
        .route("/api/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits::MAX_BATCH_BYTES + 64 * 1024))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> TrackerError {
    TrackerError::Api {
        code: ErrorCode::ResourceDoesNotExist,
        message: format!("no endpoint {method} {}", uri.path()),
    }
}

fn deny(code: ErrorCode, message: &str) -> Response {
    TrackerError::Api {
        code,
        message: message.to_owned(),
    }
    .into_response()
}

/// The one layer every request passes: request id and log line, bearer token, Host allow-list,
/// and for state-changing requests a JSON content type and a same-origin Origin.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match check(&state.guard, request.headers(), &method, &path) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    };
    let status = response.status().as_u16();
    tracing::info!(request_id = id, %method, path, status, ms = started.elapsed().as_secs_f64() * 1e3, "request");
    response
}

/// `Some(refusal)` when a request must not reach its handler.
fn check(guard: &Guard, headers: &HeaderMap, method: &Method, path: &str) -> Option<Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let host_name = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let any_host = guard.allowed_hosts.iter().any(|a| a == "*");
    if !any_host
        && !guard
            .allowed_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host_name) || a.eq_ignore_ascii_case(host))
    {
        return Some(deny(
            ErrorCode::PermissionDenied,
            &format!("Host {host:?} is not served here (DNS rebinding defence)"),
        ));
    }
    if let Some(token) = &guard.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
            && path != "/health"
        {
            return Some(deny(
                ErrorCode::Unauthenticated,
                "missing or wrong bearer token (Authorization: Bearer …)",
            ));
        }
    }
    let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let json = ctype
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        let artifact_upload =
            path.starts_with("/api/2.0/mlflow-artifacts/") && *method == Method::PUT;
        if !json && !artifact_upload {
            return Some(deny(
                ErrorCode::BadRequest,
                "state-changing requests must have Content-Type: application/json",
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok()) {
            let origin_host = origin.split("://").nth(1).unwrap_or("");
            if !origin_host.eq_ignore_ascii_case(host) {
                return Some(deny(
                    ErrorCode::PermissionDenied,
                    &format!("cross-origin request from {origin} refused"),
                ));
            }
        }
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, TrackerError> {
    serde_json::from_slice(body)
        .map_err(|e| TrackerError::invalid(format!("malformed request body: {e}")))
}

fn required<'a>(q: &'a HashMap<String, String>, key: &str) -> Result<&'a str, TrackerError> {
    q.get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            TrackerError::invalid(format!("Missing value for required parameter '{key}'."))
        })
}

fn need(v: Option<String>, key: &str) -> Result<String, TrackerError> {
    v.filter(|s| !s.is_empty()).ok_or_else(|| {
        TrackerError::invalid(format!("Missing value for required parameter '{key}'."))
    })
}

// ---- experiments ----

#[derive(Deserialize)]
struct CreateExperiment {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_experiment(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: CreateExperiment = parse(&body)?;
    let name = need(r.name, "name")?;
    let id = s
        .store
        .create_experiment(&name, r.artifact_location.as_deref(), &r.tags)
        .await?;
    Ok(Json(json!({ "experiment_id": id })))
}

async fn get_experiment(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let e = s
        .store
        .get_experiment(required(&q, "experiment_id")?)
        .await?;
    Ok(Json(json!({ "experiment": e })))
}

async fn get_experiment_by_name(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let e = s
        .store
        .get_experiment_by_name(required(&q, "experiment_name")?)
        .await?;
    Ok(Json(json!({ "experiment": e })))
}

#[derive(Deserialize, Default)]
struct SearchExperiments {
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    order_by: Vec<String>,
    view_type: Option<String>,
}

async fn search_experiments(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: SearchExperiments = if body.is_empty() {
        SearchExperiments::default()
    } else {
        parse(&body)?
    };
    search_experiments_with(&s, r).await
}

async fn search_experiments_get(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let max_results = match q.get("max_results") {
        Some(m) => Some(
            m.parse()
                .map_err(|_| TrackerError::invalid("max_results must be an integer"))?,
        ),
        None => None,
    };
    let r = SearchExperiments {
        max_results,
        page_token: q.get("page_token").cloned(),
        filter: q.get("filter").cloned(),
        order_by: q.get("order_by").cloned().into_iter().collect(),
        view_type: q.get("view_type").cloned(),
    };
    search_experiments_with(&s, r).await
}

async fn search_experiments_with(s: &AppState, r: SearchExperiments) -> ApiResult {
    let (exps, next) = s
        .store
        .search_experiments(
            r.view_type.as_deref(),
            r.max_results,
            r.filter.as_deref(),
            &r.order_by,
            r.page_token.as_deref(),
        )
        .await?;
    let mut out = json!({ "experiments": exps });
    if let Some(t) = next {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct ExperimentId {
    experiment_id: Option<String>,
    new_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

async fn delete_experiment(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: ExperimentId = parse(&body)?;
    s.store
        .set_experiment_lifecycle(&need(r.experiment_id, "experiment_id")?, true)
        .await?;
    Ok(Json(json!({})))
}

async fn restore_experiment(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: ExperimentId = parse(&body)?;
    s.store
        .set_experiment_lifecycle(&need(r.experiment_id, "experiment_id")?, false)
        .await?;
    Ok(Json(json!({})))
}

async fn update_experiment(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: ExperimentId = parse(&body)?;
    s.store
        .rename_experiment(
            &need(r.experiment_id, "experiment_id")?,
            &need(r.new_name, "new_name")?,
        )
        .await?;
    Ok(Json(json!({})))
}

async fn set_experiment_tag(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: ExperimentId = parse(&body)?;
    let tag = KeyValue {
        key: need(r.key, "key")?,
        value: r.value.unwrap_or_default(),
    };
    s.store
        .set_experiment_tag(&need(r.experiment_id, "experiment_id")?, &tag)
        .await?;
    Ok(Json(json!({})))
}

// ---- runs ----

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
    let r: CreateRun = parse(&body)?;
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
    let r: RunRequest = parse(&body)?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    let info = s
        .store
        .update_run(&id, r.status.as_deref(), r.end_time, r.run_name.as_deref())
        .await?;
    Ok(Json(json!({ "run_info": info })))
}

async fn delete_run(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: RunRequest = parse(&body)?;
    s.store
        .set_run_lifecycle(&run_id_of(r.run_id, r.run_uuid)?, true)
        .await?;
    Ok(Json(json!({})))
}

async fn restore_run(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: RunRequest = parse(&body)?;
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
    let r: LogMetric = parse(&body)?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    let metric = Metric {
        key: need(r.key, "key")?,
        value: r.value,
        timestamp: r.timestamp.unwrap_or_else(now_ms),
        step: r.step.unwrap_or(0),
    };
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
    let r: RunRequest = parse(body)?;
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
    let r: RunRequest = parse(&body)?;
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
    let r: LogBatch = parse(&body)?;
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

/// Dataset inputs (MLflow 2.4+): accepted so clients that send them keep working; fusionprot
/// records datasets through its own dataset registry.
async fn log_inputs(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: RunRequest = parse(&body)?;
    s.store.get_run(&run_id_of(r.run_id, r.run_uuid)?).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct RegisterDataset {
    name: Option<String>,
    path: Option<String>,
    manifest: Option<Value>,
}

async fn register_dataset(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: RegisterDataset = parse(&body)?;
    let name = need(r.name, "name")?;
    Ok(Json(
        s.store
            .register_dataset(&name, r.path.as_deref(), r.manifest.as_ref())
            .await?,
    ))
}

async fn list_datasets(State(s): State<AppState>) -> ApiResult {
    Ok(Json(json!({ "datasets": s.store.list_datasets().await? })))
}

#[derive(Deserialize)]
struct LinkDataset {
    run_id: Option<String>,
    dataset_id: Option<String>,
    #[serde(default)]
    context: String,
}

async fn link_dataset(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: LinkDataset = parse(&body)?;
    s.store
        .link_dataset(
            &need(r.run_id, "run_id")?,
            &need(r.dataset_id, "dataset_id")?,
            &r.context,
        )
        .await?;
    Ok(Json(json!({})))
}

async fn log_checkpoint(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: crate::registry::CheckpointIn = parse(&body)?;
    let id = s.store.log_checkpoint(&r).await?;
    Ok(Json(json!({ "checkpoint_id": id.to_string() })))
}

async fn list_checkpoints(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let id = required(&q, "run_id")?;
    Ok(Json(
        json!({ "checkpoints": s.store.list_checkpoints(id).await? }),
    ))
}

#[derive(Deserialize)]
struct SqlRequest {
    query: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_rows: Option<i64>,
}

#[cfg(feature = "sql")]
async fn sql_query(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: SqlRequest = parse(&body)?;
    let query = need(r.query, "query")?;
    let mut limits = crate::sql::SqlLimits::default();
    if let Some(m) = r.max_rows {
        limits.max_rows = usize::try_from(m)
            .ok()
            .filter(|m| (1..=limits.max_rows).contains(m))
            .ok_or_else(|| {
                TrackerError::invalid(format!(
                    "max_rows must be between 1 and {}",
                    limits.max_rows
                ))
            })?;
    }
    let result = crate::sql::query(&s.store, &query, limits).await?;
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    let refs: Vec<&arrow_array::RecordBatch> = result.batches.iter().collect();
    writer
        .write_batches(&refs)
        .map_err(|e| TrackerError::invalid(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| TrackerError::invalid(e.to_string()))?;
    let bytes = writer.into_inner();
    let rows: Value = if bytes.is_empty() {
        json!([])
    } else {
        serde_json::from_slice(&bytes).unwrap_or(json!([]))
    };
    let columns: Vec<String> = result
        .batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(
        json!({ "columns": columns, "rows": rows, "truncated": result.truncated }),
    ))
}

#[cfg(not(feature = "sql"))]
async fn sql_query(body: Bytes) -> ApiResult {
    let _: SqlRequest = parse(&body)?;
    Err(TrackerError::invalid(
        "this fusionprot was built without SQL (feature `sql`)",
    ))
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

/// MLflow 3's logged models are not stored here (a documented difference); the client asks for
/// them when it lists run artifacts, and gets none.
async fn search_logged_models(body: Bytes) -> ApiResult {
    let _: Value = if body.is_empty() {
        json!({})
    } else {
        parse(&body)?
    };
    Ok(Json(json!({ "models": [] })))
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
    let r: SearchRuns = parse(&body)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use tower::ServiceExt;

    async fn app(token: Option<&str>) -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db").display().to_string();
        let store = Store::open(&db, crate::store::Durability::Normal)
            .await
            .expect("store");
        let guard = crate::server::guard_for(
            "127.0.0.1:5000".parse().expect("addr"),
            token.map(str::to_owned),
        );
        let artifacts = dir.path().join("artifacts");
        (
            router(AppState {
                store,
                guard: Arc::new(guard),
                artifacts,
                max_artifact_bytes: 1 << 20,
            }),
            dir,
        )
    }

    async fn call(
        app: &Router,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCodeU16, String) {
        let mut req = HttpRequest::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:5000");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body.to_owned())).expect("request"))
            .await
            .expect("response");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    type StatusCodeU16 = u16;

    #[test]
    fn every_route_in_the_source_is_in_the_route_table() {
        // The guard is one layer over the whole router, so any route is guarded; this keeps
        // ROUTES (walked below) complete, so a new route is also exercised by the auth test.
        let src = include_str!("api.rs");
        let code = &src[..src.find("#[cfg(test)]").unwrap_or(src.len())];
        let mut in_source = 0;
        for (at, _) in code.match_indices(".route(") {
            let path = code[at..]
                .split('"')
                .nth(1)
                .unwrap_or_default()
                .replace("{m}", "/api/2.0/mlflow");
            assert!(
                ROUTES.iter().any(|(_, p)| *p == path),
                "route {path:?} is missing from ROUTES"
            );
            in_source += 1;
        }
        assert!(in_source >= 20, "found {in_source} routes");
    }

    #[tokio::test]
    async fn every_route_requires_the_token_when_one_is_set() {
        let (app, _dir) = app(Some("s3cret")).await;
        for (method, path) in ROUTES {
            if *path == "/health" {
                continue;
            }
            let path = &path.replace("{*path}", "1/x");
            let (status, body) = call(
                &app,
                method,
                path,
                &[("content-type", "application/json")],
                "{}",
            )
            .await;
            assert_eq!(status, 401, "{method} {path}: {body}");
            assert!(body.contains("UNAUTHENTICATED"), "{body}");
            let (status, _) = call(
                &app,
                method,
                path,
                &[
                    ("content-type", "application/json"),
                    ("authorization", "Bearer wrong"),
                ],
                "{}",
            )
            .await;
            assert_eq!(status, 401, "{method} {path} with a wrong token");
        }
        let (status, body) = call(
            &app,
            "POST",
            "/api/2.0/mlflow/experiments/create",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer s3cret"),
            ],
            r#"{"name":"x"}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = call(&app, "GET", "/api/2.0/mlflow/nope", &[], "").await;
        assert_eq!(status, 401, "unknown paths pass the guard too");
    }

    #[tokio::test]
    async fn cross_site_and_rebinding_requests_are_refused() {
        let (app, _dir) = app(None).await;
        let create = "/api/2.0/mlflow/experiments/create";
        // a text/plain "simple" cross-site POST
        let (status, body) = call(
            &app,
            "POST",
            create,
            &[("content-type", "text/plain")],
            r#"{"name":"a"}"#,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("Content-Type: application/json"), "{body}");
        // a foreign Origin
        let (status, body) = call(
            &app,
            "POST",
            create,
            &[
                ("content-type", "application/json"),
                ("origin", "http://evil.example"),
            ],
            r#"{"name":"a"}"#,
        )
        .await;
        assert_eq!(status, 403, "{body}");
        // DNS rebinding: a foreign Host header
        let req = HttpRequest::builder()
            .method("GET")
            .uri("/api/2.0/mlflow/experiments/search")
            .header("host", "evil.example:5000")
            .body(Body::empty())
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        assert_eq!(resp.status().as_u16(), 403);
        // same-origin JSON is fine
        let (status, body) = call(
            &app,
            "POST",
            create,
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("origin", "http://127.0.0.1:5000"),
            ],
            r#"{"name":"a"}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    #[tokio::test]
    async fn oversized_bodies_and_strings_are_refused() {
        let (app, _dir) = app(None).await;
        let json = [("content-type", "application/json")];
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(2_000_000));
        let (status, _) = call(
            &app,
            "POST",
            "/api/2.0/mlflow/experiments/create",
            &json,
            &big,
        )
        .await;
        assert_eq!(status, 413);
        let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(600));
        let (status, body) = call(
            &app,
            "POST",
            "/api/2.0/mlflow/experiments/create",
            &json,
            &long,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let (_, run) = call(
            &app,
            "POST",
            "/api/2.0/mlflow/runs/create",
            &json,
            r#"{"experiment_id":"0"}"#,
        )
        .await;
        let run: Value = serde_json::from_str(&run).expect("json");
        let id = run["run"]["info"]["run_id"]
            .as_str()
            .expect("run id")
            .to_owned();
        for bad in ["../x", "/abs", "a\u{0}b", &"k".repeat(300)] {
            let body = json!({ "run_id": id, "key": bad, "value": 1.0, "timestamp": 1, "step": 0 })
                .to_string();
            let (status, text) = call(
                &app,
                "POST",
                "/api/2.0/mlflow/runs/log-metric",
                &json,
                &body,
            )
            .await;
            assert_eq!(status, 400, "{bad:?}: {text}");
        }
    }
}
