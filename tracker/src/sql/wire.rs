//! How a result travels: one JSON shape (`/api/sql`, `fusionprot query --format json`) with the
//! columns listed explicitly — names in order, duplicates included, Arrow types — and rows as
//! arrays with explicit nulls; and Arrow IPC streams (`"format": "arrow"`), which carry the exact
//! schema and values, so `fusionprot query --tracker` prints what `--db` prints.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use serde_json::{Value, json};

use super::SqlResult;
use crate::error::{ErrorCode, TrackerError};

fn encoding(what: &str, e: impl std::fmt::Display) -> TrackerError {
    TrackerError::Api {
        code: ErrorCode::InternalError,
        message: format!("cannot encode the result {what}: {e}"),
    }
}

/// `{"columns": [{"name", "type"}…], "rows": [[…]…], "truncated": bool}`, plus `"warnings"` (the
/// registered datasets left out, each with why) when there are any. A value that cannot be
/// written as JSON is an error, never a silently shorter answer.
///
/// # Errors
/// A column whose type arrow-json cannot write.
pub fn to_json(result: &SqlResult) -> Result<Value, TrackerError> {
    let columns: Vec<Value> = result
        .schema
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() }))
        .collect();
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for batch in &result.batches {
        let start = rows.len();
        rows.extend((0..batch.num_rows()).map(|_| Vec::with_capacity(columns.len())));
        for (i, field) in result.schema.fields().iter().enumerate() {
            for (r, v) in column_values(field, batch.column(i))?
                .into_iter()
                .enumerate()
            {
                rows[start + r].push(v);
            }
        }
    }
    let mut doc = json!({ "columns": columns, "rows": rows, "truncated": result.truncated });
    if !result.warnings.is_empty() {
        doc["warnings"] = json!(result.warnings);
    }
    Ok(doc)
}

/// One column's values as JSON, nulls kept: written as a one-column batch under a fixed name so
/// duplicate or odd column names cannot collide.
fn column_values(field: &Field, array: &ArrayRef) -> Result<Vec<Value>, TrackerError> {
    let what = || format!("column {:?} ({})", field.name(), field.data_type());
    let single = Schema::new(vec![Field::new("v", field.data_type().clone(), true)]);
    let batch = RecordBatch::try_new(Arc::new(single), vec![array.clone()])
        .map_err(|e| encoding(&what(), e))?;
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::JsonArray>(Vec::new());
    writer.write(&batch).map_err(|e| encoding(&what(), e))?;
    writer.finish().map_err(|e| encoding(&what(), e))?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let objects: Vec<serde_json::Map<String, Value>> =
        serde_json::from_slice(&bytes).map_err(|e| encoding(&what(), e))?;
    if objects.len() != array.len() {
        return Err(encoding(
            &what(),
            format!("{} values for {} rows", objects.len(), array.len()),
        ));
    }
    Ok(objects
        .into_iter()
        .map(|mut o| o.remove("v").unwrap_or(Value::Null))
        .collect())
}

/// The result with every nested column (lists, structs, maps) as its JSON text, one value per
/// row (null stays null): what CSV, which has no nested values, can hold.
///
/// # Errors
/// A value arrow-json cannot write.
pub fn nested_as_json_text(
    result: &SqlResult,
) -> Result<(SchemaRef, Vec<RecordBatch>), TrackerError> {
    let nested = |t: &arrow_schema::DataType| {
        use arrow_schema::DataType::{FixedSizeList, LargeList, List, ListView, Map, Struct};
        matches!(
            t,
            List(_) | LargeList(_) | FixedSizeList(..) | ListView(_) | Struct(_) | Map(..)
        )
    };
    let fields: Vec<Field> = result
        .schema
        .fields()
        .iter()
        .map(|f| {
            if nested(f.data_type()) {
                Field::new(f.name(), arrow_schema::DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut batches = Vec::with_capacity(result.batches.len());
    for batch in &result.batches {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (i, field) in result.schema.fields().iter().enumerate() {
            let column = batch.column(i);
            if nested(field.data_type()) {
                let text: arrow_array::StringArray = column_values(field, column)?
                    .into_iter()
                    .map(|v| (!v.is_null()).then(|| v.to_string()))
                    .collect();
                columns.push(Arc::new(text));
            } else {
                columns.push(column.clone());
            }
        }
        batches.push(
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| encoding("as text", e))?,
        );
    }
    Ok((schema, batches))
}

/// The result as an Arrow IPC stream (schema first, even with no rows).
///
/// # Errors
/// An encoding failure.
pub fn to_ipc(result: &SqlResult) -> Result<Vec<u8>, TrackerError> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &result.schema)
        .map_err(|e| encoding("as Arrow IPC", e))?;
    for b in &result.batches {
        w.write(b).map_err(|e| encoding("as Arrow IPC", e))?;
    }
    w.finish().map_err(|e| encoding("as Arrow IPC", e))?;
    drop(w);
    Ok(out)
}

/// The result as a Parquet file (zstd), as `fusionprot query --format parquet` writes it.
///
/// # Errors
/// An encoding failure.
pub fn to_parquet(result: &SqlResult) -> Result<Vec<u8>, TrackerError> {
    let mut out = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, result.schema.clone(), Some(props))
        .map_err(|e| encoding("as Parquet", e))?;
    for b in &result.batches {
        w.write(b).map_err(|e| encoding("as Parquet", e))?;
    }
    w.close().map_err(|e| encoding("as Parquet", e))?;
    Ok(out)
}

/// Reads an Arrow IPC stream written by [`to_ipc`].
///
/// # Errors
/// A malformed stream.
pub fn from_ipc(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), TrackerError> {
    let bad = |e: arrow_schema::ArrowError| {
        TrackerError::invalid(format!("malformed Arrow IPC result: {e}"))
    };
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(bad)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(bad)?;
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, StringArray};

    fn result() -> SqlResult {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", arrow_schema::DataType::Int32, true),
            Field::new("a", arrow_schema::DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![None, Some("x")])),
            ],
        )
        .expect("batch");
        SqlResult {
            schema,
            batches: vec![batch],
            truncated: false,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn json_keeps_duplicate_names_order_types_and_nulls() {
        let v = to_json(&result()).expect("json");
        assert_eq!(
            v,
            json!({
                "columns": [{"name": "a", "type": "Int32"}, {"name": "a", "type": "Utf8"}],
                "rows": [[1, null], [null, "x"]],
                "truncated": false,
            })
        );
    }

    #[test]
    fn arrow_ipc_round_trips_exactly_even_without_rows() {
        let r = result();
        let (schema, batches) = from_ipc(&to_ipc(&r).expect("ipc")).expect("read");
        assert_eq!(schema, r.schema);
        assert_eq!(batches, r.batches);
        let empty = SqlResult {
            schema: r.schema.clone(),
            batches: Vec::new(),
            truncated: true,
            warnings: Vec::new(),
        };
        let (schema, batches) = from_ipc(&to_ipc(&empty).expect("ipc")).expect("read");
        assert_eq!(schema, r.schema);
        assert!(batches.is_empty());
        assert!(from_ipc(b"not arrow").is_err());
    }
}
