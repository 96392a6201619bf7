//! [`Batches`]: the rows of the three prepared tables, filled protein by protein and taken as
//! one Arrow record batch per table. The residue and edge columns are plain vectors, and those of
//! a batch the writer threads are done with come back ([`Batches::recycle`]) to be filled again:
//! a run reuses a few batches' worth of memory instead of faulting in fresh pages for every row
//! group (bench/prepare's corpus touched 290 MB of new pages that way).

use std::sync::Arc;

use arrow_array::builder::{Float32Builder, Int32Builder, ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int8Type, Int32Type};
use arrow_array::{ArrayRef, ArrowPrimitiveType, PrimitiveArray, RecordBatch, StringArray};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::ArrowError;

use crate::dataset::schema::Table;
use crate::graph::Edges;
use crate::protein::ProteinRecord;
use crate::residue;

/// Arrow refused a batch: a bug, as the columns are built to the table's schema.
#[derive(Debug, thiserror::Error)]
#[error("building a {table} batch: {source}")]
pub struct BatchError {
    pub table: &'static str,
    #[source]
    pub source: ArrowError,
}

/// Spare column sets kept per table: the writer threads hold at most two batches each, so a
/// third comes back in time for most flushes.
const SPARES: usize = 2;

/// A non-null string column: the bytes and the offsets (`offsets[0] == 0`).
#[derive(Debug)]
struct Strings {
    values: Vec<u8>,
    offsets: Vec<i32>,
}

impl Strings {
    fn with_capacity(rows: usize, bytes_per_row: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            values: Vec::with_capacity(rows * bytes_per_row),
            offsets,
        }
    }

    fn push(&mut self, value: &str) {
        self.values.extend_from_slice(value.as_bytes());
        // Offsets stay below 2^31: a batch is taken after a row group.
        self.offsets.push(self.values.len() as i32);
    }

    /// `value` `times` times in a row: the bytes by doubling copies, the offsets by arithmetic,
    /// instead of one append per row (each protein's id once per edge).
    fn push_repeated(&mut self, value: &str, times: usize) {
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
        self.offsets
            .extend((1..=times).map(|k| (start + k * bytes.len()) as i32));
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        Ok(Arc::new(StringArray::try_new(
            offsets,
            self.values.into(),
            None,
        )?))
    }

    /// The column's vectors back, emptied; `None` when a buffer is still shared (or was not
    /// made from a vector).
    fn reclaim(column: ArrayRef) -> Option<Self> {
        let array: StringArray = column.as_string_opt::<i32>()?.clone();
        drop(column);
        let (offsets, values, _) = array.into_parts();
        let mut offsets = offsets.into_inner().into_inner().into_vec::<i32>().ok()?;
        let mut values = values.into_vec::<u8>().ok()?;
        offsets.clear();
        offsets.push(0);
        values.clear();
        Some(Self { values, offsets })
    }
}

fn primitive<T: ArrowPrimitiveType>(values: Vec<T::Native>) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(values), None))
}

/// A primitive column's vector back, emptied; `None` when its buffer is still shared.
fn reclaim<T: ArrowPrimitiveType>(column: ArrayRef) -> Option<Vec<T::Native>> {
    let array: PrimitiveArray<T> = column.as_primitive_opt::<T>()?.clone();
    drop(column);
    let (_, values, _) = array.into_parts();
    let mut v = values.into_inner().into_vec::<T::Native>().ok()?;
    v.clear();
    Some(v)
}

/// The `residues` columns (but the rare insertion codes, a nullable builder).
#[derive(Debug)]
struct ResidueRows {
    id: Strings,
    index: Vec<i32>,
    name: Strings,
    kind: Vec<i8>,
    chain: Strings,
    number: Vec<i32>,
    x: Vec<f32>,
    y: Vec<f32>,
    z: Vec<f32>,
    b_factor: Vec<f32>,
}

impl ResidueRows {
    /// Sized for a row group and a quarter more (the protein that crosses the threshold):
    /// growing row by row cost a copy of every column at each doubling.
    fn new() -> Self {
        let rows = Table::Residues.row_group_rows() * 5 / 4;
        Self {
            id: Strings::with_capacity(rows, 12),
            index: Vec::with_capacity(rows),
            name: Strings::with_capacity(rows, 3),
            kind: Vec::with_capacity(rows),
            chain: Strings::with_capacity(rows, 1),
            number: Vec::with_capacity(rows),
            x: Vec::with_capacity(rows),
            y: Vec::with_capacity(rows),
            z: Vec::with_capacity(rows),
            b_factor: Vec::with_capacity(rows),
        }
    }

