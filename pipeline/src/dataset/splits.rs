//! The `splits/v3` table: named splits of one dataset side by side (`family` from `fusionprot
//! split`, `official`, `official-30` … from a benchmark import), one row per protein and name.
//! A writer replaces the rows of the names it writes and keeps the others. `splits/v2` (without
//! `max_train_identity`) is still read, the column as null.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, Float32Array, Int32Array, RecordBatch, StringArray};

use crate::dataset::part::PartInfo;
use crate::dataset::read::{self, ReadError};
use crate::dataset::schema::Table;
use crate::dataset::write::{TableWriter, WriteError};

/// One protein's place in one named split. Rows are ordered by protein id, then name (one row
/// per pair).
#[derive(Debug, Clone, PartialEq)]
pub struct SplitRow {
    pub protein_id: String,
    pub name: String,
    /// `train`, `valid`, `test` or `removed`.
    pub split: String,
    /// MMseqs2 representative (certified splits only).
    pub cluster_id: Option<String>,
    /// Component index (certified splits only).
    pub component_id: Option<i32>,
    /// Certified splits: the highest identity (0–1, under the split's identity definition) of a
    /// significant alignment between this protein and a train protein among the pairs `split`
    /// aligned; null for train and removed proteins and when no such alignment was found (the
    /// manifest's `identity_to_train` says what that bounds).
    pub max_train_identity: Option<f32>,
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
        // read_table checked the columns against the part's tag (v2 or v3)
        let s = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .expect("splits utf8 column, checked")
        };
        let (ids, names, splits, clusters) =
            (s("protein_id"), s("name"), s("split"), s("cluster_id"));
        let comp = b
            .column_by_name("component_id")
            .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
            .expect("splits component_id, checked");
        let identity = b
            .column_by_name("max_train_identity")
            .and_then(|c| c.as_any().downcast_ref::<Float32Array>());
        for i in 0..b.num_rows() {
            rows.push(SplitRow {
                protein_id: ids.value(i).to_owned(),
                name: names.value(i).to_owned(),
                split: splits.value(i).to_owned(),
                cluster_id: (!clusters.is_null(i)).then(|| clusters.value(i).to_owned()),
                component_id: (!comp.is_null(i)).then(|| comp.value(i)),
                max_train_identity: identity.filter(|c| !c.is_null(i)).map(|c| c.value(i)),
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
    rows.sort_by(|a, b| (&a.protein_id, &a.name).cmp(&(&b.protein_id, &b.name)));
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
                Arc::new(
                    chunk
                        .iter()
                        .map(|r| r.max_train_identity)
                        .collect::<Float32Array>(),
                ),
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

/// Why a split gives no identity to train.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoIdentity(pub String);

/// Each protein's identity-to-train bucket under one named split: `order` lists the buckets as
/// they read (lowest identity first, then `train`, `removed`), `of` gives each protein's.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityBuckets {
    /// Where the buckets come from, in words.
    pub source: String,
    pub order: Vec<String>,
    pub of: std::collections::HashMap<String, String>,
}

/// Why a dataset's identity-to-train buckets cannot be read: its tables or manifest, or a split
/// that records none.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Manifest(#[from] crate::dataset::manifest::ManifestError),
    #[error(transparent)]
    Unavailable(#[from] NoIdentity),
}

/// [`identity_buckets`] of split `name` of `dataset`: its splits table and its manifest's
/// statement (what `score --by identity` and the dashboard's breakdown read).
///
/// # Errors
/// An unreadable splits table or manifest; [`IdentityError::Unavailable`] for a split that records
/// no identity.
pub fn read_identity_buckets(dataset: &Path, name: &str) -> Result<IdentityBuckets, IdentityError> {
    let rows = read_splits(dataset)?;
    let manifest = crate::dataset::manifest::Recorded::read(dataset)?;
    Ok(identity_buckets(
        &rows,
        name,
        manifest.identity_to_train(name),
    )?)
}

/// The official split's name (an import's splits as the benchmark publishes them).
pub const OFFICIAL: &str = "official";

/// The official splits' identity cutoffs: `official-<c>` keeps in test the chains the benchmark's
/// test CSV marks below `c` identity to train (`import ec|go`).
pub const OFFICIAL_CUTOFFS: [&str; 5] = ["0.3", "0.4", "0.5", "0.7", "0.95"];

fn percent(c: &str) -> String {
    let v: f64 = c.parse().unwrap_or(f64::NAN);
    format!("{}%", (v * 100.0).round())
}

/// The identity-to-train buckets of split `name`: for a split certified by `fusionprot split`
/// (`certified`: its manifest section's `identity_to_train` statement), 10-point bins of
/// `max_train_identity` and `none found`; for an imported official split, the bins between the
/// benchmark's cutoffs (a test protein is in the lowest `official-<c>` test it stays in).
///
/// # Errors
/// No split of that name, or one that records no identity (an official split without the
/// per-cutoff names, a certified split written before `splits/v3`).
pub fn identity_buckets(
    rows: &[SplitRow],
    name: &str,
    certified: Option<&str>,
) -> Result<IdentityBuckets, NoIdentity> {
    if rows.is_empty() {
        return Err(NoIdentity(
            "the dataset has no splits (`fusionprot split`, or an import's official splits)".into(),
        ));
    }
    let mine: Vec<&SplitRow> = rows.iter().filter(|r| r.name == name).collect();
    if mine.is_empty() {
        let mut names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        return Err(NoIdentity(format!(
            "the dataset has no split named {name:?} (it has: {})",
            names.join(", ")
        )));
    }
    let mut of = std::collections::HashMap::new();
    let fixed = |split: &str| matches!(split, "train" | "removed").then(|| split.to_owned());
    if let Some(statement) = certified {
        let bin = |v: f32| {
            let k = ((f64::from(v) * 10.0).floor() as i64).clamp(0, 9);
            format!("{}–{}%", k * 10, (k + 1) * 10)
        };
        for r in &mine {
            let bucket = fixed(&r.split).unwrap_or_else(|| match r.max_train_identity {
                Some(v) => bin(v),
                None => "none found".to_owned(),
            });
            of.insert(r.protein_id.clone(), bucket);
        }
        let mut order = vec!["none found".to_owned()];
        order.extend((0..10).map(|k| format!("{}–{}%", k * 10, (k + 1) * 10)));
        order.extend(["train".to_owned(), "removed".to_owned()]);
        return Ok(IdentityBuckets {
            source: statement.to_owned(),
            order,
            of,
        });
    }
    if mine.iter().any(|r| r.cluster_id.is_some()) {
        return Err(NoIdentity(format!(
            "split {name:?} was certified before fusionprot recorded each protein's identity to train \
             (splits/v3): run `fusionprot split --name {name}` again"
        )));
    }
    if name != OFFICIAL && !name.starts_with("official-") {
        return Err(NoIdentity(format!(
            "split {name:?} records no identity to train: neither certified by `fusionprot split` nor an official \
             split with the benchmark's identity cutoffs"
        )));
    }
    // Per cutoff, the proteins it keeps in test.
    let mut kept: Vec<std::collections::HashSet<&str>> = Vec::new();
    for c in OFFICIAL_CUTOFFS {
        let n = format!("official-{c}");
        let set: std::collections::HashSet<&str> = rows
            .iter()
            .filter(|r| r.name == n && r.split == "test")
            .map(|r| r.protein_id.as_str())
            .collect();
        if !rows.iter().any(|r| r.name == n) {
            return Err(NoIdentity(format!(
                "split {name:?} is official but the dataset has no {n:?} split: import the benchmark again"
            )));
        }
        kept.push(set);
    }
    let labels: Vec<String> = (0..=OFFICIAL_CUTOFFS.len())
        .map(|k| match k {
            0 => format!("< {}", percent(OFFICIAL_CUTOFFS[0])),
            k if k == OFFICIAL_CUTOFFS.len() => format!("≥ {}", percent(OFFICIAL_CUTOFFS[k - 1])),
            k => format!(
                "{}–{}",
                percent(OFFICIAL_CUTOFFS[k - 1]).trim_end_matches('%'),
                percent(OFFICIAL_CUTOFFS[k])
            ),
        })
        .collect();
    for r in &mine {
        let bucket = fixed(&r.split).unwrap_or_else(|| {
            if r.split == "test" {
                let k = kept
                    .iter()
                    .position(|s| s.contains(r.protein_id.as_str()))
                    .unwrap_or(OFFICIAL_CUTOFFS.len());
                labels[k].clone()
            } else {
                r.split.clone()
            }
        });
        of.insert(r.protein_id.clone(), bucket);
    }
    let mut order = labels;
    order.extend(["valid".to_owned(), "train".to_owned(), "removed".to_owned()]);
    Ok(IdentityBuckets {
        source: "the benchmark's test CSV: a test chain is in the lowest identity cutoff (official-<c> splits) it is \
                 kept under"
            .to_owned(),
        order,
        of,
    })
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
            max_train_identity: None,
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
            max_train_identity: Some(0.25),
            ..row("a", "family", "valid")
        });
        std::fs::remove_dir_all(dir.path().join("splits")).expect("rm");
        write_splits(dir.path(), rows).expect("rewrite");
        let back = read_splits(dir.path()).expect("read");
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].name, "family");
        assert_eq!(back[0].component_id, Some(0));
        assert_eq!(back[0].max_train_identity, Some(0.25));
        assert!(valid_name("official-0.3") && !valid_name("a/b") && !valid_name(""));
    }

    fn row(id: &str, name: &str, split: &str, identity: Option<f32>) -> SplitRow {
        SplitRow {
            protein_id: id.into(),
            name: name.into(),
            split: split.into(),
            cluster_id: (name == "family").then(|| id.to_owned()),
            component_id: None,
            max_train_identity: identity,
        }
    }

    #[test]
    fn certified_buckets_bin_each_proteins_identity_to_train() {
        let rows = vec![
            row("a", "family", "train", None),
            row("b", "family", "test", Some(0.29)),
            row("c", "family", "test", None),
            row("d", "family", "valid", Some(0.0)),
            row("e", "family", "test", Some(1.0)),
            row("a", "official", "train", None),
        ];
        let b = identity_buckets(&rows, "family", Some("stated")).expect("certified");
        let of = |id: &str| b.of[id].as_str();
        assert_eq!(
            (of("a"), of("b"), of("c"), of("d"), of("e")),
            ("train", "20–30%", "none found", "0–10%", "90–100%")
        );
        assert!(b.of.len() == 5 && b.order.iter().any(|o| o == "20–30%"));
        let e = identity_buckets(&rows, "family", None).expect_err("no statement: v2");
        assert!(e.to_string().contains("split --name family"), "{e}");
        let e = identity_buckets(&rows, "nope", None).expect_err("no such split");
        assert!(e.to_string().contains("family, official"), "{e}");
    }

    #[test]
    fn official_buckets_take_the_lowest_cutoff_that_keeps_a_test_protein() {
        let mut rows = vec![
            row("t", "official", "train", None),
            row("x", "official", "test", None),
            row("y", "official", "test", None),
            row("z", "official", "test", None),
        ];
        let e = identity_buckets(&rows, "official", None).expect_err("no cutoffs");
        assert!(e.to_string().contains("official-0.3"), "{e}");
        for c in OFFICIAL_CUTOFFS {
            let n = format!("official-{c}");
            // x is below 30%, y between 50% and 70%, z above 95%
            let x = "test";
            let y = if ["0.7", "0.95"].contains(&c) {
                "test"
            } else {
                "removed"
            };
            rows.push(row("x", &n, x, None));
            rows.push(row("y", &n, y, None));
            rows.push(row("z", &n, "removed", None));
        }
        let b = identity_buckets(&rows, "official", None).expect("official");
        assert_eq!(
            (
                b.of["t"].as_str(),
                b.of["x"].as_str(),
                b.of["y"].as_str(),
                b.of["z"].as_str()
            ),
            ("train", "< 30%", "50–70%", "≥ 95%")
        );
        let e = identity_buckets(&[row("a", "mine", "test", None)], "mine", None)
            .expect_err("plain split");
        assert!(e.to_string().contains("records no identity"), "{e}");
    }

    /// A part as `splits/v2` writers wrote it: five columns, tag `splits/v2`.
    fn write_v2(dir: &Path, tag: &str, with_identity: bool) {
        use parquet::file::metadata::KeyValue;
        let mut schema = Table::Splits.arrow_schema_of(2).expect("v2 readable");
        if with_identity {
            schema = Table::Splits.arrow_schema();
        }
        let mut cols: Vec<arrow_array::ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(StringArray::from(vec!["family"])),
            Arc::new(StringArray::from(vec!["test"])),
            Arc::new(StringArray::from(vec![Some("a")])),
            Arc::new(Int32Array::from(vec![Some(3)])),
        ];
        if with_identity {
            cols.push(Arc::new(Float32Array::from(vec![Some(0.5)])));
        }
        let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
        std::fs::create_dir_all(dir.join("splits")).expect("mkdir");
        let file = std::fs::File::create(dir.join("splits/part-00000.parquet")).expect("create");
        let props = parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(
                crate::dataset::schema::SCHEMA_KEY.to_owned(),
                tag.to_owned(),
            )]))
            .build();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }

    #[test]
    fn a_v2_table_reads_with_no_identity_and_a_v2_tag_on_v3_columns_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_v2(dir.path(), "splits/v2", false);
        let rows = read_splits(dir.path()).expect("v2 is read");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].component_id, rows[0].max_train_identity),
            (Some(3), None)
        );
        // v2's tag with v3's columns: the extra column is named, nothing read
        let dir = tempfile::tempdir().expect("tempdir");
        write_v2(dir.path(), "splits/v2", true);
        let e = read::read_table(dir.path(), Table::Splits).expect_err("extra column");
        assert!(
            e.to_string().contains("max_train_identity") && e.to_string().contains("splits/v2"),
            "{e}"
        );
        // an unknown version is refused as before
        let dir = tempfile::tempdir().expect("tempdir");
        write_v2(dir.path(), "splits/v9", false);
        let e = read::read_table(dir.path(), Table::Splits).expect_err("v9");
        assert!(e.to_string().contains("splits/v3"), "{e}");
    }
}
