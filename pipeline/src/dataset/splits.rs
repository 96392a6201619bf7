//! The `splits/v2` table: named splits of one dataset side by side (`family` from `fusionprot
//! split`, `official`, `official-30` … from a benchmark import), one row per protein and name.
//! A writer replaces the rows of the names it writes and keeps the others.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, Int32Array, RecordBatch, StringArray};

use crate::dataset::part::PartInfo;
use crate::dataset::read::{self, ReadError};
use crate::dataset::schema::Table;
use crate::dataset::write::{TableWriter, WriteError};

/// One protein's place in one named split.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SplitRow {
    pub protein_id: String,
    pub name: String,
    /// `train`, `valid`, `test` or `removed`.
    pub split: String,
    /// MMseqs2 representative (certified splits only).
    pub cluster_id: Option<String>,
    /// Component index (certified splits only).
    pub component_id: Option<i32>,
}

/// Split names are plain: letters, digits, `.`, `_`, `-`, at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Every row of `dataset/splits/`; none when there is no table. A table of an older version
/// (`splits/v1`, one unnamed split) is not read: the caller's new rows replace it.
///
/// # Errors
/// Unreadable parts.
pub fn read_splits(dataset: &Path) -> Result<Vec<SplitRow>, ReadError> {
    if !dataset.join(Table::Splits.name()).is_dir() {
        return Ok(Vec::new());
    }
    let batches = match read::read_table(dataset, Table::Splits) {
        Ok(b) => b,
        Err(ReadError::Schema { path, found, .. }) => {
            tracing::warn!(path = %path.display(), found = ?found, "replacing a splits table of an older version");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut rows = Vec::new();
    for b in &batches {
        let s = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("splits/v2 utf8 column")
        };
        let (ids, names, splits, clusters) = (s(0), s(1), s(2), s(3));
        let comp = b
            .column(4)
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect("splits/v2 component_id");
        for i in 0..b.num_rows() {
            rows.push(SplitRow {
                protein_id: ids.value(i).to_owned(),
                name: names.value(i).to_owned(),
                split: splits.value(i).to_owned(),
                cluster_id: (!clusters.is_null(i)).then(|| clusters.value(i).to_owned()),
                component_id: (!comp.is_null(i)).then(|| comp.value(i)),
            });
        }
    }
    Ok(rows)
}

/// Writes `rows` as `dir/splits/`, sorted by protein id, then name.
///
/// # Errors
/// I/O and Parquet errors.
pub fn write_splits(dir: &Path, mut rows: Vec<SplitRow>) -> Result<Vec<PartInfo>, WriteError> {
    rows.sort();
    let mut w = TableWriter::new(dir, Table::Splits)?;
    for chunk in rows.chunks(Table::Splits.row_group_rows()) {
        let col = |f: &dyn Fn(&SplitRow) -> Option<&str>| -> StringArray {
            chunk.iter().map(f).collect()
        };
        let batch = RecordBatch::try_new(
            Table::Splits.arrow_schema(),
            vec![
                Arc::new(col(&|r| Some(&r.protein_id))),
                Arc::new(col(&|r| Some(&r.name))),
                Arc::new(col(&|r| Some(&r.split))),
                Arc::new(col(&|r| r.cluster_id.as_deref())),
                Arc::new(chunk.iter().map(|r| r.component_id).collect::<Int32Array>()),
            ],
        )
        .map_err(|source| WriteError::Arrow {
            table: "splits",
            source,
        })?;
        w.write(&batch)?;
    }
    w.finish(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_other_names_survive_a_rewrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let row = |id: &str, name: &str, split: &str| SplitRow {
            protein_id: id.into(),
            name: name.into(),
            split: split.into(),
            cluster_id: None,
            component_id: None,
        };
        write_splits(
            dir.path(),
            vec![row("b", "official", "test"), row("a", "official", "train")],
        )
        .expect("write");
        let mut rows = read_splits(dir.path()).expect("read");
        assert_eq!(rows[0], row("a", "official", "train"));
        rows.push(SplitRow {
            cluster_id: Some("a".into()),
            component_id: Some(0),
            ..row("a", "family", "valid")
        });
        std::fs::remove_dir_all(dir.path().join("splits")).expect("rm");
        write_splits(dir.path(), rows).expect("rewrite");
        let back = read_splits(dir.path()).expect("read");
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].name, "family");
        assert_eq!(back[0].component_id, Some(0));
        assert!(valid_name("official-0.3") && !valid_name("a/b") && !valid_name(""));
    }
}
