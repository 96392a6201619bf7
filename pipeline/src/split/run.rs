//! The run: load proteins, search, link, assign whole components to splits, re-check every
//! cross-split pair the search reported exactly (re-linking until none counts), audit, write.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::{Array, StringArray};
use indicatif::ProgressBar;
use rayon::prelude::*;

use super::assign::{self, Components};
use super::config::{SPLIT_NAMES, SplitBy, SplitConfig, SplitError, io};
use super::report::{IdentityStatement, MaxPair, SplitReport};
use super::{Identity, PairAlignment, align, audit, chunks, groups, output, search, separate};
use crate::mmseqs::Mmseqs;
use crate::read;
use crate::schema::Table;

const MAX_ROUNDS: usize = 20;

/// Splits the dataset and writes `DATASET/splits/` and the manifest's `split` section.
///
/// # Errors
/// See [`SplitError`]; in every case nothing is written.
pub fn split(cfg: &SplitConfig, progress: &ProgressBar) -> Result<SplitReport, SplitError> {
    if !crate::splits::valid_name(&cfg.name) {
        return Err(SplitError::Name(cfg.name.clone()));
    }
    let lock_path = cfg.dataset.join(".lock");
    let lock = std::fs::File::create(&lock_path).map_err(io(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(SplitError::Locked {
            dataset: cfg.dataset.clone(),
            lock: lock_path,
        });
    }
    let work = cfg
        .dataset
        .join(format!(".split-work-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    // Alignments use as many threads as MMseqs2 is given (--jobs), not the whole machine.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.search.threads.max(1))
        .build()
        .expect("a rayon pool with a positive thread count");
    let result = pool.install(|| split_in(cfg, &work, progress));
    let _ = std::fs::remove_dir_all(&work);
    result
}

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

fn split_in(
    cfg: &SplitConfig,
    work: &Path,
    progress: &ProgressBar,
) -> Result<SplitReport, SplitError> {
    progress.set_message("reading proteins");
    let p = load(cfg)?;
    let Nodes {
        unique,
        weight,
        node_of,
    } = nodes(&p.seqs);

    // The first protein (by id) of each sequence node names it in the report and as cluster_id.
    let mut first_protein: Vec<usize> = vec![usize::MAX; unique.len()];
    for (i, &n) in node_of.iter().enumerate() {
        first_protein[n as usize] = first_protein[n as usize].min(i);
    }
    let mm = Mmseqs::locate()?;
    let mmseqs_version = mm.version()?;
    progress.set_message("MMseqs2 all-vs-all search");
    let candidate_seq_id = cfg.candidate_seq_id();
    let hits = match &cfg.hits {
        Some(files) => chunks::read_chunks(files, &unique, cfg, &mmseqs_version)?,
        None => search::all_vs_all(
            &mm,
            &unique,
            &cfg.search,
            cfg.identity.seq_id_mode(),
            candidate_seq_id,
            work,
        )?,
    };
    progress.set_message("MMseqs2 clustering");
    let reps = search::cluster(&mm, &unique, cfg, work)?;

    // Every link, kept as a list so that --remove-to-separate can cut the graph it forms. The
    // search's identity has the definition's denominator (its --seq-id-mode), so a pair MMseqs2
    // scores at or above the threshold is linked under the same definition the re-check uses.
    let mut links: Vec<(u32, u32)> = hits
        .iter()
        .filter(|h| cfg.identity.covered(h.qcov, h.tcov) && h.identity >= cfg.min_seq_id)
        .map(|h| (h.q, h.t))
        .collect();
    groups::group_unions(cfg, &p, &node_of, &mut links)?;
    let mut removed = vec![false; unique.len()];

    // Cross-split candidates: every distinct pair the search reported, and, for `shorter`, every
    // pair with a short sequence: a few identical residues are a large share of a short length
    // (4 of a 13-residue peptide are 31%), and MMseqs2's E-value cannot see such chance alignments.
    let mut pairs: Vec<(u32, u32)> = hits.iter().map(|h| (h.q.min(h.t), h.q.max(h.t))).collect();
    let short = short_sequences(cfg, &unique);
    for &s in &short {
        pairs.extend(
            (0..unique.len() as u32)
                .filter(|&o| o != s)
                .map(|o| (s.min(o), s.max(o))),
        );
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut known: HashMap<(u32, u32), PairAlignment> = HashMap::new();
    let mut rounds = 0;
    let (split_of, labels, weights, max_cross, checked) = loop {
        rounds += 1;
        let mut uf = Components::new(unique.len());
        for &(a, b) in &links {
            if !removed[a as usize] && !removed[b as usize] {
                uf.union(a, b);
            }
        }
        let kept_weight = kept(&weight, &removed);
        let (labels, weights) = uf.labels(&kept_weight);
        let total: u64 = weights.iter().sum();
        let train_room = (cfg.fractions[0] * total as f64).max(1.0);
        if weights.first().is_some_and(|&w| w as f64 > train_room) {
            if !cfg.remove_to_separate {
                return Err(SplitError::Oversized {
                    size: weights[0],
                    total,
                });
            }
            let cut = separate::separate(&links, &labels, &kept_weight, &removed, train_room);
            tracing::info!(
                sequences = cut.len(),
                "removing sequences to separate an oversized family"
            );
            for n in cut {
                removed[n as usize] = true;
            }
            continue;
        }
        let comp_split = assign::assign(&weights, &cfg.fractions);
        let split_of: Vec<u8> = labels.iter().map(|&l| comp_split[l as usize]).collect();
        let cross: Vec<(u32, u32)> = pairs
            .iter()
            .copied()
            .filter(|&(a, b)| !removed[a as usize] && !removed[b as usize])
            .filter(|&(a, b)| split_of[a as usize] != split_of[b as usize])
            .collect();
        progress.set_message(format!(
            "exact re-alignment of {} cross-split pairs (round {rounds})",
            cross.len()
        ));
        let todo: Vec<(u32, u32)> = cross
            .iter()
            .copied()
            .filter(|k| !known.contains_key(k))
            .collect();
        let aligned: Vec<((u32, u32), PairAlignment)> = todo
            .par_iter()
            .map(|&(a, b)| {
                (
                    (a, b),
                    align(unique[a as usize].as_bytes(), unique[b as usize].as_bytes()),
                )
            })
            .collect();
        known.extend(aligned);
        let violators: Vec<(u32, u32)> = cross
            .iter()
            .copied()
            .filter(|k| cfg.counts(&known[k]))
            .collect();
        if violators.is_empty() {
            let identity = |k: &(u32, u32)| cfg.identity.of(&known[k]);
            let max = cross
                .iter()
                .filter(|k| cfg.identity.covered(known[k].cov_a, known[k].cov_b))
                .max_by(|x, y| identity(x).total_cmp(&identity(y)).then(y.cmp(x)))
                .copied();
            break (split_of, labels, weights, max, cross.len());
        }
        if rounds >= MAX_ROUNDS {
            let (a, b) = violators[0];
            return Err(violation(
                cfg,
                &p,
                &first_protein,
                &split_of,
                (a, b, known[&(a, b)]),
                "still linked after 20 rounds",
            ));
        }
        tracing::info!(
            pairs = violators.len(),
            round = rounds,
            "linking pairs the exact alignment found above the threshold"
        );
        links.extend(violators);
    };

    progress.set_message(format!(
        "audit: {} random cross-split pairs",
        cfg.audit_pairs
    ));
    let (audit, audit_exhaustive) = audit::audit(cfg, &unique, &kept(&weight, &removed), &split_of);
    if let Some(&found) = audit.iter().find(|(_, _, pair)| cfg.counts(pair)) {
        return Err(violation(
            cfg,
            &p,
            &first_protein,
            &split_of,
            found,
            "found by the audit",
        ));
    }
    let audit_max = audit
        .iter()
        .filter(|(_, _, pair)| cfg.identity.covered(pair.cov_a, pair.cov_b))
        .max_by(|x, y| cfg.identity.of(&x.2).total_cmp(&cfg.identity.of(&y.2)))
        .map(|&(a, b, pair)| max_pair(cfg, &p, &first_protein, a, b, pair));

    let mut counts = [0usize; 3];
    let mut removed_ids = Vec::new();
    for (i, &n) in node_of.iter().enumerate() {
        if removed[n as usize] {
            removed_ids.push(p.ids[i].clone());
        } else {
            counts[split_of[n as usize] as usize] += 1;
        }
    }
    let total = counts.iter().sum::<usize>().max(1) as f64;
    let columns = output::SplitColumns {
        reps: &reps,
        first_protein: &first_protein,
        labels: &labels,
        split_of: &split_of,
        removed: &removed,
    };
    let parts = output::write_splits(cfg, work, &p, &node_of, &columns)?;
    let report = SplitReport {
        tool_version: env!("CARGO_PKG_VERSION"),
        mmseqs_version,
        parameters: serde_json::json!({
            "min_seq_id": cfg.min_seq_id,
            "identity": cfg.identity,
            "search": cfg.search,
            "fractions": cfg.fractions,
            "seed": cfg.seed,
            "split_by": cfg.split_by,
            "audit_pairs": cfg.audit_pairs,
            "remove_to_separate": cfg.remove_to_separate,
            "search_chunks": cfg.hits.as_ref().map(Vec::len),
        }),
        identity: IdentityStatement {
            name: cfg.identity.name(),
            denominator: cfg.identity.denominator(),
            definition: cfg.identity.statement(),
            threshold: cfg.min_seq_id,
        },
        proteins: p.ids.len(),
        unique_sequences: unique.len(),
        counts,
        removed: removed_ids,
        requested_fractions: cfg.fractions,
        achieved_fractions: counts.map(|c| c as f64 / total),
        components: weights.len(),
        largest_component: weights.first().copied().unwrap_or(0),
        search_pairs: pairs.len(),
        short_sequences: short.len(),
        candidate_seq_id,
        cross_split_pairs_checked: checked,
        rounds,
        max_cross_split: max_cross
            .map(|(a, b)| max_pair(cfg, &p, &first_protein, a, b, known[&(a, b)])),
        audit_pairs: audit.len(),
        audit_exhaustive,
        audit_max,
        parts,
    };
    output::commit(cfg, work, &report)?;
    Ok(report)
}

/// Sequences re-checked exactly against every other one: with `shorter`, those under
/// `search.exhaustive_below` residues.
fn short_sequences(cfg: &SplitConfig, unique: &[&str]) -> Vec<u32> {
    match cfg.identity {
        Identity::Shorter => (0..unique.len() as u32)
            .filter(|&i| unique[i as usize].len() < cfg.search.exhaustive_below)
            .collect(),
        Identity::Aligned { .. } => Vec::new(),
    }
}

/// Protein weights with removed sequences at 0.
fn kept(weight: &[u32], removed: &[bool]) -> Vec<u32> {
    weight
        .iter()
        .zip(removed)
        .map(|(&w, &r)| if r { 0 } else { w })
        .collect()
}

/// Names a pair of sequence nodes by their first proteins, with its identity under the run's
/// definition.
fn max_pair(
    cfg: &SplitConfig,
    p: &Proteins,
    first_protein: &[usize],
    a: u32,
    b: u32,
    alignment: PairAlignment,
) -> MaxPair {
    MaxPair {
        a: p.ids[first_protein[a as usize]].clone(),
        b: p.ids[first_protein[b as usize]].clone(),
        identity: cfg.identity.of(&alignment),
        definition: cfg.identity.name(),
        alignment,
    }
}

fn violation(
    cfg: &SplitConfig,
    p: &Proteins,
    first_protein: &[usize],
    split_of: &[u8],
    (a, b, alignment): (u32, u32, PairAlignment),
    how: &'static str,
) -> SplitError {
    SplitError::Violation {
        pair: Box::new(max_pair(cfg, p, first_protein, a, b, alignment)),
        sa: SPLIT_NAMES[split_of[a as usize] as usize],
        sb: SPLIT_NAMES[split_of[b as usize] as usize],
        how,
    }
}
