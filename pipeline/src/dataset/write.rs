//! Writing the tables: one [`TableWriter`] per table rolls Parquet parts (zstd, fixed row groups,
//! page statistics, no timestamps) and returns each part's rows and sha256; [`Batches`] turns
//! protein records and their edges into Arrow record batches.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
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
///
/// The parts are what [`ArrowWriter`] writes with [`TableWriter::properties`], byte for byte
/// (a test compares them), but the columns of a large batch can be encoded on several threads
/// ([`TableWriter::encoding_threads`]): each column has its own encoder, so which thread runs it
/// changes nothing in the bytes. Row groups and parts close exactly where ArrowWriter's would.
pub(crate) struct TableWriter {
    table: Table,
    dir: PathBuf,
    part: Option<Part>,
    rows_in_part: usize,
    parts: Vec<(PathBuf, u64)>,
    /// Column indices per encoding thread, the heavy (string) columns spread first.
    groups: Vec<Vec<usize>>,
}

/// The open part: its file writer, the factory of each row group's column encoders, and the
/// row group being filled.
struct Part {
    path: PathBuf,
    file: SerializedFileWriter<BufWriter<File>>,
    factory: ArrowRowGroupWriterFactory,
    row_group: Option<RowGroup>,
}

/// One column encoder per field (every field of our tables is one Parquet leaf, lists of
/// primitives included) and the rows they hold.
struct RowGroup {
    encoders: Vec<ArrowColumnWriter>,
    rows: usize,
}

/// Below this many rows a batch is encoded on the calling thread: starting a thread costs more
/// than encoding a few thousand values.
const PARALLEL_ROWS: usize = 16_384;

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("table", &self.table)
            .field("parts", &self.parts.len())
            .field("groups", &self.groups)
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
            part: None,
            rows_in_part: 0,
            parts: Vec::new(),
            groups: column_groups(table, 1),
        })
    }

    /// Encodes the columns of batches of at least [`PARALLEL_ROWS`] rows on up to `threads`
    /// threads (the calling one included). The bytes written are the same for any count.
    pub fn encoding_threads(mut self, threads: usize) -> Self {
        self.groups = column_groups(self.table, threads);
        self
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
        if self.part.is_none() {
            self.open_part()?;
        }
        let part = self.part.as_mut().expect("a part was just opened");
        let parquet = |path: &Path| {
            let path = path.to_owned();
            move |source| WriteError::Parquet { path, source }
        };
        // As ArrowWriter::write: a batch that would overfill the row group is split where the
        // group is full, the group closed, and the rest goes on in the next one.
        let max = self.table.row_group_rows();
        let (mut at, rows) = (0, batch.num_rows());
        while at < rows {
            let group = match &mut part.row_group {
                Some(g) => g,
                slot => slot.insert(RowGroup {
                    encoders: part
                        .factory
                        .create_column_writers(part.file.flushed_row_groups().len())
                        .map_err(parquet(&part.path))?,
                    rows: 0,
                }),
            };
            let take = (max - group.rows).min(rows - at);
            let slice = if at == 0 && take == rows {
                batch.clone()
            } else {
                batch.slice(at, take)
            };
            encode(&self.groups, &mut group.encoders, &slice).map_err(parquet(&part.path))?;
            group.rows += take;
            at += take;
            if group.rows >= max {
                part.close_row_group(&self.groups)
                    .map_err(parquet(&part.path))?;
            }
        }
        self.rows_in_part += rows;
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
        // ArrowWriter sets up the file (its schema, the encoded Arrow schema in the footer's
        // metadata, the properties); its low-level halves then take the rows.
        let (file, factory) = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            self.table.arrow_schema(),
            Some(self.properties()),
        )
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(|source| WriteError::Parquet {
            path: path.clone(),
            source,
        })?;
        self.part = Some(Part {
            path,
            file,
            factory,
            row_group: None,
        });
        self.rows_in_part = 0;
        Ok(())
    }

    fn close_part(&mut self) -> Result<(), WriteError> {
        if let Some(mut part) = self.part.take() {
            let parquet = |path: &Path| {
                let path = path.to_owned();
                move |source| WriteError::Parquet { path, source }
            };
            part.close_row_group(&self.groups)
                .map_err(parquet(&part.path))?;
            // close() writes the footer; without it the part is unreadable.
            let meta = part.file.close().map_err(parquet(&part.path))?;
            self.parts
                .push((part.path, meta.file_metadata().num_rows() as u64));
        }
        Ok(())
    }

    /// Closes the last part (writing an empty one if the table has no rows, so its schema is
    /// still there) and hashes every part.
    pub fn finish(mut self, dataset: &Path) -> Result<Vec<PartInfo>, WriteError> {
        if self.part.is_none() && self.parts.is_empty() {
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

impl Part {
    /// Appends the row group being filled, if it has rows, to the file. Closing an encoder
    /// compresses its last pages (most of a column's zstd work): done by groups, as encoding.
    fn close_row_group(&mut self, groups: &[Vec<usize>]) -> Result<(), ParquetError> {
        let Some(group) = self.row_group.take() else {
            return Ok(());
        };
        let parallel = group.rows >= PARALLEL_ROWS;
        let chunks = in_groups(groups, parallel, group.encoders, |_, e| e.close())?;
        let mut out = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut out)?;
        }
        out.close()?;
        Ok(())
    }
}

