//! Random access to a dataset's tables by protein: [`TableIndex::build`] records where each
//! protein's rows lie (part, row group, first row, rows; a protein may cross row groups), reading
//! only the `protein_id` column once; [`TableIndex::read`] then reads a set of proteins with one
//! row selection per row group over parts opened with their page index, so only the pages holding
//! the selected rows are decoded. The trainer streams training graphs through it; `merge` reads
//! shards' proteins in the merged order through it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, StringArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};

use crate::dataset::read::{ReadError, open_indexed, parts};
use crate::dataset::schema::Table;

/// Rows of one protein inside one row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    part: u32,
    row_group: u32,
    /// First row within the row group.
    offset: u32,
    rows: u32,
}

/// Where each protein's rows of one table lie.
#[derive(Debug)]
pub struct TableIndex {
    parts: Vec<(PathBuf, ArrowReaderMetadata)>,
    /// In table order.
    spans: HashMap<String, Vec<Span>>,
}

fn parquet_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> ReadError + '_ {
    move |source| ReadError::Parquet {
        path: path.to_owned(),
        source,
    }
}

fn arrow_error(path: &Path) -> impl Fn(arrow_schema::ArrowError) -> ReadError + '_ {
    move |e| parquet_error(path)(e.into())
}

fn open_file(path: &Path) -> Result<File, ReadError> {
    File::open(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })
}

impl TableIndex {
    /// Indexes the proteins of `table` in `dataset`: those in `wanted`, or all.
    ///
    /// # Errors
    /// Missing table, unreadable parts, parts of another schema version.
    pub fn build(
        dataset: &Path,
        table: Table,
        wanted: Option<&HashSet<String>>,
    ) -> Result<Self, ReadError> {
        let mut index = TableIndex {
            parts: Vec::new(),
            spans: HashMap::with_capacity(wanted.map_or(0, HashSet::len)),
        };
        for (p, path) in parts(dataset, table)?.into_iter().enumerate() {
            let meta = open_indexed(&path, table)?;
            let groups: Vec<usize> = meta
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows() as usize)
                .collect();
            let ids_only = ProjectionMask::roots(meta.parquet_schema(), [0]);
            let reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(open_file(&path)?, meta.clone())
                    .with_projection(ids_only)
                    .with_batch_size(65_536)
                    .build()
                    .map_err(parquet_error(&path))?;
            let (mut group, mut in_group) = (0usize, 0usize);
            for batch in reader {
                let batch = batch.map_err(arrow_error(&path))?;
                let ids = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| ReadError::Inconsistent {
                        path: path.clone(),
                        message: "protein_id is not utf8".into(),
                    })?;
                let mut i = 0;
                while i < ids.len() {
                    while in_group == groups[group] {
                        group += 1;
                        in_group = 0;
                    }
                    let id = ids.value(i);
                    // A run of one id, cut at the batch's and the row group's end.
                    let room = groups[group] - in_group;
                    let mut j = i + 1;
                    while j < ids.len() && j - i < room && ids.value(j) == id {
                        j += 1;
                    }
                    if wanted.is_none_or(|w| w.contains(id)) {
                        let span = Span {
                            part: p as u32,
                            row_group: group as u32,
                            offset: in_group as u32,
                            rows: (j - i) as u32,
                        };
                        let spans = index.spans.entry(id.to_owned()).or_default();
                        // Batches may cut a run; merge what is contiguous in one row group.
                        match spans.last_mut() {
                            Some(last)
                                if last.part == span.part
                                    && last.row_group == span.row_group
                                    && last.offset + last.rows == span.offset =>
                            {
                                last.rows += span.rows;
                            }
                            _ => spans.push(span),
                        }
                    }
                    in_group += j - i;
                    i = j;
                }
            }
            index.parts.push((path, meta));
        }
        Ok(index)
    }

    /// Whether the protein has rows here.
    pub fn contains(&self, id: &str) -> bool {
        self.spans.contains_key(id)
    }

    /// The protein's row count (from the index, nothing read).
    pub fn rows(&self, id: &str) -> Option<usize> {
        self.spans
            .get(id)
            .map(|s| s.iter().map(|s| s.rows as usize).sum())
    }

    /// The indexed proteins.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.spans.keys().map(String::as_str)
    }

    /// The rows of `ids` (each in table order; ids without rows are absent), read with one row
    /// selection per row group.
    ///
    /// # Errors
    /// Unreadable parts, or rows that no longer hold the protein the index found there.
    pub fn read(&self, ids: &[&str]) -> Result<HashMap<String, Vec<RecordBatch>>, ReadError> {
        // (part, row group) → (first row, rows, protein) to select there.
        type Wanted<'a> = Vec<(u32, u32, &'a str)>;
        let mut by_group: BTreeMap<(u32, u32), Wanted<'_>> = BTreeMap::new();
        for &id in ids {
            for s in self.spans.get(id).into_iter().flatten() {
                by_group
                    .entry((s.part, s.row_group))
                    .or_default()
                    .push((s.offset, s.rows, id));
            }
        }
        let mut out: HashMap<String, Vec<RecordBatch>> = HashMap::with_capacity(ids.len());
        for ((part, group), mut spans) in by_group {
            spans.sort_unstable();
            spans.dedup();
            let (path, meta) = &self.parts[part as usize];
            let mut selectors = Vec::with_capacity(2 * spans.len());
            let mut at = 0u32;
            for &(offset, rows, _) in &spans {
                if offset > at {
                    selectors.push(RowSelector::skip((offset - at) as usize));
                }
                selectors.push(RowSelector::select(rows as usize));
                at = offset + rows;
            }
            let total: usize = spans.iter().map(|s| s.1 as usize).sum();
            let reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(open_file(path)?, meta.clone())
                    .with_row_groups(vec![group as usize])
                    .with_row_selection(RowSelection::from(selectors))
                    .with_batch_size(total.max(1))
                    .build()
                    .map_err(parquet_error(path))?;
            let mut rows = Vec::new();
            for b in reader {
                rows.push(b.map_err(arrow_error(path))?);
            }
            let mut taken = Taken {
                batches: &rows,
                batch: 0,
                row: 0,
            };
            for &(_, n, id) in &spans {
                for slice in taken.take(n as usize) {
                    let found = slice
                        .column(0)
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .filter(|a| (0..a.len()).all(|i| a.value(i) == id));
                    if found.is_none() {
                        return Err(ReadError::Inconsistent {
                            path: path.clone(),
                            message: format!(
                                "the rows indexed for protein {id} hold another protein; was the dataset changed while it was read?"
                            ),
                        });
                    }
                    out.entry(id.to_owned()).or_default().push(slice);
                }
            }
        }
        Ok(out)
    }
}

/// Consecutive row ranges over a reader's batches.
struct Taken<'a> {
    batches: &'a [RecordBatch],
    batch: usize,
    row: usize,
}

impl Taken<'_> {
    /// The next `n` rows, as slices of one or more batches.
    fn take(&mut self, mut n: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        while n > 0 && self.batch < self.batches.len() {
            let b = &self.batches[self.batch];
            let k = n.min(b.num_rows() - self.row);
            out.push(b.slice(self.row, k));
            self.row += k;
            n -= k;
            if self.row == b.num_rows() {
                self.batch += 1;
                self.row = 0;
            }
        }
        out
    }
}
