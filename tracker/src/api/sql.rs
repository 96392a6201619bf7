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
/// The HTTP header that lists, on an Arrow answer, the registered datasets left out of the query
/// and why (a JSON array of strings; the JSON answer has them as `warnings`).
pub const WARNINGS_HEADER: &str = "x-fusionprot-warnings";

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
    let scope = crate::dataset_files::Confinement {
        below: None,
        never: vec![s.artifacts.clone()],
    };
    let result = crate::sql::query(&s.store, &query, limits, &scope).await?;
    let binary = |content_type: &'static str, body: Vec<u8>| {
        use axum::http::{HeaderName, HeaderValue, header};
        let warnings = HeaderValue::from_str(&ascii_json(&result.warnings))
            .expect("ASCII JSON is a valid header value");
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    HeaderName::from_static(TRUNCATED_HEADER),
                    HeaderValue::from_static(if result.truncated { "true" } else { "false" }),
                ),
                (HeaderName::from_static(WARNINGS_HEADER), warnings),
            ],
            body,
        )
            .into_response()
    };
    Ok(match r.format {
        ResultFormat::Json => Json(crate::sql::to_json(&result)?).into_response(),
        ResultFormat::Arrow => binary(
            "application/vnd.apache.arrow.stream",
            crate::sql::to_ipc(&result)?,
        ),
        ResultFormat::Parquet => binary(
            "application/vnd.apache.parquet",
            crate::sql::to_parquet(&result)?,
        ),
    })
}

/// A JSON array of strings in ASCII only (other characters as `\uXXXX`), fit for a header.
#[cfg(feature = "sql")]
fn ascii_json(items: &[String]) -> String {
    let text = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

#[cfg(not(feature = "sql"))]
async fn sql_query(body: Bytes) -> Result<Response, TrackerError> {
    let _: SqlRequest = parse(&body)?;
    Err(TrackerError::invalid(
        "this fusionprot was built without SQL (feature `sql`)",
    ))
}
