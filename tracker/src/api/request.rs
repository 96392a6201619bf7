//! What every handler shares: the JSON result type and the parsing of bodies and query parameters
//! into MLflow's "missing value" / "malformed" errors.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::TrackerError;

pub(crate) type ApiResult = Result<Json<Value>, TrackerError>;

pub(crate) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, TrackerError> {
    serde_json::from_slice(body)
        .map_err(|e| TrackerError::invalid(format!("malformed request body: {e}")))
}

pub(crate) fn required<'a>(
    q: &'a HashMap<String, String>,
    key: &str,
) -> Result<&'a str, TrackerError> {
    q.get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            TrackerError::invalid(format!("Missing value for required parameter '{key}'."))
        })
}

pub(crate) fn need(v: Option<String>, key: &str) -> Result<String, TrackerError> {
    v.filter(|s| !s.is_empty()).ok_or_else(|| {
        TrackerError::invalid(format!("Missing value for required parameter '{key}'."))
    })
}