/// Column indices for each of up to `threads` encoding threads: the columns, heaviest first
/// (strings and lists: a hash and a dictionary lookup per value), each to the lightest group.
fn column_groups(table: Table, threads: usize) -> Vec<Vec<usize>> {
    let schema = table.arrow_schema();
    let weight = |i: usize| match schema.field(i).data_type() {
        DataType::Utf8 | DataType::List(_) => 3,
        _ => 1,
    };
    let mut order: Vec<usize> = (0..schema.fields().len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weight(i)));
    let n = threads.clamp(1, order.len().max(1));
    let mut groups: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); n];
    for i in order {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(w, _)| *w)
            .expect("at least one group");
        lightest.0 += weight(i);
        lightest.1.push(i);
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Encodes `batch`'s columns into `encoders` (one per column).
fn encode(
    groups: &[Vec<usize>],
    encoders: &mut [ArrowColumnWriter],
    batch: &RecordBatch,
) -> Result<(), ParquetError> {
    let schema = batch.schema();
    let parallel = batch.num_rows() >= PARALLEL_ROWS;
    let encoders: Vec<&mut ArrowColumnWriter> = encoders.iter_mut().collect();
    in_groups(groups, parallel, encoders, |i, encoder| {
        for leaf in compute_leaves(schema.field(i), batch.column(i))? {
            encoder.write(&leaf)?;
        }
        Ok(())
    })
    .map(drop)
}

