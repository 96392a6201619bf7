//! The HTTP API: MLflow's tracking REST endpoints (`/api/2.0/mlflow/…`) and fusionprot's own
//! (`/api/fusionprot/…`, `/api/sql`), one file per resource, merged here behind the one guard layer
//! that every route passes (authentication, content type, origin/host, request ids and logs).

mod artifacts;
mod dashboard;
mod experiments;
mod fusionprot;
mod guard;
mod history;
mod meta;
mod request;
mod runs;
mod sql;
mod web;

pub use guard::Guard;
pub use sql::{TRUNCATED_HEADER, WARNINGS_HEADER};
pub use web::CSP;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware;

use crate::error::{ErrorCode, TrackerError};
use crate::store::{Store, limits};

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub guard: Arc<Guard>,
    /// Root folder of run artifacts.
    pub artifacts: std::path::PathBuf,
    /// Largest artifact accepted in one upload.
    pub max_artifact_bytes: u64,
    /// `datasets/register` over HTTP may only name folders below this one; `None` refuses it.
    pub data_root: Option<std::path::PathBuf>,
    /// How many `/api/sql` queries run at once.
    pub sql_gate: SqlGate,
    /// Fires when the server starts shutting down: open event streams end, so the graceful
    /// shutdown is not held open by every dashboard tab.
    pub shutdown: Shutdown,
}

/// The server's shutdown, as seen by long-lived responses. The default never fires (tests,
/// routers without a server).
#[derive(Debug, Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// A sender that fires it (send `true`) and the `Shutdown` to give the state.
    pub fn channel() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Resolves once the shutdown has begun; never, when its sender is gone without firing.
    pub async fn begun(&mut self) {
        if self.0.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::channel().1
    }
}

/// The bound on concurrent SQL queries: each holds a slot while it runs.
#[derive(Debug, Clone)]
pub struct SqlGate {
    pub slots: Arc<tokio::sync::Semaphore>,
    pub max: usize,
    /// How long a request waits for a free slot before it is refused (429).
    pub wait: std::time::Duration,
}

impl SqlGate {
    pub fn new(max: usize, wait: std::time::Duration) -> SqlGate {
        SqlGate {
            slots: Arc::new(tokio::sync::Semaphore::new(max)),
            max,
            wait,
        }
    }
}

impl Default for SqlGate {
    /// Two queries at once (each DuckDB uses two threads), waiting up to 10 s for a slot.
    fn default() -> Self {
        SqlGate::new(2, std::time::Duration::from_secs(10))
    }
}

/// Every route of the API, as (method, path). The guard test walks this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/web/{*path}"),
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
    ("POST", "/api/2.0/mlflow/experiments/delete-experiment-tag"),
    ("GET", "/ajax-api/2.0/mlflow/experiments/get"),
    ("GET", "/ajax-api/2.0/mlflow/experiments/get-by-name"),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search"),
    ("GET", "/ajax-api/2.0/mlflow/experiments/search"),
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
    ("GET", "/ajax-api/2.0/mlflow/runs/get"),
    ("POST", "/ajax-api/2.0/mlflow/runs/search"),
    ("GET", "/ajax-api/2.0/mlflow/metrics/get-history"),
    ("GET", "/api/2.0/mlflow/artifacts/list"),
    ("GET", "/api/2.0/mlflow/metrics/get-history-bulk"),
    ("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk"),
    ("GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval"),
    (
        "GET",
        "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
    ),
    ("POST", "/api/2.0/mlflow/experiments/search-datasets"),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets"),
    ("GET", "/ajax-api/2.0/mlflow/artifacts/list"),
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact"),
    ("GET", "/get-artifact"),
    ("POST", "/api/2.0/mlflow/logged-models/search"),
    ("POST", "/api/fusionprot/datasets/register"),
    ("GET", "/api/fusionprot/datasets/list"),
    ("POST", "/api/fusionprot/runs/link-dataset"),
    ("POST", "/api/fusionprot/checkpoints/log"),
    ("GET", "/api/fusionprot/checkpoints/list"),
    ("POST", "/api/fusionprot/dashboard/runs"),
    ("POST", "/api/fusionprot/dashboard/groups"),
    ("GET", "/api/fusionprot/dashboard/keys"),
    ("GET", "/api/fusionprot/dashboard/series"),
    ("GET", "/api/fusionprot/dashboard/breakdown"),
    ("GET", "/api/fusionprot/events"),
    ("POST", "/api/fusionprot/events/ticket"),
    ("POST", "/api/sql"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/{*path}"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/{*path}"),
    ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/{*path}"),
];

/// The largest request body (artifact uploads have their own limit): a full log-batch and room.
pub(crate) const MAX_BODY_BYTES: usize = limits::MAX_BATCH_BYTES + 64 * 1024;

/// The whole API: every resource's routes, the fallback, the body limit and the guard over all.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(meta::routes())
        .merge(experiments::routes())
        .merge(runs::routes())
        .merge(history::routes())
        .merge(artifacts::routes())
        .merge(fusionprot::routes())
        .merge(dashboard::routes())
        .merge(web::routes())
        .merge(sql::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> TrackerError {
    TrackerError::Api {
        code: ErrorCode::ResourceDoesNotExist,
        message: format!("no endpoint {method} {}", uri.path()),
    }
}
