//! `prepare`: inputs → parsed proteins (parallel, spilled to disk) → sorted by protein id → graph
//! edges → Parquet tables and manifest, written to a staging folder and renamed into place.
//!
//! Memory stays flat in the number of inputs: workers spill each protein to a per-worker file
//! and keep only a small index entry; the second phase reads proteins back in id order.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use indicatif::ProgressBar;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::graph;
use crate::input::{self, InputError};
use crate::manifest::{
    Counts, Duplicate, Failure, GraphParameters, InputEntry, Manifest, Parameters, TableEntry,
};
use crate::protein::{self, ProteinOptions};
use crate::schema::{DATASET_SCHEMA_VERSION, Table};
use crate::spill;
use crate::structure;
use crate::write::{Batches, TableWriter, WriteError, hex};

/// What to prepare and how.
#[derive(Debug, Clone)]
pub struct PrepareConfig {
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub proteins: ProteinOptions,
    /// Worker threads (≥ 1).
    pub jobs: usize,
    /// Stop at the first input that fails instead of recording it and going on.
    pub strict: bool,
}

/// Errors that stop `prepare`. Bad structure files do not: they are recorded in the manifest,
/// unless `strict` is set.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("another prepare is writing {} (lock held on {})", .out.display(), .lock.display())]
    Locked { out: PathBuf, lock: PathBuf },
    #[error("{path}: {error} (--strict stops at the first failure)")]
    Strict { path: String, error: String },
    #[error("spill file {} is corrupt at offset {offset}", .path.display())]
    Spill { path: PathBuf, offset: u64 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
    move |source| PrepareError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What a run did, for the closing summary.
#[derive(Debug, Clone)]
pub struct Summary {
    pub counts: Counts,
    pub input_bytes: u64,
    pub elapsed_secs: f64,
    pub out: PathBuf,
    /// The first few failures, for the summary; all are in the manifest.
    pub failures: Vec<Failure>,
}

/// Where a spilled protein lives.
#[derive(Debug)]
struct IndexEntry {
    protein_id: String,
    /// Input order of its source, then order within the source: the tie-break for duplicates.
    seq: usize,
    sub: usize,
    worker: usize,
    offset: u64,
    len: u32,
}

/// What one worker produced.
#[derive(Debug, Default)]
struct WorkerOut {
    index: Vec<IndexEntry>,
    inputs: Vec<(usize, InputEntry)>,
    failures: Vec<(usize, Failure)>,
    counts: Counts,
}

/// Runs `prepare`. `progress` is the caller's bar (hidden in tests).
///
/// # Errors
/// Missing inputs, I/O on the output, a held lock, or with `strict` the first bad input.
pub fn prepare(cfg: &PrepareConfig, progress: &ProgressBar) -> Result<Summary, PrepareError> {
    let start = Instant::now();
    let items = input::plan(&cfg.inputs)?;
    std::fs::create_dir_all(&cfg.out).map_err(io(&cfg.out))?;
    let lock_path = cfg.out.join(".lock");
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(PrepareError::Locked {
            out: cfg.out.clone(),
            lock: lock_path,
        });
    }
    remove_stale_staging(&cfg.out)?;
    let staging = cfg.out.join(format!(".staging-{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let result = prepare_into(cfg, &items, &staging, progress, start);
    // Leave nothing half-written behind: before the commit step the dataset's current tables are
    // untouched, so the staging folder can go. If the commit itself failed, the previous tables
    // may sit in `staging/old`; keep them for the user (a later run cleans up).
    if result.is_err() && !staging.join("old").exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn prepare_into(
    cfg: &PrepareConfig,
    items: &[input::Item],
    staging: &Path,
    progress: &ProgressBar,
    start: Instant,
) -> Result<Summary, PrepareError> {
    let jobs = cfg.jobs.max(1);
    progress.set_message("parsing");
    let outs = parse_all(cfg, items, staging, jobs, progress)?;
    tracing::debug!(secs = start.elapsed().as_secs_f64(), "parsed");

    let mut counts = Counts::default();
    let mut index = Vec::new();
    let mut inputs = Vec::new();
    let mut failures = Vec::new();
    for out in outs {
        index.extend(out.index);
        inputs.extend(out.inputs);
        failures.extend(out.failures);
        counts.non_protein_chains += out.counts.non_protein_chains;
        counts.waters += out.counts.waters;
        counts.ligands += out.counts.ligands;
        for (k, v) in out.counts.filtered {
            *counts.filtered.entry(k).or_default() += v;
        }
    }
    inputs.sort_by_key(|(seq, _)| *seq);
    failures.sort_by_key(|(seq, _)| *seq);
    if cfg.strict
        && let Some((_, f)) = failures.first()
    {
        return Err(PrepareError::Strict {
            path: f.path.clone(),
            error: f.error.clone(),
        });
    }
    counts.files = inputs.len() + failures.len();
    counts.files_failed = failures.len();
    let input_bytes = inputs.iter().map(|(_, i)| i.bytes).sum();
    let names: HashMap<usize, &str> = inputs.iter().map(|(s, i)| (*s, i.path.as_str())).collect();

    index.sort_by(|a, b| (&a.protein_id, a.seq, a.sub).cmp(&(&b.protein_id, b.seq, b.sub)));
    let mut duplicates = Vec::new();
    let mut kept: Vec<IndexEntry> = Vec::with_capacity(index.len());
    for e in index {
        match kept.last() {
            Some(k) if k.protein_id == e.protein_id => duplicates.push(Duplicate {
                protein_id: e.protein_id.clone(),
                skipped: names.get(&e.seq).copied().unwrap_or_default().to_owned(),
                kept: names.get(&k.seq).copied().unwrap_or_default().to_owned(),
            }),
            _ => kept.push(e),
        }
    }
    counts.duplicates_skipped = duplicates.len();
    counts.proteins = kept.len();

    progress.set_message("building graphs and writing");
    progress.set_position(0);
    progress.set_length(kept.len() as u64);
    let tables = write_tables(staging, &kept, jobs, progress, &mut counts)?;
    tracing::debug!(
        secs = start.elapsed().as_secs_f64(),
        "graphs built and tables written"
    );
    for w in 0..jobs {
        let path = spill_path(staging, w);
        let _ = std::fs::remove_file(path);
    }

    let manifest = Manifest {
        tool: "fusionprot",
        tool_version: env!("CARGO_PKG_VERSION"),
        dataset_schema_version: DATASET_SCHEMA_VERSION,
        parameters: Parameters {
            inputs: cfg
                .inputs
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            proteins: cfg.proteins.clone(),
            strict: cfg.strict,
        },
        graph: GraphParameters::spec(),
        counts: counts.clone(),
        tables,
        inputs: inputs.into_iter().map(|(_, i)| i).collect(),
        failures: failures.iter().map(|(_, f)| f.clone()).collect(),
        duplicates,
    };
    let manifest_path = staging.join("manifest.json");
    manifest.write(&manifest_path).map_err(io(&manifest_path))?;
    commit(&cfg.out, staging)?;
    Ok(Summary {
        counts,
        input_bytes,
        elapsed_secs: start.elapsed().as_secs_f64(),
        out: cfg.out.clone(),
        failures: failures.into_iter().take(10).map(|(_, f)| f).collect(),
    })
}

fn spill_path(staging: &Path, worker: usize) -> PathBuf {
    staging.join(format!("spill-{worker}.bin"))
}

/// Phase 1: one reader thread streams sources to `jobs` parsing workers over a bounded channel.
fn parse_all(
    cfg: &PrepareConfig,
    items: &[input::Item],
    staging: &Path,
    jobs: usize,
    progress: &ProgressBar,
) -> Result<Vec<WorkerOut>, PrepareError> {
    let abort = AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<(usize, input::Source)>(jobs * 2);
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut seq = 0;
            input::read_all(items, |src| {
                if abort.load(Ordering::Relaxed) {
                    return false;
                }
                progress.inc_length(1);
                let ok = tx.send((seq, src)).is_ok();
                seq += 1;
                ok
            });
            drop(tx);
        });
        let workers: Vec<_> = (0..jobs)
            .map(|w| {
                let (rx, abort) = (&rx, &abort);
                s.spawn(move || worker(w, cfg, staging, rx, abort, progress))
            })
            .collect();
        workers
            .into_iter()
            .map(|h| h.join().expect("a parsing worker panicked"))
            .collect()
    })
}

