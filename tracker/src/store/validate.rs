//! The limits MLflow's clients rely on, and the checks every write and search applies first:
//! names, tag values, experiment ids, page tokens and result counts.

use crate::error::TrackerError;
use crate::model::KeyValue;

/// MLflow's limits, which its clients rely on.
pub mod limits {
    pub const MAX_METRICS_PER_BATCH: usize = 1000;
    pub const MAX_PARAMS_PER_BATCH: usize = 100;
    pub const MAX_TAGS_PER_BATCH: usize = 100;
    pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
    pub const MAX_BATCH_BYTES: usize = 1_000_000;
    pub const MAX_KEY_LEN: usize = 250;
    pub const MAX_PARAM_VALUE_LEN: usize = 6000;
    pub const MAX_TAG_VALUE_LEN: usize = 8000;
    pub const MAX_NAME_LEN: usize = 500;
    pub const MAX_RESULTS: i64 = 50_000;
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// MLflow's `_validate_metric` timestamp rule: a nonnegative timestamp, its message naming
/// `path` (`metrics[i]` in a batch, empty for log-metric) and the value as Python prints it.
pub(crate) fn valid_metric_time(path: &str, m: &crate::model::Metric) -> Result<(), TrackerError> {
    if m.timestamp >= 0 {
        return Ok(());
    }
    let value = if m.value.is_nan() {
        "nan".to_owned()
    } else if m.value.is_infinite() {
        if m.value > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{:?}", m.value)
    };
    let field = if path.is_empty() {
        "timestamp".to_owned()
    } else {
        format!("{path}.timestamp")
    };
    Err(TrackerError::invalid(format!(
        "Invalid value {} for parameter '{field}' supplied: metric '{}' (value={value}). Timestamp must be a nonnegative long (64-bit integer) ",
        m.timestamp, m.key
    )))
}

pub(crate) fn valid_key(kind: &str, key: &str) -> Result<(), TrackerError> {
    if key.is_empty() || key.len() > limits::MAX_KEY_LEN {
        return Err(TrackerError::invalid(format!(
            "{kind} name must be 1 to {} characters, got {}",
            limits::MAX_KEY_LEN,
            key.len()
        )));
    }
    let ok_chars = key
        .chars()
        .all(|c| c.is_alphanumeric() || "_-. /:".contains(c));
    if !ok_chars || key.starts_with('/') || key.split('/').any(|p| p == "..") {
        return Err(TrackerError::invalid(format!(
            "Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/), and may not be absolute or contain '..'"
        )));
    }
    Ok(())
}

pub(crate) fn valid_tag(t: &KeyValue) -> Result<(), TrackerError> {
    valid_key("tag", &t.key)?;
    if t.value.len() > limits::MAX_TAG_VALUE_LEN {
        return Err(TrackerError::invalid(format!(
            "Tag value for key '{}' is {} characters; the limit is {}",
            t.key,
            t.value.len(),
            limits::MAX_TAG_VALUE_LEN
        )));
    }
    Ok(())
}

pub(crate) fn parse_experiment_id(id: &str) -> Result<i64, TrackerError> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| TrackerError::invalid(format!("experiment_id must be an integer, got {id:?}")))
}

/// Page tokens are opaque to clients: the offset, prefixed so a stray value is recognised.
pub(crate) fn parse_page_token(token: Option<&str>) -> Result<i64, TrackerError> {
    match token.filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(t) => t
            .strip_prefix("fp1:")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| TrackerError::invalid(format!("Invalid page token {t:?}"))),
    }
}

pub(crate) fn page_token(offset: i64) -> String {
    format!("fp1:{offset}")
}

pub(crate) fn check_max_results(max: Option<i64>, default: i64) -> Result<i64, TrackerError> {
    let m = max.unwrap_or(default);
    if !(1..=limits::MAX_RESULTS).contains(&m) {
        return Err(TrackerError::invalid(format!(
            "max_results must be between 1 and {}, got {m}",
            limits::MAX_RESULTS
        )));
    }
    Ok(m)
}