    /// Columns in `residues/v1` order, with the insertion codes in their place.
    fn finish(self, icode: ArrayRef) -> Result<Vec<ArrayRef>, ArrowError> {
        Ok(vec![
            self.id.finish()?,
            primitive::<Int32Type>(self.index),
            self.name.finish()?,
            primitive::<Int8Type>(self.kind),
            self.chain.finish()?,
            primitive::<Int32Type>(self.number),
            icode,
            primitive::<Float32Type>(self.x),
            primitive::<Float32Type>(self.y),
            primitive::<Float32Type>(self.z),
            primitive::<Float32Type>(self.b_factor),
        ])
    }

    fn reclaim(batch: RecordBatch) -> Option<Self> {
        let (_, columns, _) = batch.into_parts();
        let [id, index, name, kind, chain, number, _icode, x, y, z, b]: [ArrayRef; 11] =
            columns.try_into().ok()?;
        Some(Self {
            id: Strings::reclaim(id)?,
            index: reclaim::<Int32Type>(index)?,
            name: Strings::reclaim(name)?,
            kind: reclaim::<Int8Type>(kind)?,
            chain: Strings::reclaim(chain)?,
            number: reclaim::<Int32Type>(number)?,
            x: reclaim::<Float32Type>(x)?,
            y: reclaim::<Float32Type>(y)?,
            z: reclaim::<Float32Type>(z)?,
            b_factor: reclaim::<Float32Type>(b)?,
        })
    }
}

/// The `edges` columns.
#[derive(Debug)]
struct EdgeRows {
    id: Strings,
    src: Vec<i32>,
    dst: Vec<i32>,
    relation: Vec<i8>,
}

impl EdgeRows {
    fn new() -> Self {
        let rows = Table::Edges.row_group_rows() * 5 / 4;
        Self {
            id: Strings::with_capacity(rows, 12),
            src: Vec::with_capacity(rows),
            dst: Vec::with_capacity(rows),
            relation: Vec::with_capacity(rows),
        }
    }

    fn finish(self) -> Result<Vec<ArrayRef>, ArrowError> {
        Ok(vec![
            self.id.finish()?,
            primitive::<Int32Type>(self.src),
            primitive::<Int32Type>(self.dst),
            primitive::<Int8Type>(self.relation),
        ])
    }

    fn reclaim(batch: RecordBatch) -> Option<Self> {
        let (_, columns, _) = batch.into_parts();
        let [id, src, dst, relation]: [ArrayRef; 4] = columns.try_into().ok()?;
        Some(Self {
            id: Strings::reclaim(id)?,
            src: reclaim::<Int32Type>(src)?,
            dst: reclaim::<Int32Type>(dst)?,
            relation: reclaim::<Int8Type>(relation)?,
        })
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
    residues: ResidueRows,
    icode: StringBuilder,
    edges: EdgeRows,
    spare_residues: Vec<ResidueRows>,
    spare_edges: Vec<EdgeRows>,
    pub residue_rows: usize,
    pub edge_rows: usize,
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("residue_rows", &self.residue_rows)
            .field("edge_rows", &self.edge_rows)
            .finish_non_exhaustive()
    }
}

impl Batches {
    pub fn new() -> Self {
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
            residues: ResidueRows::new(),
            icode: StringBuilder::new(),
            edges: EdgeRows::new(),
            spare_residues: Vec::new(),
            spare_edges: Vec::new(),
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

        let rows = &mut self.residues;
        rows.id.push_repeated(id, r.len());
        rows.index.extend(0..r.len() as i32);
        for (name, chain) in r.name.iter().zip(&r.chain) {
            rows.name.push(name);
            rows.kind.push(residue::residue_type(name) as i8);
            rows.chain.push(chain);
        }
        rows.number.extend_from_slice(&r.number);
        for code in &r.insertion_code {
            match code {
                Some(c) => self.icode.append_value(c.encode_utf8(&mut [0; 4])),
                None => self.icode.append_null(),
            }
        }
        for pos in &r.pos {
            rows.x.push(pos[0]);
            rows.y.push(pos[1]);
            rows.z.push(pos[2]);
        }
        rows.b_factor.extend_from_slice(&r.b_factor);
        self.residue_rows += r.len();

        self.edges.id.push_repeated(id, edges.len());
        self.edges.src.extend_from_slice(&edges.src);
        self.edges.dst.extend_from_slice(&edges.dst);
        self.edges.relation.extend_from_slice(&edges.relation);
        self.edge_rows += edges.len();
    }