fn worker(
    w: usize,
    cfg: &PrepareConfig,
    staging: &Path,
    rx: &Mutex<mpsc::Receiver<(usize, input::Source)>>,
    abort: &AtomicBool,
    progress: &ProgressBar,
) -> Result<WorkerOut, PrepareError> {
    let path = spill_path(staging, w);
    let mut spill = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io(&path))?);
    let mut offset = 0u64;
    let mut out = WorkerOut::default();
    let mut buf = Vec::new();
    loop {
        let job = rx.lock().expect("channel lock").recv();
        let Ok((seq, src)) = job else { break };
        progress.inc(1);
        let fail = |out: &mut WorkerOut, error: String| {
            tracing::debug!(path = %src.name, %error, "skipping input");
            out.failures.push((
                seq,
                Failure {
                    path: src.name.clone(),
                    error,
                },
            ));
            if cfg.strict {
                abort.store(true, Ordering::Relaxed);
            }
        };
        let bytes = match &src.bytes {
            Ok(b) => b,
            Err(e) => {
                fail(&mut out, e.clone());
                continue;
            }
        };
        let sha = hex(&Sha256::digest(bytes));
        let (format, st) = match structure::read_bytes(bytes) {
            Ok(v) => v,
            Err(e) => {
                fail(&mut out, e.to_string());
                continue;
            }
        };
        let got = protein::proteins_from_structure(&st, format, &src.name, &sha, &cfg.proteins);
        out.counts.non_protein_chains += got.non_protein_chains;
        out.counts.waters += st.waters;
        out.counts.ligands += st.ligands;
        for (_, why) in &got.filtered {
            *out.counts.filtered.entry(*why).or_default() += 1;
        }
        out.inputs.push((
            seq,
            InputEntry {
                path: src.name.clone(),
                bytes: bytes.len() as u64,
                sha256: sha,
                proteins: got.proteins.len(),
            },
        ));
        for (sub, p) in got.proteins.iter().enumerate() {
            buf.clear();
            spill::encode(p, &mut buf);
            spill.write_all(&buf).map_err(io(&path))?;
            out.index.push(IndexEntry {
                protein_id: p.protein_id.clone(),
                seq,
                sub,
                worker: w,
                offset,
                len: buf.len() as u32,
            });
            offset += buf.len() as u64;
        }
    }
    spill.flush().map_err(io(&path))?;
    Ok(out)
}

