//! `split`: family-level train / valid / test splits with a certificate. Proteins linked by any pair
//! at or above the identity threshold (all-vs-all MMseqs2 search, then exact re-alignment of every
//! cross-split pair it reports) end up in one connected component, and whole components go to one
//! split; a seeded random audit of cross-split pairs, aligned exactly without any prefilter, checks
//! what the search could have missed. Nothing is written unless the guarantee holds.

mod align;
mod assign;
mod rng;
mod search;
pub mod synthetic;

pub use align::{PairIdentity, align};
pub use search::SearchParams;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Int32Array, RecordBatch, StringArray};
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::mmseqs::{Mmseqs, MmseqsError};
use crate::read::{self, ReadError};
use crate::schema::Table;
use crate::write::{PartInfo, TableWriter, WriteError};
use assign::Components;
use rng::SplitMix;

/// Split names, in the order of `fractions`.
pub const SPLIT_NAMES: [&str; 3] = ["train", "valid", "test"];
/// The `split` value of proteins dropped by `--remove-to-separate`.
pub const REMOVED: &str = "removed";

/// Which proteins must stay together besides sequence similarity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// Sequence similarity only.
    Sequence,
    /// Also keep proteins with equal values of this `proteins` column together (e.g. `entry_id`).
    Column(String),
    /// Also keep the members of each cluster of an MMseqs2 cluster TSV (`representative<TAB>member`,
    /// protein ids) together.
    ClusterFile(PathBuf),
}

/// How to split; validated by the caller.
#[derive(Debug, Clone)]
pub struct SplitConfig {
    pub dataset: PathBuf,
    /// Pairs at or above this identity are linked (MMseqs2's `--min-seq-id`).
    pub min_seq_id: f32,
    /// Coverage a pair needs to count (MMseqs2's `-c`).
    pub coverage: f32,
    /// 0: both sequences covered; 1: the target; 2: the query (MMseqs2's `--cov-mode`).
    pub cov_mode: u8,
    pub search: SearchParams,
    /// Train, valid, test; sum to 1.
    pub fractions: [f64; 3],
    pub seed: u64,
    pub split_by: SplitBy,
    /// Random cross-split pairs aligned exactly for the audit.
    pub audit_pairs: usize,
    /// When a family is too large for the train fraction, drop the fewest proteins needed to break
    /// it apart (GraphPart's remedy) instead of failing; dropped proteins get the split `removed`.
    pub remove_to_separate: bool,
}

/// Errors that stop `split`; nothing is written when one occurs.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Mmseqs(#[from] MmseqsError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: unexpected MMseqs2 output", .path.display())]
    Output { path: PathBuf, line: usize },
    #[error("{}: no column {column:?} of text type in proteins; try entry_id", .dataset.display())]
    NoColumn { dataset: PathBuf, column: String },
    #[error("{}:{line}: expected `representative<TAB>member` protein ids", .path.display())]
    ClusterFile { path: PathBuf, line: usize },
    #[error(
        "the largest family holds {size} of {total} proteins ({:.1}%), more than the train fraction allows; \
         raise --min-seq-id or the train fraction, or pass --remove-to-separate to drop the fewest proteins that \
         break it apart",
        100.0 * *.size as f64 / *.total as f64
    )]
    Oversized { size: u64, total: u64 },
    #[error("guarantee broken: {a} ({sa}) and {b} ({sb}) are {:.1}% identical over {:.0}%/{:.0}% of their lengths ({how})",
        100.0 * .pair.identity, 100.0 * .pair.cov_a, 100.0 * .pair.cov_b)]
    Violation {
        a: String,
        b: String,
        sa: &'static str,
        sb: &'static str,
        pair: PairIdentity,
        how: &'static str,
    },
    #[error("another command is writing {} (lock held on {})", .dataset.display(), .lock.display())]
    Locked { dataset: PathBuf, lock: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SplitError + '_ {
    move |source| SplitError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The highest identity found between two proteins of different splits.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MaxPair {
    pub a: String,
    pub b: String,
    #[serde(flatten)]
    pub pair: PairIdentity,
}

/// What `split` did; also the manifest's `split` section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitReport {
    pub tool_version: &'static str,
    pub mmseqs_version: String,
    pub parameters: serde_json::Value,
    pub identity_definition: &'static str,
    pub proteins: usize,
    pub unique_sequences: usize,
    pub counts: [usize; 3],
    /// Proteins dropped by `--remove-to-separate` (split `removed` in the table).
    pub removed: Vec<String>,
    pub requested_fractions: [f64; 3],
    pub achieved_fractions: [f64; 3],
    pub components: usize,
    pub largest_component: u64,
    pub search_pairs: usize,
    /// Cross-split pairs the search reported, each re-aligned exactly.
    pub cross_split_pairs_checked: usize,
    /// Linking rounds: a round re-links pairs that the exact alignment found above the threshold.
    pub rounds: usize,
    pub max_cross_split: Option<MaxPair>,
    pub audit_pairs: usize,
    /// The audit aligned every cross-split pair (there were at most `--audit-pairs`).
    pub audit_exhaustive: bool,
    pub audit_max: Option<MaxPair>,
    pub parts: Vec<PartInfo>,
}

