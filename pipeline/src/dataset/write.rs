//! Writing the tables: one [`TableWriter`] per table rolls Parquet parts (zstd, fixed row groups,
//! page statistics, no timestamps) and returns each part's rows and sha256; [`Batches`] turns
//! protein records and their edges into Arrow record batches.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use arrow_array::builder::{Float32Builder, Int8Builder, Int32Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};

use super::part::{PartInfo, TableEntry, hex};
use crate::dataset::schema::{SCHEMA_KEY, Table};
use crate::graph::Edges;
use crate::protein::ProteinRecord;
use crate::residue;

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

/// A string column of runs (each protein's id once per edge), filled a run at a time: the bytes
/// by doubling copies, the offsets by arithmetic, instead of one append per row.
#[derive(Debug)]
struct RepeatedStrings {
    values: Vec<u8>,
    offsets: Vec<i32>,
}

impl RepeatedStrings {
    fn with_capacity(rows: usize, bytes_per_row: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            values: Vec::with_capacity(rows * bytes_per_row),
            offsets,
        }
    }

    fn push(&mut self, value: &str, times: usize) {
        let (bytes, start) = (value.as_bytes(), self.values.len());
        if times == 0 {
            return;
        }
        self.values.extend_from_slice(bytes);
        let total = bytes.len() * times;
        while self.values.len() - start < total {
            let have = self.values.len() - start;
            self.values
                .extend_from_within(start..start + have.min(total - have));
        }
        let base = self.offsets.last().copied().unwrap_or(0) as usize;
        // Offsets stay below 2^31: a batch is flushed after a row group of edges.
        self.offsets
            .extend((1..=times).map(|k| (base + k * bytes.len()) as i32));
    }

    fn finish(self) -> Result<arrow_array::StringArray, arrow_schema::ArrowError> {
        arrow_array::StringArray::try_new(
            arrow_buffer::OffsetBuffer::new(self.offsets.into()),
            self.values.into(),
            None,
        )
    }
}

/// Row builders for the three tables, filled protein by protein.
pub(crate) struct Batches {
    p_id: StringBuilder,
    p_entry: StringBuilder,
    p_chain: StringBuilder,
    p_seq: StringBuilder,
    p_n: Int32Builder,
    p_n_file: Int32Builder,
    p_source: StringBuilder,
    p_sha: StringBuilder,
    p_format: StringBuilder,
    p_plddt: Float32Builder,
    p_method: StringBuilder,
    p_res: Float32Builder,
    p_ec: ListBuilder<StringBuilder>,
    p_title: StringBuilder,
    r_id: StringBuilder,
    r_index: Int32Builder,
    r_name: StringBuilder,
    r_type: Int8Builder,
    r_chain: StringBuilder,
    r_number: Int32Builder,
    r_icode: StringBuilder,
    r_x: Float32Builder,
    r_y: Float32Builder,
    r_z: Float32Builder,
    r_b: Float32Builder,
    e_id: RepeatedStrings,
    e_src: Int32Builder,
    e_dst: Int32Builder,
    e_rel: Int8Builder,
    pub residue_rows: usize,
    pub edge_rows: usize,
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("residue_rows", &self.residue_rows)
            .field("edge_rows", &self.edge_rows)
            .finish()
    }
}

