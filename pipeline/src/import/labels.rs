//! The `labels/v1` table: one row per protein and task, `label_index` = positions in that task's
//! vocabulary (the manifest's `benchmark.tasks`, in file order). An empty list is a protein with
//! no positive label in that task (kept, all negative, as TorchDrug does).

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::{RecordBatch, StringArray};
use arrow_schema::Field;

use crate::dataset::part::PartInfo;
use crate::dataset::schema::Table;
use crate::dataset::write::{TableWriter, WriteError};

/// One row of `labels`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRow<'a> {
    pub protein_id: &'a str,
    pub task: &'a str,
    pub label_index: &'a [i32],
}

/// Writes `rows` (already sorted by protein id) as `dir/labels/`.
///
/// # Errors
/// I/O and Parquet errors.
pub fn write_labels(dir: &Path, rows: &[LabelRow<'_>]) -> Result<Vec<PartInfo>, WriteError> {
    let mut w = TableWriter::new(dir, Table::Labels)?;
    for chunk in rows.chunks(Table::Labels.row_group_rows()) {
        let ids: StringArray = chunk.iter().map(|r| Some(r.protein_id)).collect();
        let tasks: StringArray = chunk.iter().map(|r| Some(r.task)).collect();
        let mut lists = ListBuilder::new(Int32Builder::new()).with_field(Arc::new(Field::new(
            "item",
            arrow_schema::DataType::Int32,
            false,
        )));
        for r in chunk {
            lists.values().append_slice(r.label_index);
            lists.append(true);
        }
        let batch = RecordBatch::try_new(
            Table::Labels.arrow_schema(),
            vec![Arc::new(ids), Arc::new(tasks), Arc::new(lists.finish())],
        )
        .map_err(|source| WriteError::Arrow {
            table: "labels",
            source,
        })?;
        w.write(&batch)?;
    }
    w.finish(dir)
}
