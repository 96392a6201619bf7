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

/// One of MLflow's request checks (`mlflow/server/handlers.py`: `_assert_required`,
/// `_assert_string`, `_assert_intlike`, …), applied as its `_get_request_message` applies them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Field {
    /// Present, not null and not "".
    Required,
    Str,
    Int,
    Float,
    Array,
    /// An array of strings.
    Strings,
    /// An integer no larger than this.
    AtMost(i64),
}

impl Field {
    /// The type checks, which MLflow skips when protobuf parsed the body.
    fn is_type(self) -> bool {
        !matches!(self, Field::Required | Field::AtMost(_))
    }
}

const SEE_DOCS: &str = " See the API docs for more information about request parameters.";

/// MLflow's wording for a missing value.
pub(crate) fn missing(path: &str) -> TrackerError {
    TrackerError::invalid(format!(
        "Missing value for required parameter '{path}'.{SEE_DOCS}"
    ))
}

/// MLflow's wording for a value of the wrong type or out of range (`invalid_value` with the
/// type hint): the value as compact JSON with sorted keys, the type as Python names it.
fn invalid(path: &str, v: &Value) -> TrackerError {
    let python_type = match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    };
    TrackerError::invalid(format!(
        "Invalid value {v} for parameter '{path}' supplied:  Hint: Value was of type '{python_type}'.{SEE_DOCS}"
    ))
}

fn int_like(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float_like(v: &Value) -> bool {
    match v {
        Value::Number(_) | Value::Bool(_) => true,
        Value::String(s) => s.trim().parse::<f64>().is_ok(),
        _ => false,
    }
}

/// Whether protobuf's JSON parser takes `v` for a field with these checks (strings for string
/// fields; numbers or numeric strings for numbers; arrays for repeated fields).
fn proto_accepts(v: &Value, checks: &[Field]) -> bool {
    if v.is_null() {
        return true;
    }
    checks.iter().all(|c| match c {
        Field::Str => v.is_string(),
        Field::Int => {
            matches!(v, Value::Number(_)) || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok())
        }
        Field::Float => {
            matches!(v, Value::Number(_))
                || v.as_str().is_some_and(|s| {
                    s.parse::<f64>().is_ok() || matches!(s, "NaN" | "Infinity" | "-Infinity")
                })
        }
        Field::Array => v.is_array(),
        Field::Strings => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Field::Required | Field::AtMost(_) => true,
    })
}

/// The body, checked field by field as MLflow checks it (its messages, in its order), then
/// read into `T`. An empty body is `{}`.
///
/// # Errors
/// The first failed check, or a body that is not a JSON object of the expected shape.
pub(crate) fn checked<T: DeserializeOwned>(
    body: &Bytes,
    schema: &[(&str, &[Field])],
) -> Result<T, TrackerError> {
    checked_then(body, schema, |_| Ok(()))
}

/// [`checked`], with `more` checks of the parsed body after the schema's.
///
/// # Errors
/// As [`checked`], and `more`'s.
pub(crate) fn checked_then<T: DeserializeOwned>(
    body: &Bytes,
    schema: &[(&str, &[Field])],
    more: impl FnOnce(&Value) -> Result<(), TrackerError>,
) -> Result<T, TrackerError> {
    let json: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| TrackerError::invalid(format!("malformed request body: {e}")))?
    };
    check_fields(&json, schema)?;
    more(&json)?;
    serde_json::from_value(json)
        .map_err(|e| TrackerError::invalid(format!("malformed request body: {e}")))
}

/// MLflow's `_validate_request_json_with_schema`.
fn check_fields(json: &Value, schema: &[(&str, &[Field])]) -> Result<(), TrackerError> {
    let proto_ok = schema
        .iter()
        .all(|(k, checks)| json.get(k).is_none_or(|v| proto_accepts(v, checks)));
    for (key, checks) in schema {
        let given = json.get(key);
        if given.is_none() && !checks.contains(&Field::Required) {
            continue;
        }
        let mut value = given.cloned().unwrap_or(Value::Null);
        if *key == "run_id"
            && value.is_null()
            && let Some(u) = json.get("run_uuid")
        {
            value = u.clone();
        }
        for &c in *checks {
            if c.is_type() && proto_ok {
                continue;
            }
            let ok = match c {
                Field::Required => !value.is_null() && value.as_str() != Some(""),
                Field::Str => value.is_string(),
                Field::Int => value.is_null() || int_like(&value).is_some(),
                Field::Float => value.is_null() || float_like(&value),
                Field::Array => value.is_array(),
                Field::Strings => value
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string)),
                Field::AtMost(max) => int_like(&value).is_none_or(|n| n <= max),
            };
            if !ok {
                return Err(if c == Field::Required {
                    missing(key)
                } else {
                    invalid(key, &value)
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Field::*;

    fn check(body: &str, schema: &[(&str, &[Field])]) -> Result<(), String> {
        let v: Value = serde_json::from_str(body).expect("json");
        check_fields(&v, schema).map_err(|e| e.to_string())
    }

    #[test]
    fn messages_are_mlflows() {
        let schema: &[(&str, &[Field])] = &[("run_id", &[Required, Str]), ("max_results", &[Int])];
        assert_eq!(
            check("{}", schema).expect_err("missing"),
            "Missing value for required parameter 'run_id'. See the API docs for more information about request parameters."
        );
        assert_eq!(
            check(r#"{"run_id": 31}"#, schema).expect_err("type"),
            "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'. See the API docs for more information about request parameters."
        );
        assert!(check(r#"{"run_uuid": "abc"}"#, schema).is_ok());
        assert!(check(r#"{"run_id": "a", "max_results": "7"}"#, schema).is_ok());
        assert!(
            check(r#"{"run_id": "a", "max_results": "x"}"#, schema)
                .expect_err("not an int")
                .contains("Invalid value \"x\" for parameter 'max_results'")
        );
        let limit: &[(&str, &[Field])] = &[("max_results", &[Int, AtMost(50_000)])];
        assert!(check(r#"{"max_results": 50000}"#, limit).is_ok());
        assert!(
            check(r#"{"max_results": 50001}"#, limit)
                .expect_err("too many")
                .starts_with("Invalid value 50001 for parameter 'max_results' supplied")
        );
    }
}