impl Batches {
    /// Builders sized for a row group of residues and one of edges (and a quarter more, for the
    /// protein that crosses the threshold): growing them row by row cost a copy of every column
    /// at each doubling.
    pub fn new() -> Self {
        let residues = Table::Residues.row_group_rows() * 5 / 4;
        let edges = Table::Edges.row_group_rows() * 5 / 4;
        let strings = |rows: usize, bytes: usize| StringBuilder::with_capacity(rows, rows * bytes);
        Self {
            p_id: StringBuilder::new(),
            p_entry: StringBuilder::new(),
            p_chain: StringBuilder::new(),
            p_seq: StringBuilder::new(),
            p_n: Int32Builder::new(),
            p_n_file: Int32Builder::new(),
            p_source: StringBuilder::new(),
            p_sha: StringBuilder::new(),
            p_format: StringBuilder::new(),
            p_plddt: Float32Builder::new(),
            p_method: StringBuilder::new(),
            p_res: Float32Builder::new(),
            p_ec: ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
                arrow_schema::Field::new("item", arrow_schema::DataType::Utf8, false),
            )),
            p_title: StringBuilder::new(),
            r_id: strings(residues, 12),
            r_index: Int32Builder::with_capacity(residues),
            r_name: strings(residues, 3),
            r_type: Int8Builder::with_capacity(residues),
            r_chain: strings(residues, 1),
            r_number: Int32Builder::with_capacity(residues),
            r_icode: strings(residues, 0),
            r_x: Float32Builder::with_capacity(residues),
            r_y: Float32Builder::with_capacity(residues),
            r_z: Float32Builder::with_capacity(residues),
            r_b: Float32Builder::with_capacity(residues),
            e_id: RepeatedStrings::with_capacity(edges, 12),
            e_src: Int32Builder::with_capacity(edges),
            e_dst: Int32Builder::with_capacity(edges),
            e_rel: Int8Builder::with_capacity(edges),
            residue_rows: 0,
            edge_rows: 0,
        }
    }

    pub fn push(&mut self, p: &ProteinRecord, edges: &Edges) {
        let r = &p.residues;
        let id = p.protein_id.as_str();
        self.p_id.append_value(id);
        self.p_entry.append_value(&p.entry_id);
        self.p_chain.append_value(&p.chain_id);
        self.p_seq.append_value(&p.sequence);
        self.p_n.append_value(r.len() as i32);
        self.p_n_file.append_value(p.num_residues_in_file as i32);
        self.p_source.append_value(&p.source);
        self.p_sha.append_value(&p.source_sha256);
        self.p_format.append_value(match p.format {
            crate::structure::Format::Pdb => "pdb",
            crate::structure::Format::Mmcif => "mmcif",
            crate::structure::Format::Atom3d => "atom3d",
        });
        self.p_plddt.append_option(p.mean_plddt);
        self.p_method.append_option(p.method.as_deref());
        self.p_res.append_option(p.resolution_angstrom);
        for ec in &p.ec_numbers {
            self.p_ec.values().append_value(ec);
        }
        self.p_ec.append(true);
        self.p_title.append_option(p.title.as_deref());

        for i in 0..r.len() {
            self.r_id.append_value(id);
            self.r_index.append_value(i as i32);
            self.r_name.append_value(&r.name[i]);
            self.r_type
                .append_value(residue::residue_type(&r.name[i]) as i8);
            self.r_chain.append_value(&r.chain[i]);
            self.r_number.append_value(r.number[i]);
            self.r_icode
                .append_option(r.insertion_code[i].map(|c| c.to_string()));
            self.r_x.append_value(r.pos[i][0]);
            self.r_y.append_value(r.pos[i][1]);
            self.r_z.append_value(r.pos[i][2]);
            self.r_b.append_value(r.b_factor[i]);
        }
        self.residue_rows += r.len();

        self.e_id.push(id, edges.len());
        self.e_src.append_slice(&edges.src);
        self.e_dst.append_slice(&edges.dst);
        self.e_rel.append_slice(&edges.relation);
        self.edge_rows += edges.len();
    }

    /// Takes the rows collected so far as one batch per table and resets the builders.
    pub fn take(&mut self) -> Result<[RecordBatch; 3], WriteError> {
        // Fresh builders at full size for the next batch; the filled ones become the arrays.
        let mut old = std::mem::replace(self, Self::new());
        let batch = |table: Table, cols: Vec<ArrayRef>| {
            RecordBatch::try_new(table.arrow_schema(), cols).map_err(|source| WriteError::Arrow {
                table: table.name(),
                source,
            })
        };
        let proteins = batch(
            Table::Proteins,
            vec![
                Arc::new(old.p_id.finish()),
                Arc::new(old.p_entry.finish()),
                Arc::new(old.p_chain.finish()),
                Arc::new(old.p_seq.finish()),
                Arc::new(old.p_n.finish()),
                Arc::new(old.p_n_file.finish()),
                Arc::new(old.p_source.finish()),
                Arc::new(old.p_sha.finish()),
                Arc::new(old.p_format.finish()),
                Arc::new(old.p_plddt.finish()),
                Arc::new(old.p_method.finish()),
                Arc::new(old.p_res.finish()),
                Arc::new(old.p_ec.finish()),
                Arc::new(old.p_title.finish()),
            ],
        )?;
        let residues = batch(
            Table::Residues,
            vec![
                Arc::new(old.r_id.finish()),
                Arc::new(old.r_index.finish()),
                Arc::new(old.r_name.finish()),
                Arc::new(old.r_type.finish()),
                Arc::new(old.r_chain.finish()),
                Arc::new(old.r_number.finish()),
                Arc::new(old.r_icode.finish()),
                Arc::new(old.r_x.finish()),
                Arc::new(old.r_y.finish()),
                Arc::new(old.r_z.finish()),
                Arc::new(old.r_b.finish()),
            ],
        )?;
        let edges = batch(
            Table::Edges,
            vec![
                Arc::new(old.e_id.finish().map_err(|source| WriteError::Arrow {
                    table: Table::Edges.name(),
                    source,
                })?),
                Arc::new(old.e_src.finish()),
                Arc::new(old.e_dst.finish()),
                Arc::new(old.e_rel.finish()),
            ],
        )?;
        Ok([proteins, residues, edges])
    }
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
}

/// One table's writer thread and the channel that feeds it.
struct Lane {
    tx: Option<mpsc::SyncSender<RecordBatch>>,
    handle: Option<std::thread::JoinHandle<Result<Vec<PartInfo>, WriteError>>>,
}

impl Lane {
    fn spawn(staging: &Path, table: Table) -> Result<Self, WriteError> {
        let mut writer = TableWriter::new(staging, table)?;
        let dataset = staging.to_owned();
        // Two batches in flight per table: enough to keep every thread busy, little memory.
        let (tx, rx) = mpsc::sync_channel::<RecordBatch>(2);
        let handle = std::thread::Builder::new()
            .name(format!("write-{}", table.name()))
            .spawn(move || {
                for batch in rx {
                    writer.write(&batch)?;
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
        Ok(Self {
            lanes: Table::PREPARED
                .iter()
                .map(|t| Lane::spawn(staging, *t))
                .collect::<Result<_, _>>()?,
            batches: Batches::new(),
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
    use crate::protein::ResidueColumns;
    use crate::structure::Format;

    fn protein(id: &str, n: usize) -> ProteinRecord {
        ProteinRecord {
            protein_id: id.into(),
            entry_id: id.into(),
            chain_id: "A".into(),
            sequence: "G".repeat(n),
            num_residues_in_file: n as u32,
            source: format!("{id}.pdb"),
            source_sha256: "ab".into(),
            format: Format::Pdb,
            mean_plddt: None,
            method: None,
            resolution_angstrom: None,
            ec_numbers: Vec::new(),
            title: None,
            residues: ResidueColumns {
                name: vec!["GLY".into(); n],
                chain: vec!["A".into(); n],
                number: (1..=n as i32).collect(),
                insertion_code: vec![None; n],
                pos: (0..n).map(|i| [i as f32 * 3.8, 0.0, 0.0]).collect(),
                b_factor: vec![0.0; n],
            },
        }
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
