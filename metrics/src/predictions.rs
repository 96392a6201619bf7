//! The `predictions/v1` table: one row per protein (or MSP pair), its scores and its 0/1 targets
//! over the task's vocabulary. The trainer writes it; any tool that writes these columns can be
//! scored. Documented in ARCHITECTURE.md.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{Array, ArrayRef, Float32Array, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

/// `fusionprot.schema` of a predictions table.
pub const PREDICTIONS_SCHEMA: &str = "predictions/v1";
/// Optional metadata: a JSON list naming the columns of `prediction` (e.g. `["label"]` for MSP).
pub const TASKS_KEY: &str = "fusionprot.tasks";

#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{}: {message}", .path.display())]
    Table { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// A predictions table in memory: `prediction` and `target` are row-major `[rows, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub ids: Vec<String>,
    pub width: usize,
    pub prediction: Vec<f32>,
    pub target: Vec<f32>,
    /// Column names, when the table carries them.
    pub tasks: Option<Vec<String>>,
}

impl Predictions {
    /// The name of column `j`: from the table's task list, else its index.
    pub fn task_name(&self, j: usize) -> String {
        self.tasks
            .as_ref()
            .and_then(|t| t.get(j).cloned())
            .unwrap_or_else(|| j.to_string())
    }

    /// Checks the shape and values: equal widths, no NaN score, targets 0 or 1.
    ///
    /// # Errors
    /// Names the first offending row by id.
    pub fn validate(&self) -> Result<(), MetricError> {
        let bad = |msg: String| Err(MetricError::Invalid(msg));
        if self.ids.is_empty() {
            return bad("the table has no rows".into());
        }
        if self.width == 0 {
            return bad("the predictions have no columns".into());
        }
        let n = self.ids.len() * self.width;
        if self.prediction.len() != n || self.target.len() != n {
            return bad("prediction and target do not have the same shape".into());
        }
        for (r, id) in self.ids.iter().enumerate() {
            let row = r * self.width..(r + 1) * self.width;
            if let Some(j) = self.prediction[row.clone()].iter().position(|p| p.is_nan()) {
                return bad(format!("row {r} ({id}): prediction[{j}] is NaN"));
            }
            if let Some(j) = self.target[row].iter().position(|&t| t != 0.0 && t != 1.0) {
                return bad(format!(
                    "row {r} ({id}): target[{j}] is {}, targets must be 0 or 1",
                    self.target[r * self.width + j]
                ));
            }
        }
        if let Some(t) = &self.tasks
            && t.len() != self.width
        {
            return bad(format!("{} task names for {} columns", t.len(), self.width));
        }
        Ok(())
    }
}

fn list_field() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Float32, false)))
}

