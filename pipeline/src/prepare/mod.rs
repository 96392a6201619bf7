//! `prepare`: inputs → parsed proteins (parallel, spilled to disk) → sorted by protein id → graph
//! edges → Parquet tables and manifest, written to a staging folder and renamed into place.
//!
//! Memory stays flat in the number of inputs: workers spill each protein to a per-worker file
//! and keep only a small index entry; the second phase reads proteins back in id order. A run
//! that prepared nothing replaces nothing, and the swap into place is journaled ([`crate::dataset::swap`]).

pub mod input;
pub mod merge;
pub mod shard;

mod ids;
mod spill;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use indicatif::ProgressBar;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::afdb;
use crate::dataset::manifest::{
    Counts, Duplicate, Failure, GraphParameters, InputEntry, Manifest, Parameters, TableEntry,
};
use crate::dataset::part::hex;
use crate::dataset::schema::DATASET_SCHEMA_VERSION;
use crate::dataset::swap::{self, DatasetLock, Recovery, SwapError};
use crate::dataset::write::{PreparedWriter, WriteError};
use crate::failpoint;
use crate::graph::{self, Edges};
use crate::protein::{self, ProteinOptions, ProteinRecord};
use crate::structure;
use ids::{Rename, StemNamed};
use input::InputError;

/// What a benchmark import adds to a `prepare` run: tables written into the staging folder after
/// the prepared ones and manifest sections, swapped in with them in one journaled swap, so a
/// dataset never has new proteins with old labels.
pub trait Extension {
    /// `proteins`: the kept proteins' ids and `source` names, in id order.
    ///
    /// # Errors
    /// Whatever stops the import; the dataset is then left as it was.
    fn stage(
        &mut self,
        staging: &Path,
        proteins: &[(String, String)],
    ) -> Result<Staged, PrepareError>;
}

/// What an [`Extension`] staged.
#[derive(Debug, Default)]
pub struct Staged {
    /// Tables listed in the manifest's `tables` (with their parts' hashes).
    pub tables: BTreeMap<&'static str, TableEntry>,
    /// More folders (or files) of the staging folder to move in, not listed in `tables`.
    pub other: Vec<&'static str>,
    /// Manifest sections.
    pub sections: serde_json::Map<String, serde_json::Value>,
    /// Replaces `parameters.inputs` (an import names its archive, not the files it unpacked).
    pub inputs: Option<Vec<String>>,
}

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
    /// Keep only proteins with these ids (the others are counted as filtered `not_listed`).
    pub only_ids: Option<Arc<std::collections::BTreeSet<String>>>,
    /// Prepare only this shard of the input units (`--shard I/N`); `fusionprot merge` joins them.
    pub shard: Option<shard::Shard>,
}

/// What a run refuses, beyond [`PrepareConfig`]; `Default` is what `prepare` uses.
#[derive(Debug, Clone)]
pub struct Safeguards {
    /// Replace the dataset even when the run prepared no protein (never when every input failed).
    pub allow_empty: bool,
    /// Cap on one structure's bytes: a file, an archive member (the header's claim is checked
    /// before anything is allocated) and a decompressed gzip stream. Over it, that file fails.
    pub max_file_bytes: u64,
}

