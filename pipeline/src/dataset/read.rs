//! Readers for a dataset's tables, for the trainer and the CLI: whole tables, or one protein's
//! rows found through row-group statistics (tables are sorted by `protein_id`), after checking
//! each part's schema tag.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use parquet::file::metadata::PageIndexPolicy;

use crate::dataset::schema::{SCHEMA_KEY, Table};

/// Errors reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {}", .dataset.display(), no_table_hint(.dataset, .table))]
    NoTable {
        dataset: PathBuf,
        table: &'static str,
    },
    #[error("cannot read {}: {source}", .path.display())]
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
    Inconsistent { path: PathBuf, message: String },
    #[error("{}: schema {found:?}, this fusionprot reads {expected:?}", .path.display())]
    Schema {
        path: PathBuf,
        found: Option<String>,
        expected: String,
    },
    /// The part carries the right tag but not the tag's columns (written by another tool, or
    /// edited): refused before any row is read.
    #[error("{}: tagged {tag} but {problem}", .path.display())]
    Columns {
        path: PathBuf,
        tag: String,
        problem: String,
    },
}

/// Why a table is missing, and which command writes it.
fn no_table_hint(dataset: &Path, table: &str) -> String {
    let prepared = dataset.join("manifest.json").is_file();
    match table {
        "labels" | "pairs" if prepared => format!(
            "no {table} table: labels come from `fusionprot import ec|go`, MSP pairs from `fusionprot import msp` \
             (`prepare` writes proteins, residues and edges only)"
        ),
        "go_terms" => "no go_terms table: the Gene Ontology comes with `fusionprot import go ARCHIVE --obo go-basic.obo`"
            .into(),
        "splits" if prepared => {
            "no splits table: run `fusionprot split` (an import also writes its official splits)"
                .into()
        }
        _ if prepared => format!("no {table} table; prepare the dataset again"),
        _ => format!("not a prepared dataset (no {table} folder); run `fusionprot prepare` first"),
    }
}

/// The parts of `table`, in name order; for a linked dataset (`merge --link`) without the
/// table's folder, the shards' parts its manifest lists, in its order.
///
/// # Errors
/// When the table folder is missing or unlistable.
pub fn parts(dataset: &Path, table: Table) -> Result<Vec<PathBuf>, ReadError> {
    let dir = dataset.join(table.name());
    if !dir.is_dir() {
        if let Some(parts) = linked_parts(dataset, table)? {
            return Ok(parts);
        }
        return Err(ReadError::NoTable {
            dataset: dataset.to_owned(),
            table: table.name(),
        });
    }
    let io = |source| ReadError::Io {
        path: dir.clone(),
        source,
    };
    let mut parts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()).map_err(io))
        .collect::<Result<_, _>>()?;
    parts.retain(|p| p.extension().is_some_and(|e| e == "parquet"));
    parts.sort();
    Ok(parts)
}

fn open(path: &Path, table: Table) -> Result<ParquetRecordBatchReaderBuilder<File>, ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| ReadError::Parquet {
            path: path.to_owned(),
            source,
        })?;
    let version = check_tag(path, table, builder.metadata())?;
    check_columns(path, table, version, builder.schema())?;
    Ok(builder)
}

/// One part of `table` opened for random access: its metadata with the page index, so a reader
/// built from it (`ParquetRecordBatchReaderBuilder::new_with_metadata`) with a row selection
/// decodes only the pages that hold the selected rows.
///
/// # Errors
/// Unreadable part, or a part of another schema version.
pub fn open_indexed(path: &Path, table: Table) -> Result<ArrowReaderMetadata, ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let meta = ArrowReaderMetadata::load(
        &file,
        ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
    )
    .map_err(|source| ReadError::Parquet {
        path: path.to_owned(),
        source,
    })?;
    let version = check_tag(path, table, meta.metadata())?;
    check_columns(path, table, version, meta.schema())?;
    Ok(meta)
}

/// The part's schema version: the current one, or an older one this fusionprot still reads
/// ([`Table::older_readable`]).
fn check_tag(
    path: &Path,
    table: Table,
    metadata: &parquet::file::metadata::ParquetMetaData,
) -> Result<u32, ReadError> {
    let found = metadata
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == SCHEMA_KEY))
        .and_then(|k| k.value.clone());
    let version = found
        .as_deref()
        .and_then(|f| f.strip_prefix(table.name()))
        .and_then(|f| f.strip_prefix("/v"))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&v| v == table.version() || table.older_readable().contains(&v));
    version.ok_or_else(|| ReadError::Schema {
        path: path.to_owned(),
        found,
        expected: table.schema_tag(),
    })
}

