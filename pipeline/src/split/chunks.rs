//! The all-vs-all search as array tasks: `split DATASET --search-chunk I/N --hits-out FILE` searches
//! the queries `i ≡ I (mod N)` against all of the dataset's distinct sequences and writes their hits;
//! `split DATASET --hits FILE…` reads the N files instead of searching, and splits exactly as one
//! process would (hits are kept in one total order either way).
//!
//! A hits file is text: a header line
//! `# fusionprot split hits v2 chunk=I/N sequences=S digest=D search=JSON`, then one
//! `query<TAB>target<TAB>identity<TAB>qcov<TAB>tcov<TAB>evalue` line per hit (floats in Rust's round-trip
//! notation). `D` is the sha256 of the distinct sequences in the split's order and `JSON` the search
//! settings that change results (threads do not): files of another dataset, other settings or
//! another MMseqs2 version are refused, and so are missing or repeated chunks.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::config::{SplitConfig, SplitError, io};
use super::search::{self, Hit};
use crate::mmseqs::Mmseqs;
use crate::prepare::shard::Shard;

const MAGIC: &str = "# fusionprot split hits v2";

/// What one chunk did.
#[derive(Debug)]
pub struct ChunkSummary {
    pub queries: usize,
    pub sequences: usize,
    pub hits: usize,
    pub path: PathBuf,
}

/// The settings a chunk's hits depend on, as its header records them.
fn settings(cfg: &SplitConfig, mmseqs_version: &str) -> String {
    let p = &cfg.search;
    serde_json::json!({
        "mmseqs": mmseqs_version,
        "sensitivity": p.sensitivity,
        "evalue": p.evalue,
        "max_seqs": p.max_seqs,
        "seq_id_mode": cfg.identity.seq_id_mode(),
        "candidate_seq_id": cfg.candidate_seq_id(),
    })
    .to_string()
}

fn digest(unique: &[&str]) -> String {
    let mut h = Sha256::new();
    for s in unique {
        h.update(s.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

fn header(shard: Shard, unique: &[&str], settings: &str) -> String {
    format!(
        "{MAGIC} chunk={}/{} sequences={} digest={} search={settings}",
        shard.index,
        shard.count,
        unique.len(),
        digest(unique)
    )
}

/// Runs chunk `shard` of the search and writes its hits to `out` (temporary name, then rename).
/// Reads the dataset only: array tasks run side by side, each with its own work folder beside `out`.
///
/// # Errors
/// Unreadable dataset, MMseqs2 failures, I/O on `out`.
pub fn search_chunk(
    cfg: &SplitConfig,
    shard: Shard,
    out: &Path,
) -> Result<ChunkSummary, SplitError> {
    let p = super::proteins::load(cfg)?;
    let unique = super::proteins::nodes(&p.seqs).unique;
    let mm = Mmseqs::locate()?;
    let version = mm.version()?;
    let name = out
        .file_name()
        .map_or_else(|| "hits".into(), |n| n.to_string_lossy().into_owned());
    let work = out.with_file_name(format!(".{name}.work-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    let hits = search::chunk_vs_all(
        &mm,
        &unique,
        (shard.index, shard.count),
        &cfg.search,
        cfg.identity.seq_id_mode(),
        cfg.candidate_seq_id(),
        &work,
    );
    let _ = std::fs::remove_dir_all(&work);
    let hits = hits?;
    let tmp = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        writeln!(f, "{}", header(shard, &unique, &settings(cfg, &version)))?;
        for h in &hits {
            writeln!(
                f,
                "{}\t{}\t{}\t{}\t{}\t{}",
                h.q, h.t, h.identity, h.qcov, h.tcov, h.evalue
            )?;
        }
        f.flush()?;
        f.get_ref().sync_all()?;
        std::fs::rename(&tmp, out)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(out)(e));
    }
    Ok(ChunkSummary {
        queries: (0..unique.len())
            .filter(|i| i % shard.count == shard.index)
            .count(),
        sequences: unique.len(),
        hits: hits.len(),
        path: out.to_owned(),
    })
}

/// The hits of all N chunk files, checked against this split's sequences and settings.
pub(super) fn read_chunks(
    files: &[PathBuf],
    unique: &[&str],
    cfg: &SplitConfig,
    mmseqs_version: &str,
) -> Result<Vec<Hit>, SplitError> {
    let bad = |path: &Path, message: String| SplitError::Hits {
        path: path.to_owned(),
        message,
    };
    let want_settings = settings(cfg, mmseqs_version);
    let mut count = None;
    let mut seen: Vec<Option<&Path>> = Vec::new();
    let mut hits = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let mut lines = text.lines();
        let head = lines.next().unwrap_or_default();
        let chunk = head
            .strip_prefix(MAGIC)
            .and_then(|r| r.split_whitespace().find_map(|w| w.strip_prefix("chunk=")))
            .and_then(|c| Shard::parse(c).ok())
            .ok_or_else(|| {
                bad(
                    path,
                    "not a hits file of `split --search-chunk` (line 1)".into(),
                )
            })?;
        let n = *count.get_or_insert(chunk.count);
        if n != chunk.count {
            return Err(bad(
                path,
                format!(
                    "chunk {}/{}, but other files are of {n} chunks",
                    chunk.index, chunk.count
                ),
            ));
        }
        if seen.is_empty() {
            seen = vec![None; n];
        }
        if head != header(chunk, unique, &want_settings) {
            return Err(bad(
                path,
                "searched other sequences or with other settings (its header differs from this split's: dataset, --identity, -s, -e, --max-seqs, --min-seq-id, --candidate-margin or MMseqs2's version)".into(),
            ));
        }
        if let Some(other) = seen[chunk.index] {
            return Err(bad(
                path,
                format!(
                    "chunk {}/{n} given twice (also {})",
                    chunk.index,
                    other.display()
                ),
            ));
        }
        seen[chunk.index] = Some(path);
        for (k, line) in lines.enumerate() {
            let f: Vec<&str> = line.split('\t').collect();
            let parsed = (|| {
                Some(Hit {
                    q: f.first()?.parse().ok()?,
                    t: f.get(1)?.parse().ok()?,
                    identity: f.get(2)?.parse().ok()?,
                    qcov: f.get(3)?.parse().ok()?,
                    tcov: f.get(4)?.parse().ok()?,
                    evalue: f.get(5)?.parse().ok()?,
                })
            })()
            .filter(|h| {
                (h.q as usize) < unique.len()
                    && (h.t as usize) < unique.len()
                    && h.q as usize % n == chunk.index
            })
            .ok_or_else(|| bad(path, format!("line {}: not a hit of this chunk", k + 2)))?;
            hits.push(parsed);
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{i}/{}", seen.len()))
        .collect();
    if !missing.is_empty() || files.is_empty() {
        return Err(SplitError::Hits {
            path: files.first().cloned().unwrap_or_default(),
            message: format!(
                "missing chunk{} {}",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", ")
            ),
        });
    }
    search::sort_hits(&mut hits);
    Ok(hits)
}
