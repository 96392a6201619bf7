//! The tracking entities in MLflow's JSON shape (what the REST API returns and accepts).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub last_update_time: i64,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_uuid: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

/// A metric point. `value` may be NaN or ±inf; JSON carries those as the strings "NaN",
/// "Infinity" and "-Infinity", which protobuf's JSON parser (the MLflow client) accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    #[serde(serialize_with = "ser_f64", deserialize_with = "de_f64")]
    pub value: f64,
    #[serde(default, deserialize_with = "de_i64")]
    pub timestamp: i64,
    #[serde(default, deserialize_with = "de_i64")]
    pub step: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunData {
    pub metrics: Vec<Metric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    pub outputs: RunOutputs,
}

/// A run's outputs as MLflow 3 returns them: the logged models it produced. Logged models are
/// not kept here (outside the tracking API), so this is always `{}`, which is what MLflow returns
/// for a run without any.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunOutputs {}

/// A run's inputs as MLflow returns them: `{}` when it has none.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunInputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
}

/// One dataset logged to a run (`runs/log-inputs`), with the input's tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInput {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    pub dataset: Dataset,
}

/// A dataset as MLflow's clients describe it. Missing text fields are empty, as protobuf reads
/// them; `schema` and `profile` are left out of the answer when not given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub source_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

fn ser_f64<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        s.serialize_str("NaN")
    } else if v.is_infinite() {
        s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        s.serialize_f64(*v)
    }
}

/// A double given as a JSON number or as protobuf's string forms ("NaN", "Infinity", "1.5").
pub fn de_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        F(f64),
        S(String),
    }
    match Num::deserialize(d)? {
        Num::F(f) => Ok(f),
        Num::S(s) => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("not a number: {other:?}"))),
        },
    }
}

/// An int64 given as a JSON number or a decimal string (protobuf's JSON form of int64).
pub fn de_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    de_opt_i64(d).map(Option::unwrap_or_default)
}

pub fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        I(i64),
        F(f64),
        S(String),
    }
    match Option::<Int>::deserialize(d)? {
        None => Ok(None),
        Some(Int::I(i)) => Ok(Some(i)),
        Some(Int::F(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Some(f as i64)),
        Some(Int::F(f)) => Err(serde::de::Error::custom(format!("not an integer: {f}"))),
        Some(Int::S(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("not an integer: {s:?}"))),
    }
}

/// MLflow's stored form of a metric value: NaN as 0 with a flag, ±inf as ±f64::MAX.
pub fn stored(value: f64) -> (f64, bool) {
    if value.is_nan() {
        (0.0, true)
    } else if value.is_infinite() {
        (if value > 0.0 { f64::MAX } else { f64::MIN }, false)
    } else {
        (value, false)
    }
}

/// The value a stored metric reads back as.
pub fn loaded(value: f64, is_nan: bool) -> f64 {
    if is_nan { f64::NAN } else { value }
}
