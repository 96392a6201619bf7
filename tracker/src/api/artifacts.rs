//! Artifact routes: MLflow's `mlflow-artifacts` proxy (handlers and path checks live in
//! `crate::artifacts`) and the logged-models search its client calls when listing artifacts.

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::AppState;
use super::request::{ApiResult, parse};
use crate::artifacts;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/mlflow-artifacts/artifacts", get(artifacts::list))
        .route(
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            get(artifacts::download)
                .put(artifacts::upload)
                .delete(artifacts::delete),
        )
        .route(
            "/api/2.0/mlflow/logged-models/search",
            post(search_logged_models),
        )
        .route("/api/2.0/mlflow/artifacts/list", get(artifacts::list_run))
        .route(
            "/ajax-api/2.0/mlflow/artifacts/list",
            get(artifacts::list_run),
        )
        // MLflow's UI routes for one run artifact: upload (its body, ≤ 10 MB) and download
        .route(
            "/ajax-api/2.0/mlflow/upload-artifact",
            post(artifacts::upload_for_run),
        )
        .route("/get-artifact", get(artifacts::download_for_run))
}

/// MLflow 3's logged models are not stored here (a documented difference); the client asks for
/// them when it lists run artifacts, and gets none.
async fn search_logged_models(body: Bytes) -> ApiResult {
    let _: Value = if body.is_empty() {
        json!({})
    } else {
        parse(&body)?
    };
    Ok(axum::Json(json!({ "models": [] })))
}