/// The part's columns are exactly its tag's: each by name with the tag's type (nested field names,
/// which writers spell differently, aside), none missing, none extra. Readers index columns by
/// name and trust their types, so a file that passes reads without a surprise.
fn check_columns(
    path: &Path,
    table: Table,
    version: u32,
    found: &arrow_schema::Schema,
) -> Result<(), ReadError> {
    let tag = format!("{}/v{version}", table.name());
    let expected = table
        .arrow_schema_of(version)
        .expect("check_tag admits only readable versions");
    let refuse = |problem: String| {
        Err(ReadError::Columns {
            path: path.to_owned(),
            tag: tag.clone(),
            problem,
        })
    };
    for want in expected.fields() {
        match found.field_with_name(want.name()) {
            Err(_) => {
                return refuse(format!(
                    "column `{}` ({}) is missing",
                    want.name(),
                    want.data_type()
                ));
            }
            Ok(have) if !have.data_type().equals_datatype(want.data_type()) => {
                return refuse(format!(
                    "column `{}` is {}, expected {}",
                    want.name(),
                    have.data_type(),
                    want.data_type()
                ));
            }
            Ok(_) => {}
        }
    }
    if let Some(extra) = found
        .fields()
        .iter()
        .find(|f| expected.field_with_name(f.name()).is_err())
    {
        return refuse(format!(
            "has a column `{}` ({}) that {tag} does not have",
            extra.name(),
            extra.data_type(),
        ));
    }
    Ok(())
}

fn collect(
    path: &Path,
    builder: ParquetRecordBatchReaderBuilder<File>,
) -> Result<Vec<RecordBatch>, ReadError> {
    let parquet = |source| ReadError::Parquet {
        path: path.to_owned(),
        source,
    };
    let reader = builder.build().map_err(parquet)?;
    reader.map(|b| b.map_err(|e| parquet(e.into()))).collect()
}

/// Checks every part of `table` — its schema tag and its columns — from the footers alone, no
/// row read: what a command runs before it starts writing, so that a bad part stops it while
/// nothing is written yet. Returns the number of parts.
///
/// # Errors
/// As [`read_table`], without reading rows.
pub fn check_parts(dataset: &Path, table: Table) -> Result<usize, ReadError> {
    let parts = parts(dataset, table)?;
    for path in &parts {
        open(path, table)?;
    }
    Ok(parts.len())
}

/// Checks the parts of the graph tables (residues, edges) of `dataset` as [`check_parts`] does:
/// what training reads only once it has started, so its preflight checks them first.
///
/// # Errors
/// As [`check_parts`].
pub fn check_graph_tables(dataset: &Path) -> Result<(), ReadError> {
    for table in [Table::Residues, Table::Edges] {
        check_parts(dataset, table)?;
    }
    Ok(())
}

