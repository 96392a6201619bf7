//! Protein graphs from a prepared dataset (the pipeline's `residues/v1` and `edges/v1` tables),
//! streamed in `protein_id` order: both tables are sorted by protein, so they are read in
//! lockstep and never held whole in memory.

use std::path::Path;

use arrow_array::{Array, Int8Array, Int32Array, RecordBatch, StringArray};
use fusionprot_pipeline::dataset::read::{ReadError, stream_table};
use fusionprot_pipeline::dataset::schema::Table;
use fusionprot_pipeline::residue::onehot_index;

use crate::error::ModelError;
use crate::model::ProteinGraph;

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ReadError>>>;

/// Reads rows of one table protein by protein.
struct Cursor {
    batches: Batches,
    batch: Option<RecordBatch>,
    pos: usize,
}

impl Cursor {
    fn new(batches: Batches) -> Self {
        Cursor {
            batches,
            batch: None,
            pos: 0,
        }
    }

    /// The protein id of the next row, loading the next batch when needed.
    fn peek(&mut self) -> Result<Option<String>, ModelError> {
        loop {
            if let Some(b) = &self.batch
                && self.pos < b.num_rows()
            {
                return Ok(Some(ids(b)?.value(self.pos).to_owned()));
            }
            match self.batches.next() {
                Some(b) => {
                    self.batch = Some(b?);
                    self.pos = 0;
                }
                None => return Ok(None),
            }
        }
    }

    /// Every row of `id` from the current position on (possibly across batches).
    fn take(&mut self, id: &str) -> Result<Vec<RecordBatch>, ModelError> {
        let mut out = Vec::new();
        while self.peek()?.as_deref() == Some(id) {
            let Some(b) = &self.batch else { break };
            let col = ids(b)?;
            let end = (self.pos..b.num_rows())
                .find(|&i| col.value(i) != id)
                .unwrap_or(b.num_rows());
            out.push(b.slice(self.pos, end - self.pos));
            self.pos = end;
        }
        Ok(out)
    }

    /// Skips rows of proteins ordered before `id`.
    fn skip_before(&mut self, id: &str) -> Result<(), ModelError> {
        while let Some(next) = self.peek()? {
            if next.as_str() >= id {
                break;
            }
            let next = next.clone();
            self.take(&next)?;
        }
        Ok(())
    }
}

pub(crate) fn ids(b: &RecordBatch) -> Result<&StringArray, ModelError> {
    column(b, 0, "protein_id")
}

fn column<'a, T: 'static>(b: &'a RecordBatch, i: usize, name: &str) -> Result<&'a T, ModelError> {
    b.columns()
        .get(i)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| ModelError::Input(format!("column {i} ({name}) has an unexpected type")))
}

/// Every protein graph of a dataset, in protein_id order.
#[derive(Debug)]
pub struct DatasetGraphs {
    residues: CursorBox,
    edges: CursorBox,
}

struct CursorBox(Cursor);

impl std::fmt::Debug for CursorBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursor")
    }
}

impl DatasetGraphs {
    /// Opens the residue and edge tables of `dataset`.
    ///
    /// # Errors
    /// Not a prepared dataset.
    pub fn open(dataset: &Path) -> Result<Self, ModelError> {
        Ok(DatasetGraphs {
            residues: CursorBox(Cursor::new(Box::new(stream_table(
                dataset,
                Table::Residues,
            )?))),
            edges: CursorBox(Cursor::new(Box::new(stream_table(dataset, Table::Edges)?))),
        })
    }

    fn next_graph(&mut self) -> Result<Option<ProteinGraph>, ModelError> {
        let Some(id) = self.residues.0.peek()? else {
            return Ok(None);
        };
        let mut graph = ProteinGraph {
            id: id.clone(),
            residue_type: Vec::new(),
            onehot: Vec::new(),
            edges: Vec::new(),
        };
        for b in self.residues.0.take(&id)? {
            push_residues(&mut graph, &b)?;
        }
        self.edges.0.skip_before(&id)?;
        for b in self.edges.0.take(&id)? {
            push_edges(&mut graph, &b)?;
        }
        Ok(Some(graph))
    }
}

impl Iterator for DatasetGraphs {
    type Item = Result<ProteinGraph, ModelError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_graph().transpose()
    }
}

/// Appends `b`'s rows (residues/v1, all of `graph`'s protein, in order) to `graph`, checking that
/// residue indices run on from where it stands and residue types are TorchDrug's.
pub(crate) fn push_residues(graph: &mut ProteinGraph, b: &RecordBatch) -> Result<(), ModelError> {
    let id = &graph.id;
    let index: &Int32Array = column(b, 1, "residue_index")?;
    let names: &StringArray = column(b, 2, "residue_name")?;
    let types: &Int8Array = column(b, 3, "residue_type")?;
    for i in 0..b.num_rows() {
        if index.value(i) as usize != graph.residue_type.len() {
            return Err(ModelError::Input(format!(
                "protein {id}: residue_index {} where {} was expected (residues must be contiguous from 0)",
                index.value(i),
                graph.residue_type.len()
            )));
        }
        let t = types.value(i);
        if !(0..20).contains(&t) {
            return Err(ModelError::Input(format!(
                "protein {id}, residue {}: residue_type {t} outside 0..20 (residues/v1 uses TorchDrug ids)",
                index.value(i)
            )));
        }
        graph.residue_type.push(i64::from(t));
        graph.onehot.push(i64::from(onehot_index(names.value(i))));
    }
    Ok(())
}

/// Appends `b`'s rows (edges/v1 of `graph`'s protein) to `graph`, whose residues are complete.
pub(crate) fn push_edges(graph: &mut ProteinGraph, b: &RecordBatch) -> Result<(), ModelError> {
    let n = graph.residue_type.len() as i32;
    let src: &Int32Array = column(b, 1, "src")?;
    let dst: &Int32Array = column(b, 2, "dst")?;
    let rel: &Int8Array = column(b, 3, "relation")?;
    for i in 0..b.num_rows() {
        let (s, d) = (src.value(i), dst.value(i));
        if !(0..n).contains(&s) || !(0..n).contains(&d) || rel.value(i) < 0 {
            return Err(ModelError::Input(format!(
                "protein {}: edge ({s}, {d}, {}) outside its {n} residues",
                graph.id,
                rel.value(i)
            )));
        }
        graph.edges.push((s, d, rel.value(i)));
    }
    Ok(())
}
