//! `POST /api/sql`: read-only SQL over the tracker's tables and registered datasets. At most
//! `SqlGate::slots` queries run at once; a request that finds no free slot within
//! `SqlGate::wait` is answered 429 instead of queueing without bound.

#[cfg(feature = "sql")]
use axum::extract::State;
#[cfg(feature = "sql")]
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router, body::Bytes, response::Response};
use serde::Deserialize;

use super::AppState;
#[cfg(feature = "sql")]
use super::request::need;
use super::request::parse;
use crate::error::TrackerError;
use crate::model::de_opt_i64;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/sql", post(sql_query))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_rows: Option<i64>,
    /// Seconds before the query is interrupted; at most the server's limit.
    #[serde(default, deserialize_with = "de_opt_i64")]
    timeout_s: Option<i64>,
    /// `json` (default): columns and rows arrays; `arrow`: an Arrow IPC stream; `parquet`: a
    /// Parquet file.
    #[serde(default)]
    format: ResultFormat,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ResultFormat {
    #[default]
    Json,
    Arrow,
    /// A Parquet file (the SQL console's download).
    Parquet,
}

/// The HTTP header that says, on an Arrow answer, whether the row limit cut the result.
pub const TRUNCATED_HEADER: &str = "x-fusionprot-truncated";

#[cfg(feature = "sql")]
async fn sql_query(State(s): State<AppState>, body: Bytes) -> Result<Response, TrackerError> {
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
    if let Some(t) = r.timeout_s {
        let most = limits.timeout.as_secs();
        let t = u64::try_from(t)
            .ok()
            .filter(|t| (1..=most).contains(t))
            .ok_or_else(|| {
                TrackerError::invalid(format!("timeout_s must be between 1 and {most}"))
            })?;
        limits.timeout = std::time::Duration::from_secs(t);
    }
    let _slot = match tokio::time::timeout(s.sql_gate.wait, s.sql_gate.slots.acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            return Err(TrackerError::Api {
                code: crate::error::ErrorCode::RequestLimitExceeded,
                message: format!(
                    "too many SQL queries at once (at most {}); try again shortly",
                    s.sql_gate.max
                ),
            });
        }
    };
    let result = crate::sql::query(&s.store, &query, limits).await?;
    Ok(match r.format {
        ResultFormat::Json => Json(crate::sql::to_json(&result)?).into_response(),
        ResultFormat::Arrow => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/vnd.apache.arrow.stream",
                ),
                (
                    axum::http::HeaderName::from_static(TRUNCATED_HEADER),
                    if result.truncated { "true" } else { "false" },
                ),
            ],
            crate::sql::to_ipc(&result)?,
        )
            .into_response(),
        ResultFormat::Parquet => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/vnd.apache.parquet",
                ),
                (
                    axum::http::HeaderName::from_static(TRUNCATED_HEADER),
                    if result.truncated { "true" } else { "false" },
                ),
            ],
            crate::sql::to_parquet(&result)?,
        )
            .into_response(),
    })
}

#[cfg(not(feature = "sql"))]
async fn sql_query(body: Bytes) -> Result<Response, TrackerError> {
    let _: SqlRequest = parse(&body)?;
    Err(TrackerError::invalid(
        "this fusionprot was built without SQL (feature `sql`)",
    ))
}
