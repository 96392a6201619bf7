//! A table part with the right schema tag but other columns (written by another tool, or edited)
//! is refused by name — file, column, expected and found type — by `show`, `show --protein`,
//! `split` and `train`, which exit non-zero and write nothing (before, they panicked on
//! `expect("schema checked")`).

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use common::train::{s, setup};
use common::{fusionprot, text};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

/// The ways a part can differ from its tag's columns.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A column left out.
    Missing,
    /// An Int32 column written as text.
    WrongType,
    /// A column the tag does not have.
    Extra,
}

/// Rewrites `part` in `shape` — without `missing`, with the Int32 column `retyped` as text, or
/// with one more column — keeping its schema tag and every other column.
fn reshape(part: &Path, shape: Shape, missing: &str, retyped: &str) {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(File::open(part).expect("part")).expect("parquet");
    let tags = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let batches: Vec<RecordBatch> = builder
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("rows");
    let reshaped: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let schema = b.schema();
            let mut fields: Vec<Field> = Vec::new();
            let mut columns: Vec<ArrayRef> = Vec::new();
            for (field, column) in schema.fields().iter().zip(b.columns()) {
                match shape {
                    Shape::Missing if field.name() == missing => continue,
                    Shape::WrongType if field.name() == retyped => {
                        let ints = column
                            .as_any()
                            .downcast_ref::<Int32Array>()
                            .expect("an Int32 column");
                        let text: StringArray =
                            ints.iter().map(|v| v.map(|v| v.to_string())).collect();
                        fields.push(Field::new(retyped, DataType::Utf8, false));
                        columns.push(Arc::new(text));
                    }
                    _ => {
                        fields.push(field.as_ref().clone());
                        columns.push(Arc::clone(column));
                    }
                }
            }
            if let Shape::Extra = shape {
                fields.push(Field::new("note", DataType::Utf8, true));
                columns.push(Arc::new(StringArray::from(vec![Some("x"); b.num_rows()])));
            }
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
        })
        .collect();
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(tags))
        .build();
    let mut w = ArrowWriter::try_new(
        File::create(part).expect("rewrite"),
        reshaped[0].schema(),
        Some(props),
    )
    .expect("writer");
    for b in &reshaped {
        w.write(b).expect("write");
    }
    w.close().expect("close");
}

/// Every file under `dir` with its size (what a refused command must leave as it was).
fn listing(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), e.metadata().expect("meta").len());
            }
        }
    }
    out
}

#[test]
fn a_part_whose_columns_differ_from_its_tag_is_refused_by_name_and_nothing_is_written() {
    for shape in [Shape::Missing, Shape::WrongType, Shape::Extra] {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = setup(dir.path(), "");
        let ds = dir.path().join("ec");
        let id = {
            let o = fusionprot(&["show", s(&ds), "--limit", "1"]);
            assert!(o.status.success(), "{}", text(&o));
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.split_whitespace().next())
                .expect("a protein id")
                .to_owned()
        };
        let refused = |args: &[&str], part: &Path, column: &str, words: &str| {
            let o = fusionprot(args);
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert!(!o.status.success(), "{shape:?} {args:?} was accepted");
            assert!(
                err.contains(s(part))
                    && err.contains(&format!("`{column}`"))
                    && err.contains(words),
                "{shape:?} {args:?}: the error names the file, the column and the problem:\n{err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        };
        let expect = |tag: &str, missing: &'static str, retyped: &'static str| match shape {
            Shape::Missing => (missing, "is missing".to_owned()),
            Shape::WrongType => (retyped, "is Utf8, expected Int32".to_owned()),
            Shape::Extra => ("note", format!("that {tag} does not have")),
        };

        // proteins: what show and split read.
        let part = ds.join("proteins/part-00000.parquet");
        let pristine = std::fs::read(&part).expect("part");
        reshape(&part, shape, "sequence", "num_residues");
        let before = listing(dir.path());
        let (column, words) = expect("proteins/v1", "sequence", "num_residues");
        refused(&["show", s(&ds)], &part, column, &words);
        refused(&["show", s(&ds), "--protein", &id], &part, column, &words);
        refused(&["split", s(&ds)], &part, column, &words);
        assert_eq!(
            listing(dir.path()),
            before,
            "{shape:?}: a refused command wrote"
        );
        std::fs::write(&part, pristine).expect("restore");

        // residues: what train reads (with labels and edges).
        let part = ds.join("residues/part-00000.parquet");
        reshape(&part, shape, "residue_name", "residue_number");
        let before = listing(dir.path());
        let (column, words) = expect("residues/v1", "residue_name", "residue_number");
        let run = dir.path().join("run");
        refused(
            &["train", "--config", s(&cfg), "--out", s(&run), "-j", "1"],
            &part,
            column,
            &words,
        );
        assert!(!run.exists(), "{shape:?}: train created its run folder");
        assert_eq!(listing(dir.path()), before, "{shape:?}: train wrote");
    }
}