    /// Takes the rows collected so far as one batch per table; the next rows go into returned
    /// columns when there are any, else into new ones.
    pub fn take(&mut self) -> Result<[RecordBatch; 3], BatchError> {
        let arrow = |table: Table| {
            move |source: ArrowError| BatchError {
                table: table.name(),
                source,
            }
        };
        let batch = |table: Table, cols: Vec<ArrayRef>| {
            RecordBatch::try_new(table.arrow_schema(), cols).map_err(arrow(table))
        };
        let proteins = batch(
            Table::Proteins,
            vec![
                Arc::new(self.p_id.finish()),
                Arc::new(self.p_entry.finish()),
                Arc::new(self.p_chain.finish()),
                Arc::new(self.p_seq.finish()),
                Arc::new(self.p_n.finish()),
                Arc::new(self.p_n_file.finish()),
                Arc::new(self.p_source.finish()),
                Arc::new(self.p_sha.finish()),
                Arc::new(self.p_format.finish()),
                Arc::new(self.p_plddt.finish()),
                Arc::new(self.p_method.finish()),
                Arc::new(self.p_res.finish()),
                Arc::new(self.p_ec.finish()),
                Arc::new(self.p_title.finish()),
            ],
        )?;
        let next_residues = self.spare_residues.pop().unwrap_or_else(ResidueRows::new);
        let next_edges = self.spare_edges.pop().unwrap_or_else(EdgeRows::new);
        let residues = std::mem::replace(&mut self.residues, next_residues);
        let edges = std::mem::replace(&mut self.edges, next_edges);
        let icode: ArrayRef = Arc::new(self.icode.finish());
        let residues = batch(
            Table::Residues,
            residues.finish(icode).map_err(arrow(Table::Residues))?,
        )?;
        let edges = batch(Table::Edges, edges.finish().map_err(arrow(Table::Edges))?)?;
        self.residue_rows = 0;
        self.edge_rows = 0;
        Ok([proteins, residues, edges])
    }

    /// Takes back the columns of a batch that [`Batches::take`] made, once nothing else holds
    /// them, to be filled again; other batches, and shared ones, are dropped.
    pub fn recycle(&mut self, table: Table, batch: RecordBatch) {
        match table {
            Table::Residues if self.spare_residues.len() < SPARES => {
                self.spare_residues.extend(ResidueRows::reclaim(batch));
            }
            Table::Edges if self.spare_edges.len() < SPARES => {
                self.spare_edges.extend(EdgeRows::reclaim(batch));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protein::ResidueColumns;
    use crate::structure::Format;

    /// A protein of `n` residues on a line, names and chains varied, one insertion code at
    /// `icode_at`.
    pub(crate) fn protein(id: &str, n: usize, icode_at: Option<usize>) -> ProteinRecord {
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
                name: (0..n).map(|i| ["GLY", "MSE", "A"][i % 3].into()).collect(),
                chain: (0..n)
                    .map(|i| if i < n / 2 { "A" } else { "BB" }.into())
                    .collect(),
                number: (1..=n as i32).collect(),
                insertion_code: (0..n)
                    .map(|i| (Some(i) == icode_at).then_some('C'))
                    .collect(),
                pos: (0..n).map(|i| [i as f32 * 3.8, 1.0, -2.0]).collect(),
                b_factor: (0..n).map(|i| i as f32).collect(),
            },
        }
    }

    fn fill(b: &mut Batches, k: usize) -> [RecordBatch; 3] {
        for j in 0..3 {
            let p = protein(&format!("P{k}{j}"), 20 + 7 * j + k, Some(k + j));
            let edges = crate::graph::build(&p.residues.pos, &p.residues.chain_keys());
            b.push(&p, &edges);
        }
        b.take().expect("batches")
    }

    /// Columns that come back are emptied and hold nothing of the rows they carried before: a
    /// batch filled into recycled columns equals one filled into new ones.
    #[test]
    fn recycled_columns_give_the_same_batches_as_new_ones() {
        let (mut fresh, mut reused) = (Batches::new(), Batches::new());
        for k in 0..4 {
            let a = fill(&mut fresh, k);
            let b = fill(&mut reused, k);
            assert_eq!(a, b, "batch {k}");
            let [_, residues, edges] = b;
            reused.recycle(Table::Residues, residues);
            reused.recycle(Table::Edges, edges);
            assert_eq!(
                (reused.spare_residues.len(), reused.spare_edges.len()),
                (1, 1),
                "batch {k}: columns held by nothing else come back"
            );
        }
    }

    /// A batch still referenced elsewhere is not reclaimed (its memory is not reused under the
    /// other holder), and neither is a table that is not recycled.
    #[test]
    fn shared_columns_are_not_reclaimed() {
        let mut b = Batches::new();
        let [proteins, residues, edges] = fill(&mut b, 0);
        let kept = edges.column(2).clone();
        b.recycle(Table::Edges, edges);
        b.recycle(Table::Residues, residues.clone());
        b.recycle(Table::Proteins, proteins);
        assert!(b.spare_edges.is_empty() && b.spare_residues.is_empty());
        // The next batch goes into new columns: the shared one still holds its own rows.
        fill(&mut b, 1);
        assert_eq!(&kept, fill(&mut Batches::new(), 0)[2].column(2));
        drop(residues);
    }
}
