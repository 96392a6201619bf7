//! Writing the tables: one [`TableWriter`] per table rolls Parquet parts (zstd, fixed row groups,
//! page statistics, no timestamps) and returns each part's rows and sha256; [`Batches`] turns
//! protein records and their edges into Arrow record batches.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};

use super::batches::{BatchError, Batches};
use super::part::{PartInfo, TableEntry, hex};
use crate::dataset::schema::{SCHEMA_KEY, Table};
use crate::graph::Edges;
use crate::protein::ProteinRecord;

/// Errors writing a table part.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {}: {source}", .path.display())]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("building a {table} batch: {source}")]
    Arrow {
        table: &'static str,
        source: arrow_schema::ArrowError,
    },
    #[error(transparent)]
    Batch(#[from] BatchError),
}

/// Writes one table as `dir/<table>/part-NNNNN.parquet`.
pub(crate) struct TableWriter {
    table: Table,
    dir: PathBuf,
    writer: Option<(PathBuf, ArrowWriter<BufWriter<File>>)>,
    rows_in_part: usize,
    parts: Vec<(PathBuf, u64)>,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("table", &self.table)
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl TableWriter {
    pub fn new(dataset: &Path, table: Table) -> Result<Self, WriteError> {
        let dir = dataset.join(table.name());
        std::fs::create_dir_all(&dir).map_err(|source| WriteError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            table,
            dir,
            writer: None,
            rows_in_part: 0,
            parts: Vec::new(),
        })
    }

    fn properties(&self) -> WriterProperties {
        let mut b = WriterProperties::builder();
        if self.table == Table::Edges {
            // Node indices repeat little within a page and relations are seven values in long
            // runs: a dictionary only adds a lookup per value, and plain + zstd writes them
            // faster and smaller (bench/prepare: 4.6 MB of edges instead of 8.1 MB).
            for column in ["src", "dst", "relation"] {
                b = b.set_column_dictionary_enabled(column.into(), false);
            }
        }
        b.set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(self.table.row_group_rows()))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(format!("fusionprot {}", env!("CARGO_PKG_VERSION")))
            .set_sorting_columns(Some(vec![SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            }]))
            .set_key_value_metadata(Some(vec![KeyValue::new(
                SCHEMA_KEY.to_owned(),
                self.table.schema_tag(),
            )]))
            .build()
    }

    /// Writes `batch`, which holds whole proteins; starts a new part first if the current one
    /// is full, so a protein never spans two parts.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        if self.rows_in_part >= self.table.part_rows() {
            self.close_part()?;
        }
        if self.writer.is_none() {
            self.open_part()?;
        }
        let (path, w) = self.writer.as_mut().expect("a part was just opened");
        w.write(batch).map_err(|source| WriteError::Parquet {
            path: path.clone(),
            source,
        })?;
        self.rows_in_part += batch.num_rows();
        Ok(())
    }

    fn open_part(&mut self) -> Result<(), WriteError> {
        let path = self
            .dir
            .join(format!("part-{:05}.parquet", self.parts.len()));
        let file = File::create(&path).map_err(|source| WriteError::Io {
            path: path.clone(),
            source,
        })?;
        let w = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            self.table.arrow_schema(),
            Some(self.properties()),
        )
        .map_err(|source| WriteError::Parquet {
            path: path.clone(),
            source,
        })?;
        self.writer = Some((path, w));
        self.rows_in_part = 0;
        Ok(())
    }

    fn close_part(&mut self) -> Result<(), WriteError> {
        if let Some((path, w)) = self.writer.take() {
            // close() writes the footer; without it the part is unreadable.
            let meta = w.close().map_err(|source| WriteError::Parquet {
                path: path.clone(),
                source,
            })?;
            self.parts
                .push((path, meta.file_metadata().num_rows() as u64));
        }
        Ok(())
    }

    /// Closes the last part (writing an empty one if the table has no rows, so its schema is
    /// still there) and hashes every part.
    pub fn finish(mut self, dataset: &Path) -> Result<Vec<PartInfo>, WriteError> {
        if self.writer.is_none() && self.parts.is_empty() {
            self.open_part()?;
        }
        self.close_part()?;
        self.parts
            .iter()
            .map(|(path, rows)| {
                let (bytes, sha256) = sha256_file(path)?;
                let rel = path.strip_prefix(dataset).unwrap_or(path);
                Ok(PartInfo {
                    path: rel.to_string_lossy().into_owned(),
                    rows: *rows,
                    bytes,
                    sha256,
                })
            })
            .collect()
    }
}

/// Size and hex sha256 of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<(u64, String), WriteError> {
    let io = |source| WriteError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((total, hex(&h.finalize())))
}

/// The three prepared tables (proteins, residues, edges) of a dataset, written one way by
/// `prepare`, `merge` and the imports: each protein's rows are buffered and flushed as one batch
/// per table once the buffered residues or edges reach a row group
/// ([`Table::row_group_rows`]). Parts close at a protein boundary after a flush, so two commands
/// that push the same proteins in the same order write the same bytes (merge's promise).
///
/// Each table is encoded on its own thread (Parquet encoding and zstd are most of a write), fed
/// the same batches in the same order, so the bytes do not depend on the threads' timing.
pub struct PreparedWriter {
    lanes: Vec<Lane>,
    batches: Batches,
    returned: mpsc::Receiver<(Table, RecordBatch)>,
}

/// One table's writer thread and the channel that feeds it.
struct Lane {
    tx: Option<mpsc::SyncSender<RecordBatch>>,
    handle: Option<std::thread::JoinHandle<Result<Vec<PartInfo>, WriteError>>>,
}

