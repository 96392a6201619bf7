//! The run: load proteins, search, link, assign whole components to splits, re-check every
//! cross-split pair the search reported exactly (re-linking until none counts), audit, write.

use std::collections::HashMap;
use std::path::Path;

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::assign::{self, Components};
use super::config::{LinkRule, SPLIT_NAMES, SplitConfig, SplitError, io};
use super::proteins::{Nodes, Proteins, load, nodes};
use super::report::{AuditRound, IdentityStatement, MaxPair, SplitReport};
use super::{Identity, PairAlignment, audit, chunks, groups, nearest, output, search, separate};
use crate::mmseqs::Mmseqs;

/// Linking rounds of one partition: each links the cross-split candidates found linked.
const MAX_ROUNDS: usize = 20;
/// Audit rounds: each that finds linked pairs across splits links them and splits again.
const MAX_AUDIT_ROUNDS: usize = 10;

/// Splits the dataset and writes `DATASET/splits/` and the manifest's `split` section.
///
/// # Errors
/// See [`SplitError`]; in every case nothing is written.
pub fn split(cfg: &SplitConfig, progress: &ProgressBar) -> Result<SplitReport, SplitError> {
    if !crate::dataset::splits::valid_name(&cfg.name) {
        return Err(SplitError::Name(cfg.name.clone()));
    }
    if !cfg.dataset.join("manifest.json").is_file() {
        return Err(SplitError::Read(crate::dataset::read::ReadError::NoTable {
            dataset: cfg.dataset.clone(),
            table: "proteins",
        }));
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
    let residues: u64 = unique.iter().map(|s| s.len() as u64).sum();
    let rule = cfg.rule(residues);
    let mm = Mmseqs::locate()?;
    let mmseqs_version = mm.version()?;
    let n = unique.len() as u32;
    let all_pairs = unique.len() <= cfg.all_pairs_below;

    // Every examined pair: its alignment when significant, None when its score alone says it
    // cannot link.
    let mut known: HashMap<(u32, u32), Option<PairAlignment>> = HashMap::new();
    // Links (kept as a list so that --remove-to-separate can cut the graph they form), and the
    // candidate pairs re-checked whenever they end up across splits.
    let mut links: Vec<(u32, u32)>;
    let mut pairs: Vec<(u32, u32)>;
    let mut short = Vec::new();
    let mut all_examined = 0u64;
    let candidate_seq_id = cfg.candidate_seq_id();
    if let (true, Some(files)) = (all_pairs, &cfg.hits) {
        // Not needed when every pair is aligned, but still refused when they do not belong here.
        chunks::read_chunks(files, &unique, cfg, &mmseqs_version)?;
        tracing::info!(
            sequences = unique.len(),
            "every pair is aligned (--all-pairs-below): the search hits are checked, not used"
        );
    }
    if all_pairs {
        // Few enough sequences to align every pair: the links are exact, nothing is sampled.
        progress.set_message(format!(
            "exact alignment of all {} pairs of {} distinct sequences",
            u64::from(n) * u64::from(n.saturating_sub(1)) / 2,
            n
        ));
        // Only significant pairs are kept (an alignment each); the others are counted.
        let examined: Vec<((u32, u32), Option<PairAlignment>)> = (0..n)
            .into_par_iter()
            .flat_map_iter(|a| {
                let rule = &rule;
                let unique = &unique;
                (a + 1..n).filter_map(move |b| {
                    rule.examine(unique[a as usize], unique[b as usize])
                        .map(|p| ((a, b), Some(p)))
                })
            })
            .collect();
        all_examined = u64::from(n) * u64::from(n.saturating_sub(1)) / 2;
        links = examined
            .iter()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| rule.links(p)))
            .map(|(k, _)| *k)
            .collect();
        pairs = examined.iter().map(|(k, _)| *k).collect();
        known.extend(examined);
    } else {
        progress.set_message("MMseqs2 all-vs-all search");
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
        // Pairs MMseqs2 itself finds significant and at the threshold (its identity has the
        // definition's denominator, its E-value the same search space) are linked at once;
        // every other reported pair is a candidate for the exact re-check.
        links = hits
            .iter()
            .filter(|h| {
                h.evalue <= cfg.max_evalue
                    && cfg.identity != Identity::Full
                    && cfg.identity.covered(h.qcov, h.tcov)
                    && h.identity >= cfg.min_seq_id
            })
            .map(|h| (h.q.min(h.t), h.q.max(h.t)))
            .collect();
        // Cross-split candidates: every distinct pair the search reported, and every pair with
        // a short sequence (the search's k-mer prefilter can miss them).
        pairs = hits.iter().map(|h| (h.q.min(h.t), h.q.max(h.t))).collect();
        short = short_sequences(cfg, &unique);
        for &s in &short {
            pairs.extend((0..n).filter(|&o| o != s).map(|o| (s.min(o), s.max(o))));
        }
    }
    groups::group_unions(cfg, &p, &node_of, &mut links)?;
    pairs.sort_unstable();
    pairs.dedup();
    let search_pairs = pairs.len();
    progress.set_message("MMseqs2 clustering");
    let reps = search::cluster(&mm, &unique, cfg, work)?;

    let mut removed = vec![false; unique.len()];
    let mut rounds = 0;
    let mut audit_rounds = Vec::new();
    let (partition, audit) = loop {
        let partition = partition(
            cfg,
            &rule,
            &unique,
            &weight,
            &links,
            &pairs,
            &mut removed,
            &mut known,
            &mut rounds,
            (&p, &first_protein),
            progress,
        )?;
        if all_pairs {
            break (partition, None);
        }
        let round = audit_rounds.len() + 1;
        progress.set_message(format!(
            "audit round {round}: {} cross-split pairs without prefilter",
            cfg.audit_pairs
        ));
        let audit = audit::audit(
            cfg,
            &rule,
            &unique,
            &kept(&weight, &removed),
            &partition.split_of,
            round,
        );
        let found: Vec<(u32, u32, PairAlignment)> = audit
            .significant
            .iter()
            .filter(|(_, _, pair)| rule.links(pair))
            .copied()
            .collect();
        audit_rounds.push(AuditRound {
            round,
            pairs: audit.pairs,
            significant: audit.significant.len(),
            linked: found.len(),
        });
        if found.is_empty() {
            break (partition, Some(audit));
        }
        if round >= MAX_AUDIT_ROUNDS {
            let (a, b, pair) = found[0];
            return Err(violation(
                cfg,
                &rule,
                &p,
                &first_protein,
                &partition.split_of,
                (a, b, pair),
                "still found by the audit after its last round",
            ));
        }
        tracing::info!(
            round,
            pairs = found.len(),
            "the audit found linked pairs across splits: linking them and splitting again"
        );
        for (a, b, pair) in found {
            links.push((a, b));
            pairs.push((a, b));
            known.insert((a, b), Some(pair));
        }
        pairs.sort_unstable();
        pairs.dedup();
    };
    let Partition {
        split_of,
        labels,
        weights,
        max_cross,
        checked,
    } = partition;
    let (audit_pairs, audit_exhaustive, audit_max) = match &audit {
        Some(a) => (
            a.pairs,
            a.exhaustive,
            a.significant
                .iter()
                .filter(|(_, _, pair)| cfg.identity.covered(pair.cov_a, pair.cov_b))
                .max_by(|x, y| cfg.identity.of(&x.2).total_cmp(&cfg.identity.of(&y.2)))
                .map(|&(a, b, pair)| max_pair(cfg, &rule, &p, &first_protein, a, b, pair)),
        ),
        None => {
            // Every pair was aligned: the audit is all cross-split pairs of distinct sequences.
            let mut sizes = [0usize; 3];
            for (i, &s) in split_of.iter().enumerate() {
                if !removed[i] {
                    sizes[s as usize] += 1;
                }
            }
            let cross = sizes[0] * sizes[1] + sizes[0] * sizes[2] + sizes[1] * sizes[2];
            (cross, true, None)
        }
    };

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
    let train_identity = nearest::max_train_identity(
        cfg,
        &known,
        audit.as_ref().map_or(&[][..], |a| &a.significant),
        &split_of,
        &removed,
    );
    let columns = output::SplitColumns {
        reps: &reps,
        first_protein: &first_protein,
        labels: &labels,
        split_of: &split_of,
        removed: &removed,
        train_identity: &train_identity,
    };
    let parts = output::write_splits(cfg, work, &p, &node_of, &columns)?;
    let significance = rule.significance.statement();
    let max_cross_split = max_cross.map(|(a, b)| {
        let pair = known[&(a, b)].expect("a cross-split maximum is significant");
        max_pair(cfg, &rule, &p, &first_protein, a, b, pair)
    });
    let report = SplitReport {
        tool_version: env!("CARGO_PKG_VERSION"),
        mmseqs_version,
        parameters: serde_json::json!({
            "min_seq_id": cfg.min_seq_id,
            "identity": cfg.identity,
            "max_evalue": cfg.max_evalue,
            "all_pairs_below": cfg.all_pairs_below,
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
            link_rule: format!(
                "a pair links (and never crosses splits) when its alignment is significant ({significance}) and its \
                 identity reaches {} ({})",
                cfg.min_seq_id,
                cfg.identity.statement()
            ),
            significance,
            max_evalue: cfg.max_evalue,
        },
        proteins: p.ids.len(),
        unique_sequences: unique.len(),
        counts,
        removed: removed_ids,
        requested_fractions: cfg.fractions,
        achieved_fractions: counts.map(|c| c as f64 / total),
        components: weights.len(),
        largest_component: weights.first().copied().unwrap_or(0),
        search_pairs,
        short_sequences: short.len(),
        candidate_seq_id,
        cross_split_pairs_checked: checked,
        rounds,
        all_pairs,
        pairs_examined: if all_pairs {
            all_examined as usize
        } else {
            known.len() + audit_rounds.iter().map(|r| r.pairs).sum::<usize>()
        },
        // When every pair was aligned the audit is all cross-split pairs: the same maximum.
        audit_max: if all_pairs {
            max_cross_split.clone()
        } else {
            audit_max
        },
        max_cross_split,
        audit_pairs,
        audit_exhaustive,
        audit_rounds,
        identity_to_train: nearest::statement(cfg, all_pairs, candidate_seq_id),
        parts,
    };
    output::commit(cfg, work, &report)?;
    Ok(report)
}

