//! MMseqs2 runs for splitting: an all-vs-all candidate search (every reported pair with identity and
//! coverage, whatever the coverage) and a clustering (cluster representatives). Sequences are written
//! as FASTA with their index as the name; results come back as indices.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use super::{SplitConfig, SplitError};
use crate::mmseqs::Mmseqs;

/// One pair MMseqs2 reported (query ≠ target).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    pub q: u32,
    pub t: u32,
    /// MMseqs2's `fident` under the definition's `--seq-id-mode`: identical residues / length of
    /// the shorter sequence (1, `shorter`) or / alignment columns (0, `aligned`).
    pub identity: f32,
    pub qcov: f32,
    pub tcov: f32,
    /// MMseqs2's E-value of the pair (its own statistics over the same search space).
    pub evalue: f64,
}

/// Search settings, under MMseqs2's own names.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchParams {
    pub sensitivity: f32,
    pub evalue: f64,
    pub max_seqs: usize,
    pub threads: usize,
    /// With the `shorter` identity, the search reports pairs MMseqs2 scores at or above
    /// `min_seq_id - candidate_margin` (its own alignment can find fewer identities than the
    /// exact one, which then decides); 0–1.
    pub candidate_margin: f32,
    /// With the `shorter` identity, sequences shorter than this (residues) are candidates with
    /// every other sequence: the search's E-value misses their chance alignments, which reach
    /// the threshold by the shorter length.
    pub exhaustive_below: usize,
}

/// `--flag value` pairs as command-line arguments.
fn options(pairs: &[(&str, String)]) -> Vec<OsString> {
    pairs
        .iter()
        .flat_map(|(flag, value)| [OsString::from(flag), OsString::from(value)])
        .collect()
}

fn write_fasta(seqs: &[&str], path: &Path) -> Result<(), SplitError> {
    write_named_fasta(seqs.iter().enumerate().map(|(i, s)| (i as u32, *s)), path)
}

/// Sequences named by their index among all the split's sequences.
fn write_named_fasta<'a>(
    seqs: impl Iterator<Item = (u32, &'a str)>,
    path: &Path,
) -> Result<(), SplitError> {
    let io = |source| SplitError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for (i, s) in seqs {
        writeln!(f, ">{i}\n{s}").map_err(io)?;
    }
    f.flush().map_err(io)
}

fn read(path: &Path) -> Result<String, SplitError> {
    std::fs::read_to_string(path).map_err(|source| SplitError::Io {
        path: path.to_owned(),
        source,
    })
}

fn index(field: Option<&str>, path: &Path, line: usize) -> Result<u32, SplitError> {
    field
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| SplitError::Output {
            path: path.to_owned(),
            line,
        })
}

/// All-vs-all search of `seqs` against themselves, with no coverage rule (`-c 0`): every pair
/// MMseqs2 aligns under the E-value cut-off with identity (in `seq_id_mode`) at or above
/// `min_seq_id`; self hits are dropped. Hits come sorted by (query, target), so that the same
/// pairs found by chunks of queries ([`chunk_vs_all`]) give the same list.
pub(crate) fn all_vs_all(
    mm: &Mmseqs,
    seqs: &[&str],
    p: &SearchParams,
    seq_id_mode: u8,
    min_seq_id: f32,
    work: &Path,
) -> Result<Vec<Hit>, SplitError> {
    let fasta = work.join("seqs.fasta");
    write_fasta(seqs, &fasta)?;
    search(mm, &fasta, &fasta, p, seq_id_mode, min_seq_id, work)
}

/// The queries `i ≡ index (mod count)` against all of `seqs`: one array task's share of
/// [`all_vs_all`]. MMseqs2 searches each query on its own against the same target database, so the
/// chunks' hits together are the whole search's.
pub(crate) fn chunk_vs_all(
    mm: &Mmseqs,
    seqs: &[&str],
    (index, count): (usize, usize),
    p: &SearchParams,
    seq_id_mode: u8,
    min_seq_id: f32,
    work: &Path,
) -> Result<Vec<Hit>, SplitError> {
    let targets = work.join("seqs.fasta");
    write_fasta(seqs, &targets)?;
    let queries = work.join("queries.fasta");
    write_named_fasta(
        seqs.iter()
            .enumerate()
            .filter(|(i, _)| i % count == index)
            .map(|(i, s)| (i as u32, *s)),
        &queries,
    )?;
    search(mm, &queries, &targets, p, seq_id_mode, min_seq_id, work)
}