/// `f(i, item)` for every item, in column order on the calling thread, or (`parallel`) one group
/// of columns per thread; the results in column order, or the first group's error.
fn in_groups<T: Send, R: Send>(
    groups: &[Vec<usize>],
    parallel: bool,
    items: Vec<T>,
    f: impl Fn(usize, T) -> Result<R, ParquetError> + Sync,
) -> Result<Vec<R>, ParquetError> {
    if !parallel || groups.len() < 2 {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, t)| f(i, t))
            .collect();
    }
    let n = items.len();
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    let mut work: Vec<Vec<(usize, T)>> = groups
        .iter()
        .map(|g| {
            g.iter()
                .filter_map(|&i| slots.get_mut(i).and_then(Option::take).map(|t| (i, t)))
                .collect()
        })
        .collect();
    let run = |g: Vec<(usize, T)>| -> Result<Vec<(usize, R)>, ParquetError> {
        g.into_iter().map(|(i, t)| Ok((i, f(i, t)?))).collect()
    };
    let mine = work.remove(0);
    let run = &run;
    let done = std::thread::scope(|s| {
        let others: Vec<_> = work.into_iter().map(|g| s.spawn(move || run(g))).collect();
        let first = run(mine);
        std::iter::once(first)
            .chain(others.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for (i, r) in done.into_iter().flatten() {
        out[i] = Some(r);
    }
    Ok(out
        .into_iter()
        .map(|r| r.expect("the groups cover every column"))
        .collect())
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
/// the same batches in the same order, and a large batch's columns on up to `encoding_threads`
/// threads, so that the largest table (edges) does not finish alone long after the others; the
/// bytes do not depend on the threads' timing.
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
    fn spawn(
        staging: &Path,
        table: Table,
        threads: usize,
        returned: Returned,
    ) -> Result<Self, WriteError> {
        let mut writer = TableWriter::new(staging, table)?.encoding_threads(threads);
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
    /// Writers for the prepared tables under `staging`, each encoding the columns of a large
    /// batch on up to `encoding_threads` threads (its own included; 1: on its own only). The
    /// bytes are the same for any count.
    ///
    /// # Errors
    /// A table folder cannot be created.
    pub fn new(staging: &Path, encoding_threads: usize) -> Result<Self, WriteError> {
        let (back, returned) = mpsc::channel();
        Ok(Self {
            lanes: Table::PREPARED
                .iter()
                .map(|t| Lane::spawn(staging, *t, encoding_threads, back.clone()))
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
        let mut w = PreparedWriter::new(dir, 2)?;
        for k in 0..80 {
            let p = protein(&format!("P{k:03}"), 600);
            let edges = crate::graph::build(&p.residues.pos, &p.residues.chain_keys());
            w.push(&p, &edges)?;
        }
        w.finish()
    }

    use std::collections::BTreeMap;

    /// Batches of all three tables, of uneven sizes: some edge batches overfill a row group
    /// (262,144 rows) and are split across two, residue ones likewise (65,536), some are small
    /// enough to be encoded on the calling thread.
    fn uneven_batches() -> Vec<[RecordBatch; 3]> {
        let mut b = Batches::new();
        let mut out = Vec::new();
        for (k, take_after) in [3usize, 120, 2, 250, 1, 60].into_iter().enumerate() {
            for j in 0..take_after {
                let n = 150 + 37 * ((k * 7 + j) % 13);
                let icode = (j % 5 == 0).then_some(n / 3);
                let p = crate::dataset::batches::tests::protein(&format!("P{k}{j:03}"), n, icode);
                let edges = crate::graph::build(&p.residues.pos, &p.residues.chain_keys());
                b.push(&p, &edges);
            }
            out.push(b.take().expect("batches"));
        }
        out
    }

    /// What ArrowWriter writes for `batches` with the table's properties.
    fn arrow_writer_bytes(table: Table, batches: &[RecordBatch]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let props = TableWriter::new(dir.path(), table)
            .expect("a writer")
            .properties();
        let mut w = ArrowWriter::try_new(Vec::new(), table.arrow_schema(), Some(props))
            .expect("an ArrowWriter");
        for batch in batches {
            w.write(batch).expect("written");
        }
        w.into_inner().expect("closed")
    }

    #[test]
    fn parts_are_arrow_writers_bytes_whatever_the_encoding_threads() {
        let batches = uneven_batches();
        let edge_rows: Vec<usize> = batches.iter().map(|b| b[2].num_rows()).collect();
        assert!(
            edge_rows.iter().any(|&r| r > 262_144) && edge_rows.iter().any(|&r| r < PARALLEL_ROWS),
            "{edge_rows:?}"
        );
        for (i, table) in Table::PREPARED.into_iter().enumerate() {
            let column: Vec<RecordBatch> = batches.iter().map(|b| b[i].clone()).collect();
            let expected = arrow_writer_bytes(table, &column);
            for threads in [1, 2, 5] {
                let dir = tempfile::tempdir().expect("a temp dir");
                let mut w = TableWriter::new(dir.path(), table)
                    .expect("a writer")
                    .encoding_threads(threads);
                for batch in &column {
                    w.write(batch).expect("written");
                }
                let parts = w.finish(dir.path()).expect("finished");
                assert_eq!(parts.len(), 1);
                let got = std::fs::read(dir.path().join(&parts[0].path)).expect("the part");
                assert!(
                    got == expected,
                    "{table:?} with {threads} encoding threads: {} bytes, ArrowWriter {}",
                    got.len(),
                    expected.len()
                );
            }
        }
    }

    #[test]
    fn column_groups_spread_the_string_columns_and_cover_every_column_once() {
        let edges = column_groups(Table::Edges, 2);
        assert_eq!(edges, [vec![0], vec![1, 2, 3]]);
        for table in Table::PREPARED {
            let columns = table.arrow_schema().fields().len();
            for threads in [0, 1, 2, 3, 64] {
                let groups = column_groups(table, threads);
                assert_eq!(groups.len(), threads.clamp(1, columns));
                let mut all: Vec<usize> = groups.concat();
                all.sort_unstable();
                assert_eq!(all, (0..columns).collect::<Vec<_>>(), "{table:?} {threads}");
            }
        }
    }

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
        let mut w = PreparedWriter::new(dir.path(), 2).expect("writers");
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