impl Default for Safeguards {
    fn default() -> Self {
        Self {
            allow_empty: false,
            max_file_bytes: input::DEFAULT_MAX_FILE_BYTES,
        }
    }
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
    #[error(transparent)]
    Swap(#[from] SwapError),
    /// No protein came out: the dataset keeps what it had. `failures` are the first few.
    #[error("{message}")]
    NothingPrepared {
        message: String,
        failed: usize,
        failures: Vec<Failure>,
    },
    #[error("{path}: {error} (--strict stops at the first failure)")]
    Strict { path: String, error: String },
    #[error("spill file {} is corrupt at offset {offset}", .path.display())]
    Spill { path: PathBuf, offset: u64 },
    /// An [`Extension`] failed.
    #[error(transparent)]
    Extension(Box<dyn std::error::Error + Send + Sync>),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
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
    /// Proteins per AlphaFold DB version, when any came from AFDB files.
    pub alphafold_db: Option<crate::afdb::AfdbSection>,
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
    /// Set when the entry id was derived from the path ([`crate::prepare::ids`]); `protein_id` is the new one.
    rename: Option<Rename>,
    /// The id before any rename.
    original_id: String,
}

/// What one worker produced.
#[derive(Debug, Default)]
struct WorkerOut {
    index: Vec<IndexEntry>,
    inputs: Vec<(usize, InputEntry)>,
    failures: Vec<(usize, Failure)>,
    counts: Counts,
    named: Vec<StemNamed>,
}

/// Runs `prepare` with the default [`Safeguards`]. `progress` is the caller's bar (hidden in tests).
///
/// # Errors
/// As [`prepare_with`].
pub fn prepare(cfg: &PrepareConfig, progress: &ProgressBar) -> Result<Summary, PrepareError> {
    prepare_with(cfg, &Safeguards::default(), progress)
}

/// Runs `prepare`: recovers an interrupted earlier run first, then stages the new tables and
/// swaps them in.
///
/// # Errors
/// Missing inputs, I/O on the output or in a worker, a held lock, an unrecoverable interrupted
/// swap, with `strict` the first bad input, and [`PrepareError::NothingPrepared`] when no protein
/// came out (the dataset then keeps its tables).
pub fn prepare_with(
    cfg: &PrepareConfig,
    guards: &Safeguards,
    progress: &ProgressBar,
) -> Result<Summary, PrepareError> {
    prepare_extended(cfg, guards, None, progress)
}

/// [`prepare_with`], with an [`Extension`] staging more tables before the swap.
///
/// # Errors
/// As [`prepare_with`], and the extension's.
pub fn prepare_extended(
    cfg: &PrepareConfig,
    guards: &Safeguards,
    extension: Option<&mut dyn Extension>,
    progress: &ProgressBar,
) -> Result<Summary, PrepareError> {
    let start = Instant::now();
    let all = input::plan(&cfg.inputs)?;
    let plan = shard::Plan::new(&all, cfg.shard);
    let items: Vec<input::Item> = plan.units.iter().map(|&u| all[u].clone()).collect();
    std::fs::create_dir_all(&cfg.out).map_err(io(&cfg.out))?;
    let lock = swap::lock(&cfg.out)?;
    log_recovery(&cfg.out, &swap::recover(&cfg.out, &lock)?);
    swap::remove_stale(&cfg.out, &lock)?;
    let staging_name = format!(".staging-{}", std::process::id());
    let staging = cfg.out.join(&staging_name);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let result = prepare_into(
        cfg,
        guards,
        (&items, &plan),
        (&staging_name, extension),
        &lock,
        progress,
        start,
    );
    // Until the swap journal exists the dataset is untouched and the staging folder can go; after
    // that, recovery owns it.
    if result.is_err() && !cfg.out.join(swap::JOURNAL).exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Says what recovering an interrupted run did.
pub fn log_recovery(dataset: &Path, recovery: &Recovery) {
    match recovery {
        Recovery::Clean => {}
        Recovery::RolledBack { restored } => tracing::warn!(
            dataset = %dataset.display(),
            restored = ?restored,
            "an earlier prepare was interrupted while swapping tables: the previous tables are back in place"
        ),
        Recovery::Completed => tracing::warn!(
            dataset = %dataset.display(),
            "an earlier prepare was interrupted after its new tables were in place: finished its clean-up"
        ),
    }
}

fn prepare_into(
    cfg: &PrepareConfig,
    guards: &Safeguards,
    (items, plan): (&[input::Item], &shard::Plan),
    (staging_name, extension): (&str, Option<&mut dyn Extension>),
    lock: &DatasetLock,
    progress: &ProgressBar,
    start: Instant,
) -> Result<Summary, PrepareError> {
    let staging = &cfg.out.join(staging_name);
    let jobs = cfg.jobs.max(1);
    progress.set_message("parsing");
    let outs = parse_all(cfg, guards, (items, &plan.units), staging, jobs, progress)?;
    tracing::debug!(secs = start.elapsed().as_secs_f64(), "parsed");

    let mut counts = Counts::default();
    let mut index = Vec::new();
    let mut inputs = Vec::new();
    let mut failures = Vec::new();
    let mut named = Vec::new();
    for out in outs {
        index.extend(out.index);
        inputs.extend(out.inputs);
        failures.extend(out.failures);
        named.extend(out.named);
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

    let shard_named = plan.shard.map(|_| named.clone());
    let renames = ids::disambiguate(named);
    for e in &mut index {
        if let Some(r) = renames.get(&e.seq) {
            e.protein_id = r.protein_id(&e.protein_id);
            e.rename = Some(r.clone());
        }
    }
    // Copies of one protein: the AFDB rule (newest version, mmCIF) first, then input order.
    let rank = |seq: usize| afdb::preference(names.get(&seq).copied().unwrap_or_default());
    index.sort_by(|a, b| {
        (&a.protein_id, rank(a.seq), a.seq, a.sub).cmp(&(&b.protein_id, rank(b.seq), b.seq, b.sub))
    });
    let mut duplicates = Vec::new();
    let mut kept: Vec<IndexEntry> = Vec::with_capacity(index.len());
    let mut shard_entries = Vec::new();
    for e in index {
        let duplicate = kept.last().is_some_and(|k| k.protein_id == e.protein_id);
        if plan.shard.is_some() {
            shard_entries.push(shard::Entry {
                original_id: e.original_id.clone(),
                local_id: e.protein_id.clone(),
                seq: e.seq,
                sub: e.sub,
                kept: !duplicate,
                original_entry: e.rename.as_ref().map(|r| r.from.clone()),
            });
        }
        match kept.last() {
            Some(k) if duplicate => duplicates.push(Duplicate {
                protein_id: e.protein_id.clone(),
                skipped: names.get(&e.seq).copied().unwrap_or_default().to_owned(),
                kept: names.get(&k.seq).copied().unwrap_or_default().to_owned(),
            }),
            _ => kept.push(e),
        }
    }
    counts.duplicates_skipped = duplicates.len();
    counts.proteins = kept.len();
    let alphafold_db = afdb::AfdbSection::of(
        kept.iter()
            .map(|k| names.get(&k.seq).copied().unwrap_or_default()),
    );
    let all_failed = counts.files > 0 && counts.files_failed == counts.files;
    // A shard may hold nothing (few inputs, many shards, or only failing ones): it is still
    // written, so that `merge` sees every shard.
    if kept.is_empty() && plan.shard.is_none() && (all_failed || !guards.allow_empty) {
        // Only `prepare` has --allow-empty; an import (an extension) does not offer it.
        let offers_allow_empty = extension.is_none();
        return Err(nothing_prepared(
            &cfg.out,
            &counts,
            all_failed,
            &failures,
            offers_allow_empty,
        ));
    }

    progress.set_message("building graphs and writing");
    progress.set_position(0);
    progress.set_length(kept.len() as u64);
    let mut tables = write_tables(staging, &kept, jobs, progress, &mut counts)?;
    tracing::debug!(
        secs = start.elapsed().as_secs_f64(),
        "graphs built and tables written"
    );
    for w in 0..jobs {
        let path = spill_path(staging, w);
        let _ = std::fs::remove_file(path);
    }

    let mut staged = Staged::default();
    if let Some(ext) = extension {
        let proteins: Vec<(String, String)> = kept
            .iter()
            .map(|e| {
                let source = names.get(&e.seq).copied().unwrap_or_default();
                (e.protein_id.clone(), source.to_owned())
            })
            .collect();
        staged = ext.stage(staging, &proteins)?;
    }
    if let Some(shard) = plan.shard {
        staged.sections.insert(
            "shard".into(),
            shard::section(
                shard,
                plan,
                &shard_entries,
                shard_named.as_deref().unwrap_or_default(),
                &inputs.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
                &failures.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            ),
        );
    }
    let mut new: Vec<&str> = NEW.to_vec();
    for name in staged.tables.keys().chain(&staged.other) {
        new.insert(new.len() - 1, name);
    }
    tables.append(&mut staged.tables);
    let manifest = Manifest {
        tool: "fusionprot",
        tool_version: env!("CARGO_PKG_VERSION"),
        dataset_schema_version: DATASET_SCHEMA_VERSION,
        parameters: Parameters {
            inputs: staged.inputs.take().unwrap_or_else(|| {
                cfg.inputs
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect()
            }),
            proteins: cfg.proteins.clone(),
            strict: cfg.strict,
            max_file_bytes: guards.max_file_bytes,
            allow_empty: guards.allow_empty,
        },
        graph: GraphParameters::spec(),
        counts: counts.clone(),
        tables,
        inputs: inputs.into_iter().map(|(_, i)| i).collect(),
        failures: failures.iter().map(|(_, f)| f.clone()).collect(),
        duplicates,
        alphafold_db: alphafold_db.clone(),
        extra: staged.sections,
    };
    let manifest_path = staging.join("manifest.json");
    manifest.write(&manifest_path).map_err(io(&manifest_path))?;
    commit(&cfg.out, staging_name, lock, &new)?;
    Ok(Summary {
        counts,
        input_bytes,
        elapsed_secs: start.elapsed().as_secs_f64(),
        out: cfg.out.clone(),
        failures: failures.into_iter().take(10).map(|(_, f)| f).collect(),
        alphafold_db,
    })
}

/// The error for a run that prepared no protein: it says whether the dataset kept its tables.
fn nothing_prepared(
    out: &Path,
    counts: &Counts,
    all_failed: bool,
    failures: &[(usize, Failure)],
    offers_allow_empty: bool,
) -> PrepareError {
    let had_tables = out.join("manifest.json").exists();
    let what = if all_failed {
        format!("all {} input files failed", counts.files)
    } else {
        format!(
            "no proteins from {} input files ({} failed, {} filtered, {} duplicates)",
            counts.files,
            counts.files_failed,
            counts.filtered.values().sum::<usize>(),
            counts.duplicates_skipped
        )
    };
    let kept = match (had_tables, all_failed || !offers_allow_empty) {
        (true, true) => "the dataset keeps its previous tables",
        (true, false) => {
            "the dataset keeps its previous tables (--allow-empty replaces them with empty ones)"
        }
        (false, true) => "nothing was written",
        (false, false) => "nothing was written (--allow-empty writes an empty dataset)",
    };
    PrepareError::NothingPrepared {
        message: format!("{what}; {kept}"),
        failed: counts.files_failed,
        failures: failures.iter().take(10).map(|(_, f)| f.clone()).collect(),
    }
}

fn spill_path(staging: &Path, worker: usize) -> PathBuf {
    staging.join(format!("spill-{worker}.bin"))
}

/// Phase 1: one thread streams sources, in order, to `jobs` parsing workers over a bounded
/// channel; it reads archive members itself (an archive is one stream), while each plain file is
/// read by the worker that takes it, so reading is spread over the workers too.
///
/// A worker that fails (an I/O error on its spill file) stops the run: it raises `abort`, which
/// the reader and the other workers check between sources, and the receiving end of the channel
/// belongs to the workers alone, so once the last one has returned a reader blocked on a full
/// channel is woken with an error instead of waiting forever.
fn parse_all(
    cfg: &PrepareConfig,
    guards: &Safeguards,
    (items, units): (&[input::Item], &[usize]),
    staging: &Path,
    jobs: usize,
    progress: &ProgressBar,
) -> Result<Vec<WorkerOut>, PrepareError> {
    let abort_flag = AtomicBool::new(false);
    let abort = &abort_flag;
    let (tx, rx) = mpsc::sync_channel::<(usize, input::Pending)>(jobs * 2);
    let rx = Arc::new(Mutex::new(rx));
    std::thread::scope(|s| {
        s.spawn(move || {
            // A source's order key: its unit's index in the whole plan, then its place in the
            // unit, so a shard orders its sources as the whole run would.
            let (mut unit, mut member) = (usize::MAX, 0usize);
            input::stream_all(items, guards.max_file_bytes, |src| {
                if abort.load(Ordering::Relaxed) {
                    return false;
                }
                if src.item() != unit {
                    (unit, member) = (src.item(), 0);
                }
                let seq = shard::order_key(units[src.item()], member);
                member += 1;
                progress.inc_length(1);
                tx.send((seq, src)).is_ok()
            });
            drop(tx);
        });
        let workers: Vec<_> = (0..jobs)
            .map(|w| {
                let rx = Arc::clone(&rx);
                s.spawn(move || {
                    let out = worker(w, cfg, guards, staging, &rx, abort, progress);
                    if out.is_err() {
                        abort.store(true, Ordering::Relaxed);
                    }
                    out
                })
            })
            .collect();
        drop(rx);
        workers
            .into_iter()
            .map(|h| h.join().expect("a parsing worker panicked"))
            .collect()
    })
}

/// The sources the reader sends, shared by the workers: (order key, source).
type Jobs = Mutex<mpsc::Receiver<(usize, input::Pending)>>;

fn worker(
    w: usize,
    cfg: &PrepareConfig,
    guards: &Safeguards,
    staging: &Path,
    rx: &Jobs,
    abort: &AtomicBool,
    progress: &ProgressBar,
) -> Result<WorkerOut, PrepareError> {
    let path = failpoint::spill_file().unwrap_or_else(|| spill_path(staging, w));
    let mut spill = SpillWriter {
        file: BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io(&path))?),
        path,
        offset: 0,
        buf: Vec::new(),
    };
    let mut out = WorkerOut::default();
    // Plain files are read here, in parallel, into this buffer: its pages are reused from file
    // to file instead of faulted in afresh.
    let mut buffer = Vec::new();
    loop {
        if abort.load(Ordering::Relaxed) {
            break;
        }
        let job = rx.lock().expect("channel lock").recv();
        let Ok((seq, pending)) = job else { break };
        let src = pending.read(guards.max_file_bytes, std::mem::take(&mut buffer));
        progress.inc(1);
        let taken = take_source(w, cfg, guards, (seq, &src), &mut spill, &mut out);
        if matches!(taken, Ok(true)) && cfg.strict {
            abort.store(true, Ordering::Relaxed);
        }
        if let Ok(bytes) = src.bytes
            && bytes.capacity() <= input::MAX_KEPT_BUFFER
        {
            buffer = bytes;
        }
        taken?;
    }
    spill.file.flush().map_err(io(&spill.path))?;
    Ok(out)
}

/// One worker's spill file: proteins appended, each at the offset the index records.
struct SpillWriter {
    file: BufWriter<File>,
    path: PathBuf,
    offset: u64,
    buf: Vec<u8>,
}

impl SpillWriter {
    /// Appends `p`; returns its offset and length.
    fn write(&mut self, p: &ProteinRecord) -> Result<(u64, u32), PrepareError> {
        self.buf.clear();
        spill::encode(p, &mut self.buf);
        self.file.write_all(&self.buf).map_err(io(&self.path))?;
        let at = self.offset;
        self.offset += self.buf.len() as u64;
        Ok((at, self.buf.len() as u32))
    }
}

/// Parses one source into `out` and its proteins into the spill file. Returns whether the source
/// failed (recorded in `out.failures`); `Err` only for a spill write that failed.
fn take_source(
    w: usize,
    cfg: &PrepareConfig,
    guards: &Safeguards,
    (seq, src): (usize, &input::Source),
    spill: &mut SpillWriter,
    out: &mut WorkerOut,
) -> Result<bool, PrepareError> {
    let mut fail = |error: String| {
        tracing::debug!(path = %src.name, %error, "skipping input");
        out.failures.push((
            seq,
            Failure {
                path: src.name.clone(),
                error,
            },
        ));
        Ok(true)
    };
    let bytes = match &src.bytes {
        Ok(b) => b,
        Err(e) => return fail(e.clone()),
    };
    let sha = hex(&Sha256::digest(bytes));
    let (format, st) = match structure::read_bytes_capped(bytes, guards.max_file_bytes) {
        Ok(v) => v,
        Err(e) => return fail(e.to_string()),
    };
    let mut got = protein::proteins_from_structure(&st, format, &src.name, &sha, &cfg.proteins);
    if let Some(ids) = &cfg.only_ids {
        let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut got.proteins)
            .into_iter()
            .partition(|p| ids.contains(&p.protein_id));
        got.proteins = keep;
        got.filtered.extend(
            drop.into_iter()
                .map(|p| (p.protein_id, protein::Filtered::NotListed)),
        );
    }
    out.counts.non_protein_chains += got.non_protein_chains;
    out.counts.waters += st.waters;
    out.counts.ligands += st.ligands;
    for (_, why) in &got.filtered {
        *out.counts.filtered.entry(*why).or_default() += 1;
    }
    if got.entry_from_file_name
        && let Some(p) = got.proteins.first()
    {
        out.named.push(StemNamed {
            seq,
            entry: p.entry_id.clone(),
            path: src.path.clone(),
            sha256: sha.clone(),
        });
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
        let (offset, len) = spill.write(p)?;
        out.index.push(IndexEntry {
            protein_id: p.protein_id.clone(),
            seq,
            sub,
            worker: w,
            offset,
            len,
            rename: None,
            original_id: p.protein_id.clone(),
        });
    }
    Ok(false)
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
    let mut writer = PreparedWriter::new(staging, jobs)?;
    let build = |chunk: &[IndexEntry]| -> Result<Vec<(ProteinRecord, Edges)>, PrepareError> {
        chunk
            .par_iter()
            .map(|e| {
                let (path, file) = &spills[e.worker];
                let mut buf = vec![0u8; e.len as usize];
                file.read_exact_at(&mut buf, e.offset).map_err(io(path))?;
                let mut p = spill::decode(&buf).ok_or_else(|| PrepareError::Spill {
                    path: path.clone(),
                    offset: e.offset,
                })?;
                if let Some(r) = &e.rename {
                    p.entry_id.clone_from(&r.to);
                    p.protein_id.clone_from(&e.protein_id);
                }
                let edges = graph::build(&p.residues.pos, &p.residues.chain_keys());
                Ok((p, edges))
            })
            .collect()
    };
    // Chunk k + 1's graphs are built while chunk k's rows are pushed to the writers.
    let mut push = |built: Vec<(ProteinRecord, Edges)>| -> Result<(), PrepareError> {
        for (p, edges) in &built {
            counts.residues += p.residues.len() as u64;
            counts.edges += edges.len() as u64;
            writer.push(p, edges)?;
        }
        progress.inc(built.len() as u64);
        Ok(())
    };
    let mut pending = None;
    for chunk in kept.chunks(CHUNK) {
        let (built, pushed) = pool
            .install(|| rayon::join(|| build(chunk), || pending.take().map_or(Ok(()), &mut push)));
        pushed?;
        pending = Some(built?);
    }
    if let Some(built) = pending {
        push(built)?;
    }
    Ok(writer.finish()?)
}

