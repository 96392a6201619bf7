//! The dataset's proteins as the split sees them: ids in order, sequences, the grouping column,
//! and one node per distinct sequence.

use std::collections::HashMap;

use arrow_array::{Array, StringArray};

use super::config::{SplitBy, SplitConfig, SplitError};
use crate::dataset::read;
use crate::dataset::schema::Table;

/// Proteins (sorted by id), their sequences and the optional grouping column.
pub(super) struct Proteins {
    pub(super) ids: Vec<String>,
    pub(super) seqs: Vec<String>,
    pub(super) groups: Vec<Option<String>>,
}

pub(super) fn load(cfg: &SplitConfig) -> Result<Proteins, SplitError> {
    let batches = read::read_table(&cfg.dataset, Table::Proteins)?;
    let mut p = Proteins {
        ids: Vec::new(),
        seqs: Vec::new(),
        groups: Vec::new(),
    };
    for b in &batches {
        let text = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        };
        let ids = text("protein_id").expect("proteins/v1 has protein_id (schema checked)");
        let seqs = text("sequence").expect("proteins/v1 has sequence (schema checked)");
        let group = match &cfg.split_by {
            SplitBy::Column(c) => Some(text(c).ok_or_else(|| SplitError::NoColumn {
                dataset: cfg.dataset.clone(),
                column: c.clone(),
            })?),
            _ => None,
        };
        for i in 0..b.num_rows() {
            p.ids.push(ids.value(i).to_owned());
            p.seqs.push(seqs.value(i).to_owned());
            p.groups.push(
                group
                    .as_ref()
                    .filter(|g| g.is_valid(i))
                    .map(|g| g.value(i).to_owned()),
            );
        }
    }
    // A prepared table is sorted already; a linked one (`merge --link`) is sorted shard by shard.
    // The split is computed over proteins in id order either way, so it does not depend on how
    // the dataset was assembled.
    if !p.ids.is_sorted() {
        let mut order: Vec<usize> = (0..p.ids.len()).collect();
        order.sort_by(|&a, &b| p.ids[a].cmp(&p.ids[b]));
        p.ids = order
            .iter()
            .map(|&i| std::mem::take(&mut p.ids[i]))
            .collect();
        p.seqs = order
            .iter()
            .map(|&i| std::mem::take(&mut p.seqs[i]))
            .collect();
        p.groups = order.iter().map(|&i| p.groups[i].take()).collect();
    }
    Ok(p)
}

/// One node per distinct sequence (identical chains are 100% identical and stay together anyway),
/// in order of first appearance: the sequences, how many proteins share each, and each protein's.
pub(super) struct Nodes<'a> {
    pub(super) unique: Vec<&'a str>,
    pub(super) weight: Vec<u32>,
    pub(super) node_of: Vec<u32>,
}

pub(super) fn nodes(seqs: &[String]) -> Nodes<'_> {
    let mut seq_index: HashMap<&str, u32> = HashMap::new();
    let mut unique: Vec<&str> = Vec::new();
    let mut weight: Vec<u32> = Vec::new();
    let node_of: Vec<u32> = seqs
        .iter()
        .map(|s| {
            let i = *seq_index.entry(s.as_str()).or_insert_with(|| {
                unique.push(s);
                weight.push(0);
                (unique.len() - 1) as u32
            });
            weight[i as usize] += 1;
            i
        })
        .collect();
    Nodes {
        unique,
        weight,
        node_of,
    }
}