/// A partition of the sequence nodes into splits, and what its check saw.
struct Partition {
    split_of: Vec<u8>,
    labels: Vec<u32>,
    weights: Vec<u64>,
    /// The cross-split pair of highest identity among the significant ones.
    max_cross: Option<(u32, u32)>,
    /// Cross-split candidate pairs checked.
    checked: usize,
}

/// Components of the links, largest first, assigned to splits; then every candidate pair that
/// ended up across splits is examined exactly (score first) and the ones that link are linked,
/// until none does (at most `MAX_ROUNDS` rounds). A component too large for the train share is
/// cut (`--remove-to-separate`) or refused, naming it.
#[allow(clippy::too_many_arguments)]
fn partition(
    cfg: &SplitConfig,
    rule: &LinkRule,
    unique: &[&str],
    weight: &[u32],
    links: &[(u32, u32)],
    pairs: &[(u32, u32)],
    removed: &mut [bool],
    known: &mut HashMap<(u32, u32), Option<PairAlignment>>,
    rounds: &mut usize,
    (p, first_protein): (&Proteins, &[usize]),
    progress: &ProgressBar,
) -> Result<Partition, SplitError> {
    let mut links = links.to_vec();
    let mut local_rounds = 0;
    loop {
        *rounds += 1;
        local_rounds += 1;
        let mut uf = Components::new(unique.len());
        for &(a, b) in &links {
            if !removed[a as usize] && !removed[b as usize] {
                uf.union(a, b);
            }
        }
        let kept_weight = kept(weight, removed);
        let (labels, weights) = uf.labels(&kept_weight);
        let total: u64 = weights.iter().sum();
        let train_room = (cfg.fractions[0] * total as f64).max(1.0);
        if weights.first().is_some_and(|&w| w as f64 > train_room) {
            if !cfg.remove_to_separate {
                return Err(SplitError::Oversized {
                    size: weights[0],
                    total,
                    members: members(p, first_protein, &labels, weight, removed),
                });
            }
            let cut = separate::separate(&links, &labels, &kept_weight, removed, train_room);
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
            "exact re-check of {} cross-split pairs (round {rounds})",
            cross.len()
        ));
        let todo: Vec<(u32, u32)> = cross
            .iter()
            .copied()
            .filter(|k| !known.contains_key(k))
            .collect();
        let examined: Vec<((u32, u32), Option<PairAlignment>)> = todo
            .par_iter()
            .map(|&(a, b)| ((a, b), rule.examine(unique[a as usize], unique[b as usize])))
            .collect();
        known.extend(examined);
        let violators: Vec<(u32, u32)> = cross
            .iter()
            .copied()
            .filter(|k| known[k].as_ref().is_some_and(|p| rule.links(p)))
            .collect();
        if violators.is_empty() {
            let identity = |k: &(u32, u32)| known[k].as_ref().map_or(0.0, |p| cfg.identity.of(p));
            let max_cross = cross
                .iter()
                .filter(|k| {
                    known[*k]
                        .as_ref()
                        .is_some_and(|p| cfg.identity.covered(p.cov_a, p.cov_b))
                })
                .max_by(|x, y| identity(x).total_cmp(&identity(y)).then(y.cmp(x)))
                .copied();
            return Ok(Partition {
                split_of,
                labels,
                weights,
                max_cross,
                checked: cross.len(),
            });
        }
        if local_rounds >= MAX_ROUNDS {
            let (a, b) = violators[0];
            return Err(violation(
                cfg,
                rule,
                p,
                first_protein,
                &split_of,
                (a, b, known[&(a, b)].expect("a violator is significant")),
                "still linked after 20 rounds",
            ));
        }
        tracing::info!(
            pairs = violators.len(),
            round = *rounds,
            "linking pairs the exact alignment found linked across splits"
        );
        links.extend(violators);
    }
}

