//! What pre-training reads: every protein of one or many prepared datasets (a `merge --link`
//! dataset of proteome shards counts as one), indexed for random access with bounded memory
//! ([`Datasets`]), and the order of each epoch: one permutation over all of them (the default),
//! or the reference's dataset-by-dataset order — `epochs_per_dataset` consecutive epochs on each
//! dataset in turn, round after round, each epoch permuted by its global index as TorchDrug's
//! engine does when `pretrain.py` walks the AlphaFold DB splits.

use std::collections::HashSet;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{Array, StringArray};
use fusionprot_pipeline::dataset::read::read_table;
use fusionprot_pipeline::dataset::schema::Table;

use super::examples::Example;
use super::sampler::epoch_order;
use crate::error::ModelError;
use crate::model::ProteinGraph;
use crate::store::{Datasets, GraphSource};

/// The order of a pre-training epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "order")]
pub enum Order {
    /// One permutation over every protein of every dataset, per epoch.
    Shuffled,
    /// `epochs_per_dataset` epochs on the first dataset, then on the next, …, round after round.
    DatasetByDataset { epochs_per_dataset: usize },
}

/// The proteins of the datasets, as examples named `K:ID`.
#[derive(Debug)]
pub struct Proteins {
    pub examples: Vec<Example>,
    pub source: Arc<Datasets>,
    /// The examples of each dataset.
    pub ranges: Vec<Range<usize>>,
    pub order: Order,
}

impl Proteins {
    /// Lists and indexes every protein of `datasets`.
    ///
    /// # Errors
    /// No dataset, an unreadable one, or one without proteins.
    pub fn open(datasets: &[PathBuf], order: Order) -> Result<Proteins, ModelError> {
        if datasets.is_empty() {
            return Err(ModelError::Input("data.datasets lists no dataset".into()));
        }
        let mut examples = Vec::new();
        let mut ranges = Vec::with_capacity(datasets.len());
        let mut sets = Vec::with_capacity(datasets.len());
        for (k, dataset) in datasets.iter().enumerate() {
            let mut ids: Vec<String> = Vec::new();
            for b in read_table(dataset, Table::Proteins)? {
                let col = b
                    .column_by_name("protein_id")
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                    .ok_or_else(|| {
                        ModelError::Input(format!(
                            "{}: proteins has no text protein_id column",
                            dataset.display()
                        ))
                    })?;
                ids.extend((0..col.len()).map(|i| col.value(i).to_owned()));
            }
            if ids.is_empty() {
                return Err(ModelError::Input(format!(
                    "{}: the dataset holds no protein to pre-train on",
                    dataset.display()
                )));
            }
            // A linked dataset is sorted shard by shard: the order is by id, however assembled.
            ids.sort_unstable();
            ids.dedup();
            let start = examples.len();
            examples.extend(ids.iter().map(|id| Example::Protein {
                id: Datasets::name(k, id),
            }));
            ranges.push(start..examples.len());
            sets.push((
                dataset.clone(),
                ids.into_iter().collect::<HashSet<String>>(),
            ));
        }
        if let Order::DatasetByDataset { epochs_per_dataset } = order
            && epochs_per_dataset == 0
        {
            return Err(ModelError::Input(
                "data.epochs_per_dataset must be at least 1".into(),
            ));
        }
        Ok(Proteins {
            examples,
            source: Arc::new(Datasets::open(&sets)?),
            ranges,
            order,
        })
    }

    /// No proteins: for an objective stepped outside a run (a test giving its own graphs).
    pub fn none() -> Proteins {
        Proteins {
            examples: Vec::new(),
            source: Arc::new(Datasets::default()),
            ranges: Vec::new(),
            order: Order::Shuffled,
        }
    }

    /// `size` proteins spread evenly over all of them (every one when there are fewer): the fixed
    /// set a pre-training run is probed on at each checkpoint.
    pub fn probe(&self, size: usize) -> Vec<usize> {
        let n = self.examples.len();
        let size = size.min(n);
        let mut v: Vec<usize> = (0..size).map(|i| i * n / size).collect();
        v.dedup();
        v
    }