/// Tables and manifest from earlier runs that the new ones replace. `splits`, `labels` and
/// `pairs` depend on the proteins, and `go_terms` comes with the labels, so a new prepare retires
/// them too.
const REPLACED: [&str; 8] = [
    "proteins",
    "residues",
    "edges",
    "splits",
    "labels",
    "pairs",
    "go_terms",
    "manifest.json",
];

/// What a run moves in, the manifest last: a dataset with the new manifest has all new tables.
/// An [`Extension`]'s tables go in before the manifest.
pub(crate) const NEW: [&str; 4] = ["proteins", "residues", "edges", "manifest.json"];

/// Swaps the staged tables into the dataset through the journaled swap. If the swap fails
/// part-way, it is undone (or finished, when the new set was already whole) at once; if even that
/// fails, the journal stays for the next run or `fusionprot doctor DATASET`.
pub(crate) fn commit(
    out: &Path,
    staging_name: &str,
    lock: &DatasetLock,
    new: &[&str],
) -> Result<(), PrepareError> {
    if out.join("splits").exists() {
        tracing::info!(path = %out.join("splits").display(), "retiring splits made from the previous tables");
    }
    let previous_name = format!(".previous-{}", std::process::id());
    let Err(err) = swap::swap_in(out, staging_name, &previous_name, &REPLACED, new) else {
        return Ok(());
    };
    match swap::recover(out, lock) {
        Ok(Recovery::Completed) => {
            tracing::warn!(error = %err, "the new tables are in place, but cleaning up after the swap failed once");
            Ok(())
        }
        Ok(r) => {
            log_recovery(out, &r);
            Err(err.into())
        }
        Err(again) => {
            tracing::error!(error = %again, "could not undo the failed swap; `fusionprot doctor DATASET` retries");
            Err(err.into())
        }
    }
}
