//! The `go_terms/v1` table (`import go --obo`): the Gene Ontology release the dataset was imported
//! with, one row per term id sorted by it (an `alt_id` is a row of its own whose `primary_id` is
//! its term), with the namespace, the name and GOATOOLS' `depth` (longest `is_a` path to the
//! namespace's root, root 0) and `level` (shortest). The per-term-depth breakdown reads it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, Int32Array, RecordBatch, StringArray};

use crate::dataset::part::PartInfo;
use crate::dataset::read::{self, ReadError};
use crate::dataset::schema::Table;
use crate::dataset::write::{TableWriter, WriteError};

/// One row of `go_terms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermRow {
    pub term_id: String,
    pub primary_id: String,
    pub namespace: String,
    pub name: String,
    pub depth: i32,
    pub level: i32,
}

/// Writes `rows` (sorted by term id) as `dir/go_terms/`.
///
/// # Errors
/// I/O and Parquet errors.
pub fn write_terms(dir: &Path, rows: &[TermRow]) -> Result<Vec<PartInfo>, WriteError> {
    let mut w = TableWriter::new(dir, Table::GoTerms)?;
    for chunk in rows.chunks(Table::GoTerms.row_group_rows()) {
        let s = |f: &dyn Fn(&TermRow) -> &str| -> StringArray {
            chunk.iter().map(|r| Some(f(r))).collect()
        };
        let batch = RecordBatch::try_new(
            Table::GoTerms.arrow_schema(),
            vec![
                Arc::new(s(&|r| &r.term_id)),
                Arc::new(s(&|r| &r.primary_id)),
                Arc::new(s(&|r| &r.namespace)),
                Arc::new(s(&|r| &r.name)),
                Arc::new(chunk.iter().map(|r| r.depth).collect::<Int32Array>()),
                Arc::new(chunk.iter().map(|r| r.level).collect::<Int32Array>()),
            ],
        )
        .map_err(|source| WriteError::Arrow {
            table: "go_terms",
            source,
        })?;
        w.write(&batch)?;
    }
    w.finish(dir)
}

/// `depth` by term id (alternative ids included), from `dataset/go_terms/`.
///
/// # Errors
/// No `go_terms` table (the hint names `import go --obo`), unreadable or malformed parts.
pub fn term_depths(dataset: &Path) -> Result<HashMap<String, i32>, ReadError> {
    let mut out = HashMap::new();
    for b in read::read_table(dataset, Table::GoTerms)? {
        // read_table checked the columns against the tag
        let ids = b
            .column_by_name("term_id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .expect("go_terms term_id, checked");
        let depth = b
            .column_by_name("depth")
            .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
            .expect("go_terms depth, checked");
        for i in 0..b.num_rows() {
            out.insert(ids.value(i).to_owned(), depth.value(i));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_read_back_by_term_and_alt_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let row = |id: &str, primary: &str, depth: i32| TermRow {
            term_id: id.into(),
            primary_id: primary.into(),
            namespace: "biological_process".into(),
            name: "x".into(),
            depth,
            level: depth,
        };
        let rows = [
            row("GO:1", "GO:1", 0),
            row("GO:2", "GO:3", 4),
            row("GO:3", "GO:3", 4),
        ];
        write_terms(dir.path(), &rows).expect("write");
        let d = term_depths(dir.path()).expect("read");
        assert_eq!((d["GO:1"], d["GO:2"], d.len()), (0, 4, 3));
        let e = term_depths(tempfile::tempdir().expect("t").path()).expect_err("no table");
        assert!(e.to_string().contains("go_terms"), "{e}");
    }
}