/// Residues (`num_residues`) by protein id, from the dataset's `proteins` table.
///
/// # Errors
/// What `read_table` refuses: a missing table, an unreadable part, a part of another schema.
pub fn protein_lengths(
    dataset: &Path,
) -> Result<std::collections::HashMap<String, i64>, ReadError> {
    let mut out = std::collections::HashMap::new();
    for b in read_table(dataset, Table::Proteins)? {
        // read_table checked the columns against the tag: protein_id utf8, num_residues int32
        let ids = b
            .column_by_name("protein_id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>());
        let n = b
            .column_by_name("num_residues")
            .and_then(|c| c.as_any().downcast_ref::<arrow_array::Int32Array>());
        let (Some(ids), Some(n)) = (ids, n) else {
            return Err(ReadError::Inconsistent {
                path: dataset.join("proteins"),
                message: "no utf8 protein_id and int32 num_residues".into(),
            });
        };
        for i in 0..b.num_rows() {
            if !n.is_null(i) {
                out.insert(ids.value(i).to_owned(), i64::from(n.value(i)));
            }
        }
    }
    Ok(out)
}

/// All rows of `table`, part after part.
///
/// # Errors
/// Missing table, unreadable part, or a part of another schema version.
pub fn read_table(dataset: &Path, table: Table) -> Result<Vec<RecordBatch>, ReadError> {
    let mut out = Vec::new();
    for path in parts(dataset, table)? {
        let builder = open(&path, table)?;
        out.extend(collect(&path, builder)?);
    }
    Ok(out)
}

/// All rows of `table` as a lazy stream of record batches, part after part, so a large table
/// is never held in memory at once. Rows come in the table's order (sorted by protein_id).
///
/// # Errors
/// Missing table; later items carry unreadable parts or schema mismatches.
pub fn stream_table(
    dataset: &Path,
    table: Table,
) -> Result<impl Iterator<Item = Result<RecordBatch, ReadError>> + use<>, ReadError> {
    let parts = parts(dataset, table)?;
    Ok(parts.into_iter().flat_map(move |path| {
        let reader = open(&path, table).and_then(|b| {
            b.build().map_err(|source| ReadError::Parquet {
                path: path.clone(),
                source,
            })
        });
        let boxed: Box<dyn Iterator<Item = Result<RecordBatch, ReadError>>> = match reader {
            Ok(r) => Box::new(r.map(move |b| {
                b.map_err(|e| ReadError::Parquet {
                    path: path.clone(),
                    source: e.into(),
                })
            })),
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        boxed
    }))
}

/// The rows of one protein in `table`. Only row groups whose `protein_id` statistics can hold
/// the id are read, so this touches a small fraction of a large table.
///
/// # Errors
/// As [`read_table`].
pub fn read_protein(
    dataset: &Path,
    table: Table,
    protein_id: &str,
) -> Result<Vec<RecordBatch>, ReadError> {
    let mut out = Vec::new();
    for path in parts(dataset, table)? {
        let builder = open(&path, table)?;
        let groups: Vec<usize> = builder
            .metadata()
            .row_groups()
            .iter()
            .enumerate()
            .filter(|(_, rg)| {
                rg.column(0).statistics().is_none_or(|s| {
                    let id = protein_id.as_bytes();
                    s.min_bytes_opt().is_none_or(|min| min <= id)
                        && s.max_bytes_opt().is_none_or(|max| id <= max)
                })
            })
            .map(|(i, _)| i)
            .collect();
        if groups.is_empty() {
            continue;
        }
        for batch in collect(&path, builder.with_row_groups(groups))? {
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("column 0 of every table is the utf8 protein_id (schema checked)");
            // Rows of one protein are contiguous: tables are sorted by protein_id.
            let Some(start) = (0..ids.len()).find(|&i| ids.value(i) == protein_id) else {
                continue;
            };
            let len = (start..ids.len())
                .take_while(|&i| ids.value(i) == protein_id)
                .count();
            out.push(batch.slice(start, len));
        }
    }
    Ok(out)
}

/// The parts of `table` listed by the manifest of a linked dataset, or None where the dataset
/// is not linked or does not list the table. The linked shards' manifests are checked first
/// ([`verify_shards`]).
///
/// # Errors
/// An unreadable or malformed manifest of a linked dataset, or a shard changed after the link.
fn linked_parts(dataset: &Path, table: Table) -> Result<Option<Vec<PathBuf>>, ReadError> {
    let path = dataset.join("manifest.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let bad = |message: String| ReadError::Inconsistent {
        path: path.clone(),
        message,
    };
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if manifest.get(super::link::SECTION).is_none() {
        return Ok(None);
    }
    // A shard prepared again after the link holds other rows under the same part names: read
    // nothing from a link whose shards are not the ones it recorded.
    super::link::verify_shards(dataset, &manifest).map_err(|e| bad(e.to_string()))?;
    let recorded = super::manifest::Recorded::from_value(manifest)
        .map_err(|e| bad(format!("not a dataset manifest: {e}")))?;
    let Some(entry) = recorded.table(table.name()) else {
        return Ok(None);
    };
    let parts = entry
        .map_err(|e| bad(format!("tables.{}: {e}", table.name())))?
        .parts;
    Ok(Some(parts.iter().map(|p| dataset.join(&p.path)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_tables_is_not_a_dataset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_table(dir.path(), Table::Proteins).expect_err("no tables");
        assert!(err.to_string().contains("not a prepared dataset"), "{err}");
    }
}