/// Written batches on their way back to [`Batches::recycle`].
type Returned = mpsc::Sender<(Table, RecordBatch)>;

impl Lane {
    fn spawn(staging: &Path, table: Table, returned: Returned) -> Result<Self, WriteError> {
        let mut writer = TableWriter::new(staging, table)?;
        let dataset = staging.to_owned();
        // Two batches in flight per table: enough to keep every thread busy, little memory.
        let (tx, rx) = mpsc::sync_channel::<RecordBatch>(2);
        let handle = std::thread::Builder::new()
            .name(format!("write-{}", table.name()))
            .spawn(move || {
                for batch in rx {
                    writer.write(&batch)?;
                    // The pusher may be gone (an error, or done): the batch is then dropped.
                    let _ = returned.send((table, batch));
                }
                writer.finish(&dataset)
            })
            .map_err(|source| WriteError::Io {
                path: staging.join(table.name()),
                source,
            })?;
        Ok(Self {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Closes the channel and waits for the thread: its parts, or the error that stopped it.
    fn join(&mut self) -> Result<Vec<PartInfo>, WriteError> {
        self.tx = None;
        match self.handle.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for Lane {
    /// An abandoned writer (an error elsewhere) still waits for its thread, so nothing writes
    /// into a staging folder after its owner has moved on to remove it.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for PreparedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedWriter")
            .field("batches", &self.batches)
            .finish_non_exhaustive()
    }
}

impl PreparedWriter {
    /// Writers for the prepared tables under `staging`.
    ///
    /// # Errors
    /// A table folder cannot be created.
    pub fn new(staging: &Path) -> Result<Self, WriteError> {
        let (back, returned) = mpsc::channel();
        Ok(Self {
            lanes: Table::PREPARED
                .iter()
                .map(|t| Lane::spawn(staging, *t, back.clone()))
                .collect::<Result<_, _>>()?,
            batches: Batches::new(),
            returned,
        })
    }

    /// Adds one protein with its edges.
    ///
    /// # Errors
    /// Writing a full batch failed.
    pub fn push(&mut self, protein: &ProteinRecord, edges: &Edges) -> Result<(), WriteError> {
        self.batches.push(protein, edges);
        if self.batches.residue_rows >= Table::Residues.row_group_rows()
            || self.batches.edge_rows >= Table::Edges.row_group_rows()
        {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        for (table, batch) in self.returned.try_iter() {
            self.batches.recycle(table, batch);
        }
        for (lane, batch) in self.lanes.iter_mut().zip(self.batches.take()?) {
            let sent = lane.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
            if !sent {
                // The thread stopped early: only an error does that.
                return Err(lane.join().err().unwrap_or_else(|| WriteError::Io {
                    path: PathBuf::new(),
                    source: std::io::Error::other("a table writer stopped early"),
                }));
            }
        }
        Ok(())
    }

    /// Writes what is buffered, closes every table and returns their manifest entries.
    ///
    /// # Errors
    /// Writing or closing a part failed.
    pub fn finish(
        mut self,
    ) -> Result<std::collections::BTreeMap<&'static str, TableEntry>, WriteError> {
        self.flush()?;
        let mut tables = std::collections::BTreeMap::new();
        for (t, lane) in Table::PREPARED.iter().zip(self.lanes.iter_mut()) {
            let parts = lane.join()?;
            tables.insert(t.name(), TableEntry::new(*t, parts));
        }
        Ok(tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protein(id: &str, n: usize) -> ProteinRecord {
        crate::dataset::batches::tests::protein(id, n, None)
    }

    /// Enough proteins for several row groups of edges, so batches cross the channels.
    fn write_all(dir: &Path) -> Result<BTreeMap<&'static str, TableEntry>, WriteError> {
        let mut w = PreparedWriter::new(dir)?;
        for k in 0..80 {
            let p = protein(&format!("P{k:03}"), 600);
            let edges = crate::graph::build(&p.residues.pos, &p.residues.chain_keys());
            w.push(&p, &edges)?;
        }
        w.finish()
    }

    use std::collections::BTreeMap;

    #[test]
    fn the_writer_threads_give_the_same_bytes_every_time() {
        let (a, b) = (
            tempfile::tempdir().expect("a temp dir"),
            tempfile::tempdir().expect("a temp dir"),
        );
        let (ta, tb) = (
            write_all(a.path()).expect("written"),
            write_all(b.path()).expect("written"),
        );
        let shas = |t: &BTreeMap<&str, TableEntry>| {
            t.values()
                .flat_map(|e| e.parts.iter().map(|p| p.sha256.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(shas(&ta), shas(&tb));
        assert!(ta["edges"].parts.iter().map(|p| p.rows).sum::<u64>() > 262_144);
    }

    #[test]
    fn a_table_that_cannot_be_written_stops_the_writer_naming_its_path() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut w = PreparedWriter::new(dir.path()).expect("writers");
        // The edges folder goes away under the writer: its thread fails to open its first part.
        std::fs::remove_dir_all(dir.path().join("edges")).expect("removed");
        let p = protein("P000", 600);
        let edges = crate::graph::build(&p.residues.pos, &p.residues.chain_keys());
        let err = (0..40)
            .try_for_each(|_| w.push(&p, &edges))
            .and_then(|()| w.finish().map(drop))
            .expect_err("the edges table cannot be written");
        let text = err.to_string();
        assert!(
            text.contains("edges") && text.contains("part-00000.parquet"),
            "{text}"
        );
    }
}