    /// The graphs of `indices`, in that order.
    ///
    /// # Errors
    /// Unreadable graphs.
    pub fn graphs(&self, indices: &[usize]) -> Result<Vec<ProteinGraph>, ModelError> {
        let ids: Vec<&str> = indices
            .iter()
            .flat_map(|&i| self.examples[i].proteins())
            .collect();
        let mut read = self.source.load(&ids)?;
        ids.iter()
            .map(|id| {
                read.remove(*id)
                    .ok_or_else(|| ModelError::Input(format!("{id}: not in the datasets")))
            })
            .collect()
    }

    /// The dataset epoch `epoch` walks (every one, for [`Order::Shuffled`]).
    pub fn datasets_of_epoch(&self, epoch: usize) -> Range<usize> {
        match self.order {
            Order::Shuffled => 0..self.ranges.len(),
            Order::DatasetByDataset { epochs_per_dataset } => {
                let d = (epoch / epochs_per_dataset) % self.ranges.len();
                d..d + 1
            }
        }
    }

    /// How many proteins `epoch` walks.
    pub fn epoch_len(&self, epoch: usize) -> usize {
        if self.ranges.is_empty() {
            return 0;
        }
        let ds = self.datasets_of_epoch(epoch);
        self.ranges[ds.start]
            .start
            .abs_diff(self.ranges[ds.end - 1].end)
    }

    /// The micro-batches of `epoch`: its examples permuted by the epoch's index (the reference's
    /// `DistributedSampler` order), cut into `micro_batch`es.
    pub fn epoch_batches(&self, epoch: usize, micro_batch: usize) -> Vec<Vec<usize>> {
        if self.ranges.is_empty() {
            return Vec::new();
        }
        let ds = self.datasets_of_epoch(epoch);
        let first = self.ranges[ds.start].start;
        let last = self.ranges[ds.end - 1].end;
        epoch_order(last - first, epoch as u64, 1, 0)
            .into_iter()
            .map(|i| first + i)
            .collect::<Vec<_>>()
            .chunks(micro_batch.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proteins(sizes: &[usize], order: Order) -> Proteins {
        let mut examples = Vec::new();
        let mut ranges = Vec::new();
        for (k, &n) in sizes.iter().enumerate() {
            let start = examples.len();
            examples.extend((0..n).map(|i| Example::Protein {
                id: Datasets::name(k, &format!("P{i}")),
            }));
            ranges.push(start..examples.len());
        }
        Proteins {
            examples,
            source: Arc::new(Datasets::default()),
            ranges,
            order,
        }
    }

    fn flat(b: &[Vec<usize>]) -> Vec<usize> {
        let mut v: Vec<usize> = b.iter().flatten().copied().collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn a_shuffled_epoch_covers_every_protein_once_in_a_new_order() {
        let p = proteins(&[3, 5], Order::Shuffled);
        let (e0, e1) = (p.epoch_batches(0, 3), p.epoch_batches(1, 3));
        assert_eq!(flat(&e0), (0..8).collect::<Vec<_>>());
        assert_eq!(flat(&e1), (0..8).collect::<Vec<_>>());
        assert_ne!(e0, e1);
        assert_eq!(e0.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2]);
        assert_eq!(
            e0,
            p.epoch_batches(0, 3),
            "an epoch's order is fixed by its index"
        );
    }

    #[test]
    fn dataset_by_dataset_walks_each_dataset_for_its_epochs_round_after_round() {
        let p = proteins(
            &[3, 5],
            Order::DatasetByDataset {
                epochs_per_dataset: 2,
            },
        );
        let sets: Vec<Vec<usize>> = (0..6).map(|e| flat(&p.epoch_batches(e, 4))).collect();
        let (first, second) = ((0..3).collect::<Vec<_>>(), (3..8).collect::<Vec<_>>());
        assert_eq!(
            sets,
            [
                first.clone(),
                first.clone(),
                second.clone(),
                second,
                first.clone(),
                first
            ]
        );
        assert_eq!(p.datasets_of_epoch(2), 1..2);
        assert_eq!((p.epoch_len(0), p.epoch_len(2)), (3, 5));
    }

    #[test]
    fn the_probe_spreads_over_all_datasets() {
        let p = proteins(&[3, 5], Order::Shuffled);
        assert_eq!(p.probe(4), [0, 2, 4, 6]);
        assert_eq!(p.probe(100), (0..8).collect::<Vec<_>>());
        assert!(p.probe(0).is_empty());
        let none = Proteins::none();
        assert!(
            none.epoch_batches(0, 4).is_empty()
                && none.epoch_len(0) == 0
                && none.probe(8).is_empty()
        );
    }
}