fn search(
    mm: &Mmseqs,
    queries: &Path,
    targets: &Path,
    p: &SearchParams,
    seq_id_mode: u8,
    min_seq_id: f32,
    work: &Path,
) -> Result<Vec<Hit>, SplitError> {
    let out = work.join("hits.tsv");
    let tmp = work.join("search-tmp");
    let mut args: Vec<OsString> = vec![
        "easy-search".into(),
        queries.into(),
        targets.into(),
        out.clone().into(),
        tmp.into(),
    ];
    args.extend(options(&[
        ("-s", p.sensitivity.to_string()),
        ("-e", p.evalue.to_string()),
        ("--max-seqs", p.max_seqs.to_string()),
        ("--alignment-mode", "3".into()),
        ("--seq-id-mode", seq_id_mode.to_string()),
        ("--min-seq-id", min_seq_id.to_string()),
        ("-c", "0".into()),
        (
            "--format-output",
            "query,target,fident,qstart,qend,qlen,tstart,tend,tlen,evalue".into(),
        ),
        ("--threads", p.threads.to_string()),
        ("-v", "1".into()),
    ]));
    mm.run(&args)?;
    let text = read(&out)?;
    let mut hits = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| -> Result<f32, SplitError> {
            f.get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| SplitError::Output {
                    path: out.clone(),
                    line: n + 1,
                })
        };
        let (q, t) = (
            index(f.first().copied(), &out, n + 1)?,
            index(f.get(1).copied(), &out, n + 1)?,
        );
        if q == t {
            continue;
        }
        hits.push(Hit {
            q,
            t,
            identity: num(2)?,
            qcov: (num(4)? - num(3)? + 1.0) / num(5)?,
            tcov: (num(7)? - num(6)? + 1.0) / num(8)?,
            evalue: f
                .get(9)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| SplitError::Output {
                    path: out.clone(),
                    line: n + 1,
                })?,
        });
    }
    sort_hits(&mut hits);
    Ok(hits)
}

/// Hits in one total order: (query, target), then the numbers' bits.
pub(crate) fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by_key(|h| {
        (
            h.q,
            h.t,
            h.identity.to_bits(),
            h.qcov.to_bits(),
            h.tcov.to_bits(),
            h.evalue.to_bits(),
        )
    });
}

/// `mmseqs easy-cluster` at the split's threshold under its identity definition (`--seq-id-mode`,
/// and the coverage rule, none for `shorter`): the representative index of every sequence.
pub(crate) fn cluster(
    mm: &Mmseqs,
    seqs: &[&str],
    cfg: &SplitConfig,
    work: &Path,
) -> Result<Vec<u32>, SplitError> {
    let n = seqs.len();
    let (coverage, cov_mode) = cfg.identity.mmseqs_coverage();
    let fasta = work.join("seqs.fasta");
    if !fasta.exists() {
        // Written by the search, unless its hits came from `--search-chunk` files.
        write_fasta(seqs, &fasta)?;
    }
    let prefix = work.join("clu");
    let tmp = work.join("cluster-tmp");
    let mut args: Vec<OsString> = vec![
        "easy-cluster".into(),
        fasta.into(),
        prefix.into(),
        tmp.into(),
    ];
    args.extend(options(&[
        ("--min-seq-id", cfg.min_seq_id.to_string()),
        ("--seq-id-mode", cfg.identity.seq_id_mode().to_string()),
        ("-c", coverage.to_string()),
        ("--cov-mode", cov_mode.to_string()),
        ("--threads", cfg.search.threads.to_string()),
        ("-v", "1".into()),
    ]));
    mm.run(&args)?;
    let path = work.join("clu_cluster.tsv");
    let text = read(&path)?;
    let mut rep: Vec<u32> = (0..n as u32).collect();
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split('\t');
        let r = index(f.next(), &path, i + 1)?;
        let m = index(f.next(), &path, i + 1)?;
        if let Some(slot) = rep.get_mut(m as usize) {
            *slot = r;
        }
    }
    Ok(rep)
}
