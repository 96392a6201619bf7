//! Experiments: create, get (by id or name), search, delete / restore, rename, tags.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::request::Field::{self, Array, Int, Required, Str};
use super::request::{ApiResult, checked, need, required};
use crate::error::TrackerError;
use crate::model::{KeyValue, de_opt_i64};

pub(crate) fn routes() -> Router<AppState> {
    let m = "/api/2.0/mlflow";
    Router::new()
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
        .route(
            &format!("{m}/experiments/delete-experiment-tag"),
            post(delete_experiment_tag),
        )
        // The MLflow UI's prefix for the same reads.
        .route("/ajax-api/2.0/mlflow/experiments/get", get(get_experiment))
        .route(
            "/ajax-api/2.0/mlflow/experiments/get-by-name",
            get(get_experiment_by_name),
        )
        .route(
            "/ajax-api/2.0/mlflow/experiments/search",
            post(search_experiments).get(search_experiments_get),
        )
}

/// A relative local artifact location made absolute against the server's working folder, as
/// MLflow's `resolve_uri_if_local` does; URIs and absolute paths stay as given.
fn resolve_if_local(location: &str) -> String {
    let path = std::path::Path::new(location);
    if location.is_empty() || location.contains(':') || path.is_absolute() {
        return location.to_owned();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path).display().to_string())
        .unwrap_or_else(|_| location.to_owned())
}

/// Requests that name only an experiment.
const EXPERIMENT_ID: &[(&str, &[Field])] = &[("experiment_id", &[Required, Str])];

#[derive(Deserialize)]
struct DeleteExperimentTag {
    experiment_id: Option<String>,
    key: Option<String>,
}

async fn delete_experiment_tag(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: DeleteExperimentTag = checked(
        &body,
        &[
            ("experiment_id", &[Required, Str]),
            ("key", &[Required, Str]),
        ],
    )?;
    let id = need(r.experiment_id, "experiment_id")?;
    let key = need(r.key, "key")?;
    s.store.delete_experiment_tag(&id, &key).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct CreateExperiment {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_experiment(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: CreateExperiment = checked(
        &body,
        &[
            ("name", &[Required, Str]),
            ("artifact_location", &[Str]),
            ("tags", &[Array]),
        ],
    )?;
    let name = need(r.name, "name")?;
    let location = r.artifact_location.as_deref().map(resolve_if_local);
    let id = s
        .store
        .create_experiment(&name, location.as_deref(), &r.tags)
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
    let r: SearchExperiments = checked(
        &body,
        &[
            ("max_results", &[Int]),
            ("order_by", &[Array]),
            ("filter", &[Str]),
            ("page_token", &[Str]),
        ],
    )?;
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
    let r: ExperimentId = checked(&body, EXPERIMENT_ID)?;
    s.store
        .set_experiment_lifecycle(&need(r.experiment_id, "experiment_id")?, true)
        .await?;
    Ok(Json(json!({})))
}

async fn restore_experiment(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: ExperimentId = checked(&body, EXPERIMENT_ID)?;
    s.store
        .set_experiment_lifecycle(&need(r.experiment_id, "experiment_id")?, false)
        .await?;
    Ok(Json(json!({})))
}

async fn update_experiment(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: ExperimentId = checked(
        &body,
        &[
            ("experiment_id", &[Required, Str]),
            ("new_name", &[Str, Required]),
        ],
    )?;
    s.store
        .rename_experiment(
            &need(r.experiment_id, "experiment_id")?,
            &need(r.new_name, "new_name")?,
        )
        .await?;
    Ok(Json(json!({})))
}

async fn set_experiment_tag(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let r: ExperimentId = checked(
        &body,
        &[
            ("experiment_id", &[Required, Str]),
            ("key", &[Required, Str]),
            ("value", &[Str]),
        ],
    )?;
    let tag = KeyValue {
        key: need(r.key, "key")?,
        value: r.value.unwrap_or_default(),
    };
    s.store
        .set_experiment_tag(&need(r.experiment_id, "experiment_id")?, &tag)
        .await?;
    Ok(Json(json!({})))
}