/// The largest component's size and up to five of its proteins, for the error that says no
/// split exists.
fn members(
    p: &Proteins,
    first_protein: &[usize],
    labels: &[u32],
    weight: &[u32],
    removed: &[bool],
) -> String {
    let inside: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i] == 0 && !removed[i] && weight[i] > 0)
        .collect();
    let mut names: Vec<&str> = inside
        .iter()
        .take(5)
        .map(|&i| p.ids[first_protein[i]].as_str())
        .collect();
    if inside.len() > 5 {
        names.push("…");
    }
    format!(
        "{} distinct sequences linked into one family, e.g. {}",
        inside.len(),
        names.join(", ")
    )
}

/// Sequences re-checked exactly against every other one: with `shorter`, those under
/// `search.exhaustive_below` residues.
fn short_sequences(cfg: &SplitConfig, unique: &[&str]) -> Vec<u32> {
    match cfg.identity {
        Identity::Shorter | Identity::Full => (0..unique.len() as u32)
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
    rule: &LinkRule,
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
        evalue: rule
            .significance
            .evalue(alignment.score, alignment.len_a, alignment.len_b),
        alignment,
    }
}

fn violation(
    cfg: &SplitConfig,
    rule: &LinkRule,
    p: &Proteins,
    first_protein: &[usize],
    split_of: &[u8],
    (a, b, alignment): (u32, u32, PairAlignment),
    how: &'static str,
) -> SplitError {
    SplitError::Violation {
        pair: Box::new(max_pair(cfg, rule, p, first_protein, a, b, alignment)),
        sa: SPLIT_NAMES[split_of[a as usize] as usize],
        sb: SPLIT_NAMES[split_of[b as usize] as usize],
        how,
    }
}