/// Proteins per parallel graph-building chunk.
const CHUNK: usize = 256;

/// Phase 2: proteins in id order → edges (parallel within a chunk) → batches → parts.
fn write_tables(
    staging: &Path,
    kept: &[IndexEntry],
    jobs: usize,
    progress: &ProgressBar,
    counts: &mut Counts,
) -> Result<BTreeMap<&'static str, TableEntry>, PrepareError> {
    let spills: Vec<(PathBuf, File)> = (0..jobs)
        .map(|w| {
            let p = spill_path(staging, w);
            File::open(&p).map(|f| (p.clone(), f)).map_err(io(&p))
        })
        .collect::<Result<_, _>>()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .expect("a rayon pool with a positive thread count");
    let mut writers = Table::PREPARED
        .iter()
        .map(|t| TableWriter::new(staging, *t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut batches = Batches::new();
    let flush = |batches: &mut Batches, writers: &mut [TableWriter]| -> Result<(), PrepareError> {
        for (w, b) in writers.iter_mut().zip(batches.take()?) {
            w.write(&b)?;
        }
        Ok(())
    };
    for chunk in kept.chunks(CHUNK) {
        let built: Vec<_> = pool.install(|| {
            chunk
                .par_iter()
                .map(|e| {
                    let (path, file) = &spills[e.worker];
                    let mut buf = vec![0u8; e.len as usize];
                    file.read_exact_at(&mut buf, e.offset).map_err(io(path))?;
                    let p = spill::decode(&buf).ok_or_else(|| PrepareError::Spill {
                        path: path.clone(),
                        offset: e.offset,
                    })?;
                    let edges = graph::build(&p.residues.pos, &p.residues.chain_keys());
                    Ok((p, edges))
                })
                .collect::<Result<_, PrepareError>>()
        })?;
        for (p, edges) in &built {
            counts.residues += p.residues.len() as u64;
            counts.edges += edges.len() as u64;
            batches.push(p, edges);
            if batches.residue_rows >= 65_536 || batches.edge_rows >= 262_144 {
                flush(&mut batches, &mut writers)?;
            }
        }
        progress.inc(chunk.len() as u64);
    }
    flush(&mut batches, &mut writers)?;
    let mut tables = BTreeMap::new();
    for (t, w) in Table::PREPARED.iter().zip(writers) {
        let parts = w.finish(staging)?;
        tables.insert(
            t.name(),
            TableEntry {
                schema: t.schema_tag(),
                rows: parts.iter().map(|p| p.rows).sum(),
                parts,
            },
        );
    }
    Ok(tables)
}

/// Tables and manifest from earlier runs that the new ones replace. `splits` depends on the
/// proteins, so a new prepare retires it too.
const REPLACED: [&str; 5] = ["proteins", "residues", "edges", "splits", "manifest.json"];

/// Moves the staged tables into the dataset: old outputs are first moved aside (into the staging
/// folder), then the new ones renamed in, the manifest last; then the staging folder goes.
fn commit(out: &Path, staging: &Path) -> Result<(), PrepareError> {
    let old = staging.join("old");
    std::fs::create_dir_all(&old).map_err(io(&old))?;
    for name in REPLACED {
        let p = out.join(name);
        if p.exists() {
            if name == "splits" {
                tracing::info!(path = %p.display(), "removing splits made from the previous tables");
            }
            std::fs::rename(&p, old.join(name)).map_err(io(&p))?;
        }
    }
    for t in Table::PREPARED {
        let from = staging.join(t.name());
        std::fs::rename(&from, out.join(t.name())).map_err(io(&from))?;
    }
    let m = staging.join("manifest.json");
    std::fs::rename(&m, out.join("manifest.json")).map_err(io(&m))?;
    std::fs::remove_dir_all(staging).map_err(io(staging))
}

/// Staging folders left by an interrupted run (we hold the lock, so none is in use).
fn remove_stale_staging(out: &Path) -> Result<(), PrepareError> {
    for entry in std::fs::read_dir(out).map_err(io(out))? {
        let entry = entry.map_err(io(out))?;
        if entry.file_name().to_string_lossy().starts_with(".staging-") {
            tracing::info!(path = %entry.path().display(), "removing staging folder of an interrupted run");
            std::fs::remove_dir_all(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    Ok(())
}