/// States the identity the guarantee is about; printed in the certificate.
pub const IDENTITY_DEFINITION: &str = "identical columns / aligned columns (gaps included) of the Smith-Waterman \
local alignment (BLOSUM62, gap open 11, extend 1); a pair counts when the alignment covers at least -c of \
both sequences (--cov-mode 0), the target (1) or the query (2)";

const MAX_ROUNDS: usize = 20;

impl SplitConfig {
    /// The coverage rule of `--cov-mode`.
    fn covered(&self, p: &PairIdentity) -> bool {
        match self.cov_mode {
            1 => p.cov_b >= self.coverage,
            2 => p.cov_a >= self.coverage,
            _ => p.cov_a >= self.coverage && p.cov_b >= self.coverage,
        }
    }

    /// Whether a pair links its proteins: covered, and at or above the identity threshold.
    fn counts(&self, p: &PairIdentity) -> bool {
        self.covered(p) && p.identity >= self.min_seq_id
    }
}

/// Splits the dataset and writes `DATASET/splits/` and the manifest's `split` section.
///
/// # Errors
/// See [`SplitError`]; in every case nothing is written.
pub fn split(cfg: &SplitConfig, progress: &ProgressBar) -> Result<SplitReport, SplitError> {
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
struct Proteins {
    ids: Vec<String>,
    seqs: Vec<String>,
    groups: Vec<Option<String>>,
}

fn load(cfg: &SplitConfig) -> Result<Proteins, SplitError> {
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
    Ok(p)
}

fn split_in(
    cfg: &SplitConfig,
    work: &Path,
    progress: &ProgressBar,
) -> Result<SplitReport, SplitError> {
    progress.set_message("reading proteins");
    let p = load(cfg)?;
    // One node per distinct sequence: identical chains are 100% identical and stay together anyway.
    let mut seq_index: HashMap<&str, u32> = HashMap::new();
    let mut unique: Vec<&str> = Vec::new();
    let mut weight: Vec<u32> = Vec::new();
    let node_of: Vec<u32> = p
        .seqs
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

    // The first protein (by id) of each sequence node names it in the report and as cluster_id.
    let mut first_protein: Vec<usize> = vec![usize::MAX; unique.len()];
    for (i, &n) in node_of.iter().enumerate() {
        first_protein[n as usize] = first_protein[n as usize].min(i);
    }
    let mm = Mmseqs::locate()?;
    let mmseqs_version = mm.version()?;
    progress.set_message("MMseqs2 all-vs-all search");
    let hits = search::all_vs_all(&mm, &unique, &cfg.search, work)?;
    progress.set_message("MMseqs2 clustering");
    let reps = search::cluster(
        &mm,
        unique.len(),
        cfg.min_seq_id,
        cfg.coverage,
        cfg.cov_mode,
        cfg.search.threads,
        work,
    )?;

    // Every link, kept as a list so that --remove-to-separate can cut the graph it forms.
    let mut links: Vec<(u32, u32)> = hits
        .iter()
        .filter(|h| {
            cfg.counts(&PairIdentity {
                identity: h.identity,
                cov_a: h.qcov,
                cov_b: h.tcov,
                aligned_columns: 0,
            })
        })
        .map(|h| (h.q, h.t))
        .collect();
    group_unions(cfg, &p, &node_of, &mut links)?;
    let mut removed = vec![false; unique.len()];

    // Cross-split candidates: every distinct pair the search reported.
    let mut pairs: Vec<(u32, u32)> = hits.iter().map(|h| (h.q.min(h.t), h.q.max(h.t))).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut known: HashMap<(u32, u32), PairIdentity> = HashMap::new();
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
            let cut = separate(&links, &labels, &kept_weight, &removed, train_room);
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
        let aligned: Vec<((u32, u32), PairIdentity)> = todo
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
            let max = cross
                .iter()
                .filter(|k| cfg.covered(&known[k]))
                .max_by(|x, y| {
                    known[x]
                        .identity
                        .total_cmp(&known[y].identity)
                        .then(y.cmp(x))
                })
                .copied();
            break (split_of, labels, weights, max, cross.len());
        }
        if rounds >= MAX_ROUNDS {
            let (a, b) = violators[0];
            return Err(violation(
                &p,
                &first_protein,
                &split_of,
                a,
                b,
                known[&(a, b)],
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
    let (audit, audit_exhaustive) = audit(cfg, &unique, &kept(&weight, &removed), &split_of);
    if let Some((a, b, pair)) = audit.iter().find(|(_, _, pair)| cfg.counts(pair)) {
        return Err(violation(
            &p,
            &first_protein,
            &split_of,
            *a,
            *b,
            *pair,
            "found by the random audit",
        ));
    }
    let audit_max = audit
        .iter()
        .filter(|(_, _, pair)| cfg.covered(pair))
        .max_by(|x, y| x.2.identity.total_cmp(&y.2.identity))
        .map(|&(a, b, pair)| max_pair(&p, &first_protein, a, b, pair));

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
    let columns = SplitColumns {
        reps: &reps,
        first_protein: &first_protein,
        labels: &labels,
        split_of: &split_of,
        removed: &removed,
    };
    let parts = write_splits(work, &p, &node_of, &columns)?;
    let report = SplitReport {
        tool_version: env!("CARGO_PKG_VERSION"),
        mmseqs_version,
        parameters: serde_json::json!({
            "min_seq_id": cfg.min_seq_id,
            "coverage": cfg.coverage,
            "cov_mode": cfg.cov_mode,
            "search": cfg.search,
            "fractions": cfg.fractions,
            "seed": cfg.seed,
            "split_by": cfg.split_by,
                        "audit_pairs": cfg.audit_pairs,
            "remove_to_separate": cfg.remove_to_separate,
        }),
        identity_definition: IDENTITY_DEFINITION,
        proteins: p.ids.len(),
        unique_sequences: unique.len(),
        counts,
        removed: removed_ids,
        requested_fractions: cfg.fractions,
        achieved_fractions: counts.map(|c| c as f64 / total),
        components: weights.len(),
        largest_component: weights.first().copied().unwrap_or(0),
        search_pairs: pairs.len(),
        cross_split_pairs_checked: checked,
        rounds,
        max_cross_split: max_cross.map(|(a, b)| max_pair(&p, &first_protein, a, b, known[&(a, b)])),
        audit_pairs: audit.len(),
        audit_exhaustive,
        audit_max,
        parts,
    };
    commit(cfg, work, &report)?;
    Ok(report)
}

/// Protein weights with removed sequences at 0.
fn kept(weight: &[u32], removed: &[bool]) -> Vec<u32> {
    weight
        .iter()
        .zip(removed)
        .map(|(&w, &r)| if r { 0 } else { w })
        .collect()
}

/// GraphPart-style separation of the oversized component (label 0): repeatedly drop the node with
/// the most links inside the heaviest remaining piece (ties to the lower index) until no piece
/// outweighs `room`. Greedy, so "fewest" is approximate; returns the dropped nodes.
fn separate(
    links: &[(u32, u32)],
    labels: &[u32],
    weight: &[u32],
    removed: &[bool],
    room: f64,
) -> Vec<u32> {
    let n = labels.len();
    let inside = |x: u32| labels[x as usize] == 0 && !removed[x as usize];
    let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
    for &(a, b) in links {
        if a != b && inside(a) && inside(b) {
            adj[a as usize].push(b);
            adj[b as usize].push(a);
        }
    }
    for list in &mut adj {
        list.sort_unstable();
        list.dedup();
    }
    let mut gone = vec![false; n];
    let mut cut = Vec::new();
    loop {
        let mut seen = vec![false; n];
        let mut heaviest = 0u64;
        let mut heaviest_nodes: Vec<u32> = Vec::new();
        for start in (0..n as u32).filter(|&x| inside(x) && !gone[x as usize]) {
            if seen[start as usize] {
                continue;
            }
            seen[start as usize] = true;
            let mut stack = vec![start];
            let mut piece = Vec::new();
            let mut w = 0u64;
            while let Some(x) = stack.pop() {
                piece.push(x);
                w += u64::from(weight[x as usize]);
                for &y in &adj[x as usize] {
                    if !gone[y as usize] && !seen[y as usize] {
                        seen[y as usize] = true;
                        stack.push(y);
                    }
                }
            }
            if w > heaviest {
                heaviest = w;
                heaviest_nodes = piece;
            }
        }
        if heaviest as f64 <= room || heaviest_nodes.is_empty() {
            return cut;
        }
        let degree = |x: u32| {
            adj[x as usize]
                .iter()
                .filter(|&&y| !gone[y as usize])
                .count()
        };
        let pick = heaviest_nodes
            .iter()
            .copied()
            .max_by(|&a, &b| degree(a).cmp(&degree(b)).then(b.cmp(&a)))
            .expect("a non-empty piece");
        gone[pick as usize] = true;
        cut.push(pick);
    }
}

/// Extra links from `--split-by`: a column's equal values, or a cluster file's clusters.
fn group_unions(
    cfg: &SplitConfig,
    p: &Proteins,
    node_of: &[u32],
    links: &mut Vec<(u32, u32)>,
) -> Result<(), SplitError> {
    match &cfg.split_by {
        SplitBy::Sequence => {}
        SplitBy::Column(_) => {
            let mut first: HashMap<&str, u32> = HashMap::new();
            for (i, g) in p.groups.iter().enumerate() {
                if let Some(g) = g {
                    let n = *first.entry(g.as_str()).or_insert(node_of[i]);
                    links.push((n, node_of[i]));
                }
            }
        }
        SplitBy::ClusterFile(path) => {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            let node: HashMap<&str, u32> = p
                .ids
                .iter()
                .map(String::as_str)
                .zip(node_of.iter().copied())
                .collect();
            for (line, row) in text
                .lines()
                .enumerate()
                .filter(|(_, r)| !r.trim().is_empty())
            {
                let mut f = row.split('\t');
                let (Some(rep), Some(member)) = (f.next(), f.next()) else {
                    return Err(SplitError::ClusterFile {
                        path: path.clone(),
                        line: line + 1,
                    });
                };
                // Ids not in this dataset (a published clustering covers more) are skipped.
                if let (Some(&a), Some(&b)) = (node.get(rep.trim()), node.get(member.trim())) {
                    links.push((a, b));
                }
            }
        }
    }
    Ok(())
}

/// Aligns cross-split pairs of sequences exactly, with no prefilter: all of them when there are
/// at most `cfg.audit_pairs` (then the audit is exhaustive), else that many drawn at random,
/// uniformly over protein pairs (a sequence shared by k proteins is drawn k times as often).
fn audit(
    cfg: &SplitConfig,
    unique: &[&str],
    weight: &[u32],
    split_of: &[u8],
) -> (Vec<(u32, u32, PairIdentity)>, bool) {
    let align_all = |picks: &[(u32, u32)]| -> Vec<(u32, u32, PairIdentity)> {
        picks
            .par_iter()
            .map(|&(a, b)| {
                (
                    a,
                    b,
                    align(unique[a as usize].as_bytes(), unique[b as usize].as_bytes()),
                )
            })
            .collect()
    };
    let mut members: [Vec<u32>; 3] = Default::default();
    for (i, &s) in split_of.iter().enumerate() {
        // Weight 0: removed by --remove-to-separate, in no split.
        if weight[i] > 0 {
            members[s as usize].push(i as u32);
        }
    }
    let cross_pairs: usize = [(0, 1), (0, 2), (1, 2)]
        .iter()
        .map(|&(a, b)| members[a].len() * members[b].len())
        .sum();
    if cross_pairs <= cfg.audit_pairs {
        let mut picks = Vec::with_capacity(cross_pairs);
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            for &x in &members[a] {
                picks.extend(members[b].iter().map(|&y| (x.min(y), x.max(y))));
            }
        }
        return (align_all(&picks), true);
    }
    // Cumulative protein weights per split, to draw a protein uniformly then its sequence.
    let mut by_split: [Vec<(u64, u32)>; 3] = Default::default();
    let mut totals = [0u64; 3];
    for (i, (&w, &s)) in weight.iter().zip(split_of).enumerate() {
        totals[s as usize] += u64::from(w);
        by_split[s as usize].push((totals[s as usize], i as u32));
    }
    let pair_weight = |a: usize, b: usize| totals[a] * totals[b];
    let combos = [(0usize, 1usize), (0, 2), (1, 2)];
    let all: u64 = combos.iter().map(|&(a, b)| pair_weight(a, b)).sum();
    if all == 0 {
        return (Vec::new(), true);
    }
    let mut rng = SplitMix(cfg.seed ^ 0x5eed_a0d1);
    let draw = |rng: &mut SplitMix, s: usize| -> u32 {
        let x = rng.next() % totals[s];
        let k = by_split[s].partition_point(|&(cum, _)| cum <= x);
        by_split[s][k].1
    };
    let mut picks = Vec::with_capacity(cfg.audit_pairs);
    for _ in 0..cfg.audit_pairs {
        let mut x = rng.next() % all;
        let mut combo = combos[2];
        for &c in &combos {
            let w = pair_weight(c.0, c.1);
            if x < w {
                combo = c;
                break;
            }
            x -= w;
        }
        picks.push((draw(&mut rng, combo.0), draw(&mut rng, combo.1)));
    }
    (align_all(&picks), false)
}

/// Names a pair of sequence nodes by their first proteins.
fn max_pair(p: &Proteins, first_protein: &[usize], a: u32, b: u32, pair: PairIdentity) -> MaxPair {
    MaxPair {
        a: p.ids[first_protein[a as usize]].clone(),
        b: p.ids[first_protein[b as usize]].clone(),
        pair,
    }
}

fn violation(
    p: &Proteins,
    first_protein: &[usize],
    split_of: &[u8],
    a: u32,
    b: u32,
    pair: PairIdentity,
    how: &'static str,
) -> SplitError {
    let m = max_pair(p, first_protein, a, b, pair);
    SplitError::Violation {
        a: m.a,
        b: m.b,
        sa: SPLIT_NAMES[split_of[a as usize] as usize],
        sb: SPLIT_NAMES[split_of[b as usize] as usize],
        pair,
        how,
    }
}

/// Writes a dataset whose `proteins` table holds only ids and sequences (empty `residues` and
/// `edges`, no structures behind it), with a minimal manifest: for splitting sequence sets in
/// tests and benchmarks.
///
/// # Errors
/// I/O and Parquet errors.
pub fn sequences_dataset(dir: &Path, proteins: &[(String, String)]) -> Result<(), SplitError> {
    use crate::protein::{ProteinRecord, ResidueColumns};
    let mut sorted: Vec<&(String, String)> = proteins.iter().collect();
    sorted.sort();
    let mut batches = crate::write::Batches::new();
    for (id, seq) in sorted {
        let record = ProteinRecord {
            protein_id: id.clone(),
            entry_id: id.clone(),
            chain_id: String::new(),
            sequence: seq.clone(),
            num_residues_in_file: 0,
            source: String::new(),
            source_sha256: String::new(),
            format: crate::structure::Format::Pdb,
            mean_plddt: None,
            method: None,
            resolution_angstrom: None,
            ec_numbers: Vec::new(),
            title: None,
            residues: ResidueColumns::default(),
        };
        batches.push(&record, &crate::graph::Edges::default());
    }
    let tables = batches.take()?;
    for (t, b) in Table::PREPARED.iter().zip(&tables) {
        let mut w = TableWriter::new(dir, *t)?;
        w.write(b)?;
        w.finish(dir)?;
    }
    let manifest = dir.join("manifest.json");
    std::fs::write(
        &manifest,
        "{\"tool\": \"fusionprot\", \"sequences_only\": true}\n",
    )
    .map_err(io(&manifest))
}

/// Per sequence node: its MMseqs2 representative, first protein, component, split and removal.
struct SplitColumns<'a> {
    reps: &'a [u32],
    first_protein: &'a [usize],
    labels: &'a [u32],
    split_of: &'a [u8],
    removed: &'a [bool],
}

/// Writes `splits/` into the work folder: one row per protein, sorted by protein id.
fn write_splits(
    work: &Path,
    p: &Proteins,
    node_of: &[u32],
    columns: &SplitColumns<'_>,
) -> Result<Vec<PartInfo>, SplitError> {
    let staging = work.join("out");
    let mut w = TableWriter::new(&staging, Table::Splits)?;
    let n = node_of.iter().map(|&n| n as usize);
    let c = columns;
    let cluster: StringArray = n
        .clone()
        .map(|n| Some(p.ids[c.first_protein[c.reps[n] as usize]].as_str()))
        .collect();
    let component: Int32Array = n.clone().map(|n| Some(c.labels[n] as i32)).collect();
    let split: StringArray = n
        .map(|n| {
            Some(if c.removed[n] {
                REMOVED
            } else {
                SPLIT_NAMES[c.split_of[n] as usize]
            })
        })
        .collect();
    let ids: StringArray = p.ids.iter().map(|s| Some(s.as_str())).collect();
    let batch = RecordBatch::try_new(
        Table::Splits.arrow_schema(),
        vec![
            std::sync::Arc::new(ids),
            std::sync::Arc::new(cluster),
            std::sync::Arc::new(component),
            std::sync::Arc::new(split),
        ],
    )
    .map_err(|source| WriteError::Arrow {
        table: "splits",
        source,
    })?;
    w.write(&batch)?;
    Ok(w.finish(&staging)?)
}

/// Moves `splits/` into the dataset (the old one aside first) and adds the `split` section to
/// the manifest through a temporary file.
fn commit(cfg: &SplitConfig, work: &Path, report: &SplitReport) -> Result<(), SplitError> {
    let manifest_path = cfg.dataset.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let mut manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| SplitError::Io {
            path: manifest_path.clone(),
            source: std::io::Error::other(e),
        })?;
    manifest["split"] = serde_json::to_value(report).map_err(|e| SplitError::Io {
        path: manifest_path.clone(),
        source: std::io::Error::other(e),
    })?;
    let tmp = work.join("manifest.json");
    let mut body = serde_json::to_string_pretty(&manifest).map_err(|e| SplitError::Io {
        path: tmp.clone(),
        source: std::io::Error::other(e),
    })?;
    body.push('\n');
    std::fs::write(&tmp, body).map_err(io(&tmp))?;
    let target = cfg.dataset.join("splits");
    if target.exists() {
        let old = work.join("old-splits");
        std::fs::rename(&target, &old).map_err(io(&target))?;
    }
    let new = work.join("out/splits");
    std::fs::rename(&new, &target).map_err(io(&new))?;
    std::fs::rename(&tmp, &manifest_path).map_err(io(&manifest_path))
}
