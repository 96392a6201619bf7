//! Random access to a dataset's protein graphs with bounded memory, for training: the epoch's
//! order is a permutation, so graphs cannot stream in table order.
//!
//! [`GraphStore::open`] indexes where each protein the run needs lies in the `residues` and
//! `edges` tables (part, row group, first row, row count), reading only their `protein_id`
//! column once. [`GraphStore::load`] then reads a set of proteins with one row selection per row
//! group; the parts are opened with their page index, so only the pages holding the selected
//! rows are decoded: each protein is read once per epoch, and nothing else stays in memory.
//! [`Prefetcher`] does that on a background thread, a window of proteins ahead of the model.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow_array::{Array, RecordBatch, StringArray};
use fusionprot_pipeline::read::{ReadError, open_indexed, parts};
use fusionprot_pipeline::schema::Table;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};

use crate::data::{push_edges, push_residues};
use crate::error::ModelError;
use crate::model::ProteinGraph;

/// Rows of one protein inside one row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    part: u32,
    row_group: u32,
    /// First row within the row group.
    offset: u32,
    rows: u32,
}

#[derive(Debug)]
struct TableIndex {
    parts: Vec<(PathBuf, ArrowReaderMetadata)>,
    /// In table order (a protein may cross a row-group boundary).
    spans: HashMap<String, Vec<Span>>,
}

fn parquet_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> ModelError + '_ {
    move |source| {
        ModelError::Read(ReadError::Parquet {
            path: path.to_owned(),
            source,
        })
    }
}

fn arrow_error(path: &Path) -> impl Fn(arrow_schema::ArrowError) -> ModelError + '_ {
    move |e| parquet_error(path)(e.into())
}

fn open_file(path: &Path) -> Result<File, ModelError> {
    File::open(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })
}

impl TableIndex {
    fn build(dataset: &Path, table: Table, wanted: &HashSet<String>) -> Result<Self, ModelError> {
        let mut index = TableIndex {
            parts: Vec::new(),
            spans: HashMap::with_capacity(wanted.len()),
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
                    .ok_or_else(|| {
                        ModelError::Input(format!("{}: protein_id is not utf8", path.display()))
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
                    if wanted.contains(id) {
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

    /// The rows of `ids` (each in table order), read with one row selection per row group.
    fn read(&self, ids: &[&str]) -> Result<HashMap<String, Vec<RecordBatch>>, ModelError> {
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
                    let found = crate::data::ids(&slice)?;
                    if (0..found.len()).any(|i| found.value(i) != id) {
                        return Err(ModelError::Input(format!(
                            "{}: the rows indexed for protein {id} hold another protein; was the dataset changed during the run?",
                            path.display()
                        )));
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

/// The graphs of a chosen set of proteins, read on demand.
#[derive(Debug)]
pub struct GraphStore {
    dataset: PathBuf,
    residues: TableIndex,
    edges: TableIndex,
}

impl GraphStore {
    /// Indexes the proteins `ids` in `dataset`.
    ///
    /// # Errors
    /// Not a dataset, unreadable parts, or a protein of `ids` without residues.
    pub fn open(dataset: &Path, ids: &HashSet<String>) -> Result<Self, ModelError> {
        let residues = TableIndex::build(dataset, Table::Residues, ids)?;
        let mut missing: Vec<&String> = ids
            .iter()
            .filter(|id| !residues.spans.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            missing.sort();
            return Err(ModelError::Input(format!(
                "{}: {} proteins the run needs have no residues, e.g. {}",
                dataset.display(),
                missing.len(),
                missing[0]
            )));
        }
        Ok(GraphStore {
            dataset: dataset.to_owned(),
            edges: TableIndex::build(dataset, Table::Edges, ids)?,
            residues,
        })
    }

    /// Residues of protein `id` (from the index, nothing read).
    pub fn residue_count(&self, id: &str) -> Option<usize> {
        self.residues
            .spans
            .get(id)
            .map(|s| s.iter().map(|s| s.rows as usize).sum())
    }

    /// The graphs of `ids` (each id once).
    ///
    /// # Errors
    /// An id the store was not opened with, unreadable or inconsistent rows.
    pub fn load(&self, ids: &[&str]) -> Result<HashMap<String, ProteinGraph>, ModelError> {
        if let Some(id) = ids
            .iter()
            .find(|id| !self.residues.spans.contains_key(**id))
        {
            return Err(ModelError::Input(format!(
                "{}: protein {id} is not among the proteins this run indexed",
                self.dataset.display()
            )));
        }
        let mut residues = self.residues.read(ids)?;
        let mut edges = self.edges.read(ids)?;
        let mut out = HashMap::with_capacity(ids.len());
        for &id in ids {
            let mut graph = ProteinGraph {
                id: id.to_owned(),
                residue_type: Vec::new(),
                onehot: Vec::new(),
                edges: Vec::new(),
            };
            for b in residues.remove(id).unwrap_or_default() {
                push_residues(&mut graph, &b)?;
            }
            for b in edges.remove(id).unwrap_or_default() {
                push_edges(&mut graph, &b)?;
            }
            out.insert(id.to_owned(), graph);
        }
        Ok(out)
    }
}

/// Graphs read on a background thread, one micro-batch at a time, in the order asked.
#[derive(Debug)]
pub struct Prefetcher {
    rx: Receiver<Result<Vec<ProteinGraph>, ModelError>>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// Reads the proteins of `batches` (lists of ids; an id may repeat) in windows of at least
    /// `window` proteins, keeping at most `depth` micro-batches ready ahead of the consumer.
    pub fn start(
        store: Arc<GraphStore>,
        batches: Vec<Vec<String>>,
        window: usize,
        depth: usize,
    ) -> Prefetcher {
        let (tx, rx) = sync_channel(depth.max(1));
        let thread = std::thread::Builder::new()
            .name("graph-prefetch".into())
            .spawn(move || feed(&store, &batches, window.max(1), &tx))
            .ok();
        Prefetcher { rx, thread }
    }

    /// The graphs of the next micro-batch, in its ids' order.
    ///
    /// # Errors
    /// What reading them met, or a loader that stopped early.
    pub fn next_batch(&mut self) -> Result<Vec<ProteinGraph>, ModelError> {
        match self.rx.recv() {
            Ok(r) => r,
            Err(_) => Err(ModelError::Input(
                "the graph loader stopped before the epoch's end".into(),
            )),
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Unblock the loader (its sends fail once the receiver is gone), then wait for it.
        let (_, dead) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Sent = Result<Vec<ProteinGraph>, ModelError>;

fn feed(store: &GraphStore, batches: &[Vec<String>], window: usize, tx: &SyncSender<Sent>) {
    let mut start = 0;
    while start < batches.len() {
        let mut end = start;
        let mut count = 0;
        while end < batches.len() && count < window {
            count += batches[end].len();
            end += 1;
        }
        let mut unique: Vec<&str> = batches[start..end]
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        unique.sort_unstable();
        unique.dedup();
        match store.load(&unique) {
            Ok(graphs) => {
                for b in &batches[start..end] {
                    let graphs: Vec<ProteinGraph> = b.iter().map(|id| graphs[id].clone()).collect();
                    if tx.send(Ok(graphs)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
        start = end;
    }
}
