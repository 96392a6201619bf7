//! Random access to a dataset's protein graphs with bounded memory, for training: the epoch's
//! order is a permutation, so graphs cannot stream in table order.
//!
//! [`GraphStore::open`] indexes where each protein the run needs lies in the `residues` and
//! `edges` tables ([`fusionprot_pipeline::dataset::access::TableIndex`]: part, row group, first row, row
//! count, from the `protein_id` column only). [`GraphStore::load`] then reads a set of proteins
//! with one row selection per row group; the parts are opened with their page index, so only the
//! pages holding the selected rows are decoded: each protein is read once per epoch, and nothing
//! else stays in memory. [`Prefetcher`] does that on a background thread, a window of proteins
//! ahead of the model.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use fusionprot_pipeline::dataset::access::TableIndex;
use fusionprot_pipeline::dataset::schema::Table;

use crate::data::{push_edges, push_residues};
use crate::error::ModelError;
use crate::model::ProteinGraph;

/// Where a loader reads graphs: one dataset ([`GraphStore`]) or several ([`Datasets`]).
pub trait GraphSource: Send + Sync + std::fmt::Debug {
    /// The graphs of `ids` (each id once).
    ///
    /// # Errors
    /// An id the source does not hold, unreadable or inconsistent rows.
    fn load(&self, ids: &[&str]) -> Result<HashMap<String, ProteinGraph>, ModelError>;

    /// Residues of protein `id`, from the index (nothing read).
    fn residue_count(&self, id: &str) -> Option<usize>;
}

impl GraphSource for GraphStore {
    fn load(&self, ids: &[&str]) -> Result<HashMap<String, ProteinGraph>, ModelError> {
        GraphStore::load(self, ids)
    }

    fn residue_count(&self, id: &str) -> Option<usize> {
        GraphStore::residue_count(self, id)
    }
}

/// Several datasets read as one: a protein is named `K:ID`, `K` the dataset's place in the list
/// (ids of different datasets may be equal), and its graph keeps that name.
#[derive(Debug, Default)]
pub struct Datasets {
    stores: Vec<GraphStore>,
}

impl Datasets {
    /// The proteins of each dataset, indexed.
    ///
    /// # Errors
    /// As [`GraphStore::open`], for any of them.
    pub fn open(sets: &[(PathBuf, HashSet<String>)]) -> Result<Self, ModelError> {
        let stores = sets
            .iter()
            .map(|(dataset, ids)| GraphStore::open(dataset, ids))
            .collect::<Result<_, _>>()?;
        Ok(Datasets { stores })
    }

    /// The name of protein `id` of dataset `k`.
    pub fn name(k: usize, id: &str) -> String {
        format!("{k}:{id}")
    }

    fn split(name: &str) -> Option<(usize, &str)> {
        let (k, id) = name.split_once(':')?;
        Some((k.parse().ok()?, id))
    }
}

impl GraphSource for Datasets {
    fn load(&self, names: &[&str]) -> Result<HashMap<String, ProteinGraph>, ModelError> {
        let mut by_set: Vec<Vec<&str>> = vec![Vec::new(); self.stores.len()];
        for name in names {
            let (k, id) = Self::split(name)
                .filter(|(k, _)| *k < self.stores.len())
                .ok_or_else(|| {
                    ModelError::Input(format!("{name}: not a protein of this run's datasets"))
                })?;
            by_set[k].push(id);
        }
        let mut out = HashMap::with_capacity(names.len());
        for (k, ids) in by_set.iter().enumerate().filter(|(_, ids)| !ids.is_empty()) {
            for (id, mut graph) in self.stores[k].load(ids)? {
                graph.id = Self::name(k, &id);
                out.insert(graph.id.clone(), graph);
            }
        }
        Ok(out)
    }

    fn residue_count(&self, name: &str) -> Option<usize> {
        let (k, id) = Self::split(name)?;
        self.stores.get(k)?.residue_count(id)
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
        let residues = TableIndex::build(dataset, Table::Residues, Some(ids))?;
        let mut missing: Vec<&String> = ids.iter().filter(|id| !residues.contains(id)).collect();
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
            edges: TableIndex::build(dataset, Table::Edges, Some(ids))?,
            residues,
        })
    }

    /// Residues of protein `id` (from the index, nothing read).
    pub fn residue_count(&self, id: &str) -> Option<usize> {
        self.residues.rows(id)
    }

    /// The graphs of `ids` (each id once).
    ///
    /// # Errors
    /// An id the store was not opened with, unreadable or inconsistent rows.
    pub fn load(&self, ids: &[&str]) -> Result<HashMap<String, ProteinGraph>, ModelError> {
        if let Some(id) = ids.iter().find(|id| !self.residues.contains(id)) {
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
    pub fn start<S: GraphSource + ?Sized + 'static>(
        store: Arc<S>,
        batches: Vec<Vec<String>>,
        window: usize,
        depth: usize,
    ) -> Prefetcher {
        let (tx, rx) = sync_channel(depth.max(1));
        let thread = std::thread::Builder::new()
            .name("graph-prefetch".into())
            .spawn(move || feed(&*store, &batches, window.max(1), &tx))
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

fn feed<S: GraphSource + ?Sized>(
    store: &S,
    batches: &[Vec<String>],
    window: usize,
    tx: &SyncSender<Sent>,
) {
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
