//! fusionprot's own resources: the dataset registry, run ↔ dataset links and checkpoints.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::request::{ApiResult, need, parse, required};
use crate::dataset_files::Confinement;
use crate::error::{ErrorCode, TrackerError};
use std::path::Path;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/fusionprot/datasets/register", post(register_dataset))
        .route("/api/fusionprot/datasets/list", get(list_datasets))
        .route("/api/fusionprot/runs/link-dataset", post(link_dataset))
        .route("/api/fusionprot/checkpoints/log", post(log_checkpoint))
        .route("/api/fusionprot/checkpoints/list", get(list_checkpoints))
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
    if let Some(path) = &r.path {
        check_below_data_root(s.data_root.as_deref(), path)?;
    }
    // The dataset and every shard it links must lie below --data-root, never in the artifact
    // store (which clients write), and every file its tables read must be its own.
    let scope = Confinement {
        below: s.data_root.clone(),
        never: vec![s.artifacts.clone()],
    };
    Ok(Json(
        s.store
            .register_dataset(&name, r.path.as_deref(), r.manifest.as_ref(), &scope)
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

/// Over HTTP a client names a folder on the server's disk, which the server would then open and
/// expose to SQL; only folders below `serve --data-root` may be named (none without it).
fn check_below_data_root(root: Option<&Path>, path: &str) -> Result<(), TrackerError> {
    let Some(root) = root else {
        return Err(TrackerError::Api {
            code: ErrorCode::PermissionDenied,
            message: "registering a dataset by path over HTTP is off: start the server with \
                      --data-root DIR to allow folders below DIR, or register locally with \
                      `fusionprot register DATASET --db FILE`"
                .into(),
        });
    };
    let canonical = std::fs::canonicalize(path)
        .map_err(|e| TrackerError::invalid(format!("dataset path {path}: {e}")))?;
    if !canonical.starts_with(root) {
        return Err(TrackerError::Api {
            code: ErrorCode::PermissionDenied,
            message: format!(
                "dataset path {path} is not below the server's --data-root {}",
                root.display()
            ),
        });
    }
    Ok(())
}
