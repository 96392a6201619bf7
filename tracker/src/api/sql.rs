//! `POST /api/sql`: read-only SQL over the tracker's tables and registered datasets.

use axum::body::Bytes;
#[cfg(feature = "sql")]
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::request::{ApiResult, need, parse};
use crate::error::TrackerError;
use crate::model::de_opt_i64;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/sql", post(sql_query))
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