/// Writes `p` as a `predictions/v1` Parquet file (temporary name, then rename).
///
/// # Errors
/// An invalid table, I/O and Parquet errors.
pub fn write_predictions(path: &Path, p: &Predictions) -> Result<(), MetricError> {
    p.validate()?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("protein_id", DataType::Utf8, false),
        Field::new("prediction", list_field(), false),
        Field::new("target", list_field(), false),
    ]));
    let list = |values: &[f32]| -> ArrayRef {
        let mut b = ListBuilder::new(Float32Builder::new()).with_field(Arc::new(Field::new(
            "item",
            DataType::Float32,
            false,
        )));
        for row in values.chunks(p.width) {
            b.values().append_slice(row);
            b.append(true);
        }
        Arc::new(b.finish())
    };
    let ids: StringArray = p.ids.iter().map(|s| Some(s.as_str())).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(ids), list(&p.prediction), list(&p.target)],
    )
    .map_err(|e| MetricError::Invalid(e.to_string()))?;
    let mut meta = vec![KeyValue::new(
        "fusionprot.schema".to_owned(),
        PREDICTIONS_SCHEMA.to_owned(),
    )];
    if let Some(t) = &p.tasks {
        let json = serde_json::to_string(t).map_err(|e| MetricError::Invalid(e.to_string()))?;
        meta.push(KeyValue::new(TASKS_KEY.to_owned(), json));
    }
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(meta))
        .build();
    let tmp = path.with_extension("parquet.tmp");
    let pq = |source| MetricError::Parquet {
        path: tmp.clone(),
        source,
    };
    let file = File::create(&tmp).map_err(|source| MetricError::Io {
        path: tmp.clone(),
        source,
    })?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(pq)?;
    w.write(&batch).map_err(pq)?;
    w.close().map_err(pq)?;
    std::fs::rename(&tmp, path).map_err(|source| MetricError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a predictions table: `protein_id` (utf8; large, view and dictionary-encoded strings
/// too), `prediction` and `target` (lists of float32; float64, large and fixed-size lists as
/// polars and pyarrow write them are cast), every row of one width, no nulls, each protein once;
/// then [`Predictions::validate`].
///
/// # Errors
/// A missing file, a missing or mistyped column (named), rows of different widths (named by id),
/// nulls, a protein id listed twice (both rows named), NaN scores, targets other than 0 and 1.
pub fn read_predictions(path: &Path) -> Result<Predictions, MetricError> {
    let table = |message: String| MetricError::Table {
        path: path.to_owned(),
        message,
    };
    let pq = |source| MetricError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|source| MetricError::Io {
        path: path.to_owned(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let kv = builder.metadata().file_metadata().key_value_metadata();
    let meta = |key: &str| {
        kv.and_then(|kv| kv.iter().find(|k| k.key == key))
            .and_then(|k| k.value.clone())
    };
    if let Some(tag) = meta("fusionprot.schema")
        && tag != PREDICTIONS_SCHEMA
    {
        return Err(table(format!(
            "schema {tag:?}, this fusionprot scores {PREDICTIONS_SCHEMA:?}"
        )));
    }
    let tasks = match meta(TASKS_KEY) {
        Some(json) => Some(
            serde_json::from_str::<Vec<String>>(&json)
                .map_err(|e| table(format!("{TASKS_KEY} is not a JSON list of names: {e}")))?,
        ),
        None => None,
    };
    let mut p = Predictions {
        ids: Vec::new(),
        width: 0,
        prediction: Vec::new(),
        target: Vec::new(),
        tasks,
    };
    let mut width = None;
    for batch in builder.build().map_err(pq)? {
        let batch = batch.map_err(|e| table(e.to_string()))?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| table(format!("no column {name:?}")))
        };
        let id_column = column("protein_id")?;
        let id_column = arrow_cast::cast(id_column, &DataType::Utf8).map_err(|e| {
            table(format!(
                "column \"protein_id\" is {}, not text: {e}",
                id_column.data_type()
            ))
        })?;
        let ids = id_column
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| table("column \"protein_id\" is not utf8".into()))?;
        let first = p.ids.len();
        for i in 0..ids.len() {
            if ids.is_null(i) {
                return Err(table(format!("row {}: protein_id is null", first + i)));
            }
            p.ids.push(ids.value(i).to_owned());
        }
        for (name, out) in [("prediction", &mut p.prediction), ("target", &mut p.target)] {
            let raw = column(name)?;
            let floats = DataType::List(Arc::new(Field::new("item", DataType::Float32, true)));
            let cast = match raw.data_type() {
                DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
                    arrow_cast::cast(raw, &floats).map_err(|e| {
                        table(format!(
                            "column {name:?} ({}) is not a list of numbers: {e}",
                            raw.data_type()
                        ))
                    })?
                }
                other => {
                    return Err(table(format!(
                        "column {name:?} is {other}, not a list of floats"
                    )));
                }
            };
            let list = cast
                .as_any()
                .downcast_ref::<ListArray>()
                .ok_or_else(|| table(format!("column {name:?} is not a list of floats")))?;
            for i in 0..list.len() {
                let id = &p.ids[first + i];
                if list.is_null(i) {
                    return Err(table(format!("row {} ({id}): {name} is null", first + i)));
                }
                let row = list.value(i);
                let w = *width.get_or_insert(row.len());
                if row.len() != w {
                    return Err(table(format!(
                        "row {} ({id}): {name} has {} values, earlier rows {w}",
                        first + i,
                        row.len()
                    )));
                }
                if row.null_count() > 0 {
                    return Err(table(format!(
                        "row {} ({id}): {name} holds nulls",
                        first + i
                    )));
                }
                if let Some(a) = row.as_any().downcast_ref::<Float32Array>() {
                    out.extend_from_slice(a.values());
                } else {
                    return Err(table(format!(
                        "column {name:?} holds {}, not float32",
                        row.data_type()
                    )));
                }
            }
        }
    }
    p.width = width.unwrap_or(0);
    let mut first_row: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(p.ids.len());
    for (row, id) in p.ids.iter().enumerate() {
        if let Some(earlier) = first_row.insert(id, row) {
            return Err(table(format!(
                "protein {id} is listed twice (rows {earlier} and {row}): each protein is scored once"
            )));
        }
    }
    p.validate().map_err(|e| table(e.to_string()))?;
    Ok(p)
}
