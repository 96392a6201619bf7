//! `fusionprot merge SHARD… --out DATASET`: the shards of `prepare --shard I/N` joined into the
//! dataset one `prepare` over all inputs writes, byte for byte.
//!
//! Refused before anything is written: shards of another fusionprot, parameters, input list
//! (`units_digest`) or shard count; a missing or repeated shard index; units not covered exactly
//! once. Then the global steps are redone from the shards' `shard` sections: path-derived names
//! over all path-named sources ([`crate::prepare::ids`]), the final id of every protein, duplicates by
//! (id, source order) keeping the first. The kept proteins are read from their shard by random
//! access ([`crate::dataset::access`]) in final id order, rebuilt as records and written through the same
//! batching and writers as `prepare`; counts, inputs, failures and duplicates are combined in the
//! single run's order. The result is swapped in as `prepare` swaps (staging, journal, lock).
//!
//! With `link`, nothing is read or rewritten: the manifest lists the shards' parts
//! ([`crate::dataset::link`]), after checking that no row would change (no duplicate across shards, no
//! id or entry renamed by the whole run's naming).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::{
    Array, Float32Array, Int8Array, Int32Array, ListArray, RecordBatch, StringArray,
};
use indicatif::ProgressBar;
use serde::Deserialize;

use crate::dataset::access::TableIndex;
use crate::dataset::manifest::{
    Counts, Duplicate, Failure, GraphParameters, InputEntry, Manifest, Parameters, TableEntry,
};
use crate::dataset::read::ReadError;
use crate::dataset::schema::{DATASET_SCHEMA_VERSION, Table};
use crate::dataset::swap;
use crate::dataset::write::PreparedWriter;
use crate::graph::Edges;
use crate::prepare::ids::{self, Rename, StemNamed};
use crate::prepare::shard::Section;
use crate::prepare::{self, NEW, PrepareError};
use crate::protein::{ProteinOptions, ProteinRecord, ResidueColumns};
use crate::structure::Format;

/// Errors of a merge.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{}: {message}", .shard.display())]
    Shard { shard: PathBuf, message: String },
    #[error("the shards do not fit together: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}

/// What a merge did.
#[derive(Debug)]
pub struct MergeSummary {
    pub shards: usize,
    pub counts: Counts,
    pub elapsed_secs: f64,
}

#[derive(Debug, Deserialize)]
struct StoredParameters {
    inputs: Vec<String>,
    #[serde(flatten)]
    proteins: ProteinOptions,
    strict: bool,
    max_file_bytes: u64,
    allow_empty: bool,
}

#[derive(Debug, Deserialize)]
struct StoredManifest {
    tool_version: String,
    dataset_schema_version: u32,
    parameters: serde_json::Value,
    graph: serde_json::Value,
    counts: Counts,
    inputs: Vec<InputEntry>,
    failures: Vec<Failure>,
    #[serde(default)]
    tables: BTreeMap<String, crate::dataset::link::ShardTable>,
    shard: Option<Section>,
}

struct Loaded {
    dir: PathBuf,
    manifest: StoredManifest,
    section: Section,
}

fn load(dir: &Path) -> Result<Loaded, MergeError> {
    let bad = |message: String| MergeError::Shard {
        shard: dir.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(dir.join("manifest.json"))
        .map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut manifest: StoredManifest =
        serde_json::from_str(&text).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let section = manifest.shard.take().ok_or_else(|| {
        bad("not a shard (no `shard` section): prepare it with --shard I/N".into())
    })?;
    if section.inputs_seq.len() != manifest.inputs.len()
        || section.failures_seq.len() != manifest.failures.len()
    {
        return Err(bad("its shard section does not match its inputs".into()));
    }
    Ok(Loaded {
        dir: dir.to_owned(),
        manifest,
        section,
    })
}

/// Checks that the shards are all of one run, each index once, every unit once.
fn check(shards: &[Loaded]) -> Result<(), MergeError> {
    let first = &shards[0];
    let mismatch = |s: &Loaded, what: &str| {
        MergeError::Mismatch(format!(
            "{} and {} differ in {what}",
            first.dir.display(),
            s.dir.display()
        ))
    };
    for s in shards {
        if s.manifest.tool_version != env!("CARGO_PKG_VERSION")
            || s.manifest.dataset_schema_version != DATASET_SCHEMA_VERSION
        {
            return Err(MergeError::Shard {
                shard: s.dir.clone(),
                message: format!(
                    "prepared by fusionprot {} (dataset schema {}); this is {} (schema {}): merge with the version that prepared the shards",
                    s.manifest.tool_version,
                    s.manifest.dataset_schema_version,
                    env!("CARGO_PKG_VERSION"),
                    DATASET_SCHEMA_VERSION
                ),
            });
        }
        if s.section.units_digest != first.section.units_digest
            || s.section.units_total != first.section.units_total
        {
            return Err(mismatch(s, "input lists (units_digest)"));
        }
        if s.manifest.parameters != first.manifest.parameters {
            return Err(mismatch(s, "parameters"));
        }
        if s.manifest.graph != first.manifest.graph {
            return Err(mismatch(s, "graph construction"));
        }
        if s.section.count != first.section.count {
            return Err(mismatch(s, "shard count"));
        }
    }
    let n = first.section.count;
    let mut seen = vec![None::<&Path>; n];
    for s in shards {
        let i = s.section.index;
        if i >= n {
            return Err(MergeError::Mismatch(format!(
                "{}: shard index {i} of {n}",
                s.dir.display()
            )));
        }
        if let Some(other) = seen[i] {
            return Err(MergeError::Mismatch(format!(
                "shard {i}/{n} given twice: {} and {}",
                other.display(),
                s.dir.display()
            )));
        }
        seen[i] = Some(&s.dir);
    }
    let missing: Vec<String> = (0..n)
        .filter(|&i| seen[i].is_none())
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Mismatch(format!(
            "missing shard{} {}",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }
    let mut covered = vec![0u32; first.section.units_total];
    for s in shards {
        for &u in &s.section.units {
            if let Some(c) = covered.get_mut(u) {
                *c += 1;
            }
        }
    }
    if let Some(u) = covered.iter().position(|&c| c != 1) {
        return Err(MergeError::Mismatch(format!(
            "input unit {u} is in {} shards, not exactly one",
            covered[u]
        )));
    }
    Ok(())
}

/// One protein of the merged dataset and where its rows are.
struct Kept {
    final_id: String,
    shard: usize,
    local_id: String,
    /// The global rename, if its entry id is path-derived and ambiguous.
    rename: Option<Rename>,
    original_entry: Option<String>,
}

/// How `merge` builds the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rewrite every kept protein: byte-identical to one `prepare`.
    Copy,
    /// A manifest over the shards' parts, nothing copied ([`crate::dataset::link`]).
    Link,
}

/// Merges `shards` into `out`.
///
/// # Errors
/// Shards that do not fit together (before anything is written), unreadable shards, I/O; for
/// [`Mode::Link`], rows that would have to change.
pub fn merge(
    shards: &[PathBuf],
    out: &Path,
    mode: Mode,
    progress: &ProgressBar,
) -> Result<MergeSummary, MergeError> {
    let start = Instant::now();
    if shards.is_empty() {
        return Err(MergeError::Mismatch("no shards given".into()));
    }
    let loaded: Vec<Loaded> = shards.iter().map(|s| load(s)).collect::<Result<_, _>>()?;
    check(&loaded)?;
    progress.set_message("checking the shards' parts");
    for s in &loaded {
        verify_parts(s, mode)?;
    }

    // Source names by order key, inputs and failures in the single run's order.
    let mut inputs: Vec<(usize, InputEntry)> = Vec::new();
    let mut failures: Vec<(usize, Failure)> = Vec::new();
    let mut counts = Counts::default();
    for s in &loaded {
        inputs.extend(
            s.section
                .inputs_seq
                .iter()
                .copied()
                .zip(s.manifest.inputs.iter().cloned()),
        );
        failures.extend(
            s.section
                .failures_seq
                .iter()
                .copied()
                .zip(s.manifest.failures.iter().cloned()),
        );
        let c = &s.manifest.counts;
        counts.files += c.files;
        counts.files_failed += c.files_failed;
        counts.non_protein_chains += c.non_protein_chains;
        counts.waters += c.waters;
        counts.ligands += c.ligands;
        for (k, v) in &c.filtered {
            *counts.filtered.entry(*k).or_default() += v;
        }
    }
    inputs.sort_by_key(|(seq, _)| *seq);
    failures.sort_by_key(|(seq, _)| *seq);
    let names: HashMap<usize, &str> = inputs.iter().map(|(s, i)| (*s, i.path.as_str())).collect();

    // The global names and ids, then duplicates by (id, source order), first kept.
    let named: Vec<StemNamed> = loaded
        .iter()
        .flat_map(|s| s.section.named.iter().map(StemNamed::from))
        .collect();
    let renames = ids::disambiguate(named);
    let mut entries: Vec<(String, usize, usize, usize, &crate::prepare::shard::Entry)> = Vec::new();
    for (k, s) in loaded.iter().enumerate() {
        for e in &s.section.entries {
            let id = renames
                .get(&e.seq)
                .map_or_else(|| e.original_id.clone(), |r| r.protein_id(&e.original_id));
            entries.push((id, e.seq, e.sub, k, e));
        }
    }
    // The rule `prepare` applies among copies of a protein: AFDB first, then input order.
    let rank = |seq: usize| crate::afdb::preference(names.get(&seq).copied().unwrap_or_default());
    entries.sort_by(|a, b| (&a.0, rank(a.1), a.1, a.2).cmp(&(&b.0, rank(b.1), b.1, b.2)));
    let mut duplicates = Vec::new();
    let mut kept: Vec<Kept> = Vec::new();
    let mut kept_seq: Vec<usize> = Vec::new();
    // Rows a link would have to drop: kept by their shard, a duplicate of the whole run.
    let mut unlinkable: Vec<String> = Vec::new();
    for (id, seq, _, shard, e) in entries {
        if let Some(k) = kept.last()
            && k.final_id == id
        {
            if e.kept {
                unlinkable.push(format!(
                    "{id} is in shard {} and, kept by the whole run, in shard {}",
                    loaded[shard].section.index, loaded[k.shard].section.index
                ));
            }
            duplicates.push(Duplicate {
                protein_id: id,
                skipped: names.get(&seq).copied().unwrap_or_default().to_owned(),
                kept: names
                    .get(kept_seq.last().unwrap_or(&0))
                    .copied()
                    .unwrap_or_default()
                    .to_owned(),
            });
            continue;
        }
        if !e.kept {
            return Err(MergeError::Shard {
                shard: loaded[shard].dir.clone(),
                message: format!(
                    "protein {id} is kept by the merge but was a duplicate in this shard: the shard's records are inconsistent"
                ),
            });
        }
        kept.push(Kept {
            final_id: id,
            shard,
            local_id: e.local_id.clone(),
            rename: renames.get(&seq).cloned(),
            original_entry: e.original_entry.clone(),
        });
        kept_seq.push(seq);
    }
    counts.duplicates_skipped = duplicates.len();
    counts.proteins = kept.len();
    let alphafold_db = crate::afdb::AfdbSection::of(
        kept_seq
            .iter()
            .map(|seq| names.get(seq).copied().unwrap_or_default()),
    );
    if mode == Mode::Link {
        for k in &kept {
            if k.final_id != k.local_id || k.rename.is_some() || k.original_entry.is_some() {
                unlinkable.push(format!(
                    "{} of shard {} is named {} by the whole run's path-derived naming",
                    k.local_id, loaded[k.shard].section.index, k.final_id
                ));
            }
        }
        if !unlinkable.is_empty() {
            let n = unlinkable.len();
            unlinkable.truncate(5);
            return Err(MergeError::Mismatch(format!(
                "--link cannot drop or rename rows inside the shards' parts, and {n} would change ({}{}); merge without --link, which rewrites them",
                unlinkable.join("; "),
                if n > 5 { "; …" } else { "" }
            )));
        }
    }

    // The parameters as the single run records them (all shards agree).
    let params: StoredParameters = serde_json::from_value(loaded[0].manifest.parameters.clone())
        .map_err(|e| MergeError::Shard {
            shard: loaded[0].dir.clone(),
            message: format!("parameters: {e}"),
        })?;

    std::fs::create_dir_all(out).map_err(prepare::io(out))?;
    let lock = swap::lock(out).map_err(PrepareError::from)?;
    prepare::log_recovery(out, &swap::recover(out, &lock).map_err(PrepareError::from)?);
    swap::remove_stale(out, &lock).map_err(PrepareError::from)?;
    let staging_name = format!(".staging-{}", std::process::id());
    let staging = out.join(&staging_name);
    std::fs::create_dir_all(&staging).map_err(prepare::io(&staging))?;
    let result = (|| {
        let mut extra = serde_json::Map::new();
        let tables = match mode {
            Mode::Copy => write(&loaded, &kept, &staging, progress, &mut counts)?,
            Mode::Link => {
                let (tables, section) = link(&loaded, out)?;
                for s in &loaded {
                    counts.residues += s.manifest.counts.residues;
                    counts.edges += s.manifest.counts.edges;
                }
                extra.insert(crate::dataset::link::SECTION.into(), section);
                tables
            }
        };
        let manifest = Manifest {
            tool: "fusionprot",
            tool_version: env!("CARGO_PKG_VERSION"),
            dataset_schema_version: DATASET_SCHEMA_VERSION,
            parameters: Parameters {
                inputs: params.inputs,
                proteins: params.proteins,
                strict: params.strict,
                max_file_bytes: params.max_file_bytes,
                allow_empty: params.allow_empty,
            },
            graph: GraphParameters::spec(),
            counts: counts.clone(),
            tables,
            inputs: inputs.into_iter().map(|(_, i)| i).collect(),
            failures: failures.into_iter().map(|(_, f)| f).collect(),
            duplicates,
            alphafold_db,
            extra,
        };
        let path = staging.join("manifest.json");
        manifest.write(&path).map_err(prepare::io(&path))?;
        // A link brings its manifest only; the swap still retires any tables at `out`, which
        // would otherwise hide the linked parts from the readers.
        let new: &[&str] = match mode {
            Mode::Copy => &NEW,
            Mode::Link => &["manifest.json"],
        };
        prepare::commit(out, &staging_name, &lock, new)?;
        Ok::<(), MergeError>(())
    })();
    if result.is_err() && !out.join(swap::JOURNAL).exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result?;
    Ok(MergeSummary {
        shards: loaded.len(),
        counts,
        elapsed_secs: start.elapsed().as_secs_f64(),
    })
}

/// Checks, before anything is written, that a shard's table folders hold exactly the parts its
/// manifest lists, each of the listed size and, for a copying merge (which reads every byte
/// anyway), the listed sha256: a part removed, added or rewritten after the shard was prepared
/// would otherwise be merged silently (rows lost, or other values re-hashed as if they were the
/// shard's). A link checks presence and sizes only (it reads no row; `doctor` and the readers
/// check the link itself).
fn verify_parts(s: &Loaded, mode: Mode) -> Result<(), MergeError> {
    use rayon::prelude::*;
    let bad = |message: String| MergeError::Shard {
        shard: s.dir.clone(),
        message,
    };
    let mut listed = Vec::new();
    for t in Table::PREPARED {
        let parts = &s
            .manifest
            .tables
            .get(t.name())
            .ok_or_else(|| bad(format!("its manifest lists no {} table", t.name())))?
            .parts;
        let mut on_disk: Vec<String> = crate::dataset::read::parts(&s.dir, t)?
            .iter()
            .filter_map(|p| {
                p.file_name()
                    .map(|n| format!("{}/{}", t.name(), n.to_string_lossy()))
            })
            .collect();
        on_disk.sort();
        let mut names: Vec<&str> = parts.iter().map(|p| p.path.as_str()).collect();
        names.sort_unstable();
        if let Some(extra) = on_disk.iter().find(|d| !names.contains(&d.as_str())) {
            return Err(bad(format!(
                "{extra} is not listed by its manifest (a part added after the shard was prepared): prepare the shard again"
            )));
        }
        listed.extend(parts.iter());
    }
    let hash = mode == Mode::Copy;
    listed.par_iter().try_for_each(|p| {
        let path = s.dir.join(&p.path);
        let found = std::fs::metadata(&path)
            .map_err(|e| bad(format!("{}: {e} (its manifest lists it): prepare the shard again", p.path)))?
            .len();
        if found != p.bytes {
            return Err(bad(format!(
                "{} has {found} bytes, its manifest lists {} (changed after the shard was prepared): prepare the shard again",
                p.path, p.bytes
            )));
        }
        if hash {
            let (_, sha) = crate::dataset::write::sha256_file(&path).map_err(|e| bad(e.to_string()))?;
            if sha != p.sha256 {
                return Err(bad(format!(
                    "{} has sha256 {sha}, its manifest lists {} (rewritten after the shard was prepared): prepare the shard again",
                    p.path, p.sha256
                )));
            }
        }
        Ok(())
    })
}

/// The linked tables and `link` section of `loaded` for the dataset at `out`.
fn link(
    loaded: &[Loaded],
    out: &Path,
) -> Result<(BTreeMap<&'static str, TableEntry>, serde_json::Value), MergeError> {
    let canonical = |p: &Path| {
        std::fs::canonicalize(p).map_err(|e| MergeError::Shard {
            shard: p.to_owned(),
            message: e.to_string(),
        })
    };
    let out = canonical(out)?;
    let mut shards = Vec::new();
    for s in loaded {
        let dir = canonical(&s.dir)?;
        if dir == out || out.starts_with(&dir) {
            return Err(MergeError::Mismatch(format!(
                "--out {} is inside shard {}: a link must live beside its shards",
                out.display(),
                s.dir.display()
            )));
        }
        shards.push(crate::dataset::link::LinkedShard {
            index: s.section.index,
            dir,
            tables: &s.manifest.tables,
        });
    }
    shards.sort_by_key(|s| s.index);
    crate::dataset::link::tables(&out, &shards).map_err(MergeError::Mismatch)
}

/// Proteins read per window from the shards.
const WINDOW: usize = 256;

/// The three tables, written as `prepare` writes them.
fn write(
    loaded: &[Loaded],
    kept: &[Kept],
    staging: &Path,
    progress: &ProgressBar,
    counts: &mut Counts,
) -> Result<BTreeMap<&'static str, TableEntry>, MergeError> {
    let mut wanted: Vec<HashSet<String>> = vec![HashSet::new(); loaded.len()];
    for k in kept {
        wanted[k.shard].insert(k.local_id.clone());
    }
    let indexes: Vec<[TableIndex; 3]> = loaded
        .iter()
        .zip(&wanted)
        .map(|(s, w)| {
            Ok([
                TableIndex::build(&s.dir, Table::Proteins, Some(w))?,
                TableIndex::build(&s.dir, Table::Residues, Some(w))?,
                TableIndex::build(&s.dir, Table::Edges, Some(w))?,
            ])
        })
        .collect::<Result<_, ReadError>>()?;
    progress.set_length(kept.len() as u64);
    // Encoding threads change no byte, so merge uses the machine's cores as prepare does.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut writer = PreparedWriter::new(staging, threads).map_err(PrepareError::from)?;
    for window in kept.chunks(WINDOW) {
        // Rows of the window's proteins, per shard and table.
        let mut rows: Vec<[HashMap<String, Vec<RecordBatch>>; 3]> = Vec::new();
        for (k, idx) in indexes.iter().enumerate() {
            let ids: Vec<&str> = window
                .iter()
                .filter(|p| p.shard == k)
                .map(|p| p.local_id.as_str())
                .collect();
            rows.push([idx[0].read(&ids)?, idx[1].read(&ids)?, idx[2].read(&ids)?]);
        }
        for p in window {
            let shard = &loaded[p.shard].dir;
            let bad = |message: String| MergeError::Shard {
                shard: shard.clone(),
                message: format!("protein {}: {message}", p.local_id),
            };
            let r = &mut rows[p.shard];
            let (mut record, edges) = rebuild(
                &r[0].remove(&p.local_id).unwrap_or_default(),
                &r[1].remove(&p.local_id).unwrap_or_default(),
                &r[2].remove(&p.local_id).unwrap_or_default(),
            )
            .map_err(bad)?;
            record.protein_id.clone_from(&p.final_id);
            match (&p.rename, &p.original_entry) {
                (Some(r), _) => record.entry_id.clone_from(&r.to),
                (None, Some(original)) => record.entry_id.clone_from(original),
                (None, None) => {}
            }
            counts.residues += record.residues.len() as u64;
            counts.edges += edges.len() as u64;
            writer.push(&record, &edges).map_err(PrepareError::from)?;
            progress.inc(1);
        }
    }
    Ok(writer.finish().map_err(PrepareError::from)?)
}

fn col<T: 'static>(b: &RecordBatch, i: usize) -> Result<&T, String> {
    b.column(i).as_any().downcast_ref::<T>().ok_or_else(|| {
        format!(
            "column {} has an unexpected type",
            b.schema().field(i).name()
        )
    })
}

/// A protein's record and edges from its rows in the three tables.
fn rebuild(
    proteins: &[RecordBatch],
    residues: &[RecordBatch],
    edges: &[RecordBatch],
) -> Result<(ProteinRecord, Edges), String> {
    let b = proteins
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or("no row in proteins")?;
    let s = |i: usize| col::<StringArray>(b, i);
    let opt_s = |i: usize| -> Result<Option<String>, String> {
        let a = s(i)?;
        Ok((!a.is_null(0)).then(|| a.value(0).to_owned()))
    };
    let f32s = |i: usize| -> Result<Option<f32>, String> {
        let a = col::<Float32Array>(b, i)?;
        Ok((!a.is_null(0)).then(|| a.value(0)))
    };
    let ec = col::<ListArray>(b, 12)?.value(0);
    let ec = ec
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or("ec_numbers is not a list of strings")?;
    let mut record = ProteinRecord {
        protein_id: s(0)?.value(0).to_owned(),
        entry_id: s(1)?.value(0).to_owned(),
        chain_id: s(2)?.value(0).to_owned(),
        sequence: s(3)?.value(0).to_owned(),
        num_residues_in_file: col::<Int32Array>(b, 5)?.value(0) as u32,
        source: s(6)?.value(0).to_owned(),
        source_sha256: s(7)?.value(0).to_owned(),
        format: match s(8)?.value(0) {
            "pdb" => Format::Pdb,
            "mmcif" => Format::Mmcif,
            "atom3d" => Format::Atom3d,
            other => return Err(format!("unknown format {other:?}")),
        },
        mean_plddt: f32s(9)?,
        method: opt_s(10)?,
        resolution_angstrom: f32s(11)?,
        ec_numbers: (0..ec.len()).map(|i| ec.value(i).to_owned()).collect(),
        title: opt_s(13)?,
        residues: ResidueColumns::default(),
    };
    let r = &mut record.residues;
    for b in residues {
        let name = col::<StringArray>(b, 2)?;
        let chain = col::<StringArray>(b, 4)?;
        let number = col::<Int32Array>(b, 5)?;
        let icode = col::<StringArray>(b, 6)?;
        let (x, y, z, bf) = (
            col::<Float32Array>(b, 7)?,
            col::<Float32Array>(b, 8)?,
            col::<Float32Array>(b, 9)?,
            col::<Float32Array>(b, 10)?,
        );
        for i in 0..b.num_rows() {
            r.name.push(name.value(i).into());
            r.chain.push(chain.value(i).into());
            r.number.push(number.value(i));
            r.insertion_code.push(
                (!icode.is_null(i))
                    .then(|| icode.value(i).chars().next())
                    .flatten(),
            );
            r.pos.push([x.value(i), y.value(i), z.value(i)]);
            r.b_factor.push(bf.value(i));
        }
    }
    let mut e = Edges::default();
    for b in edges {
        let (src, dst, rel) = (
            col::<Int32Array>(b, 1)?,
            col::<Int32Array>(b, 2)?,
            col::<Int8Array>(b, 3)?,
        );
        e.src.extend(src.values().iter());
        e.dst.extend(dst.values().iter());
        e.relation.extend(rel.values().iter());
    }
    Ok((record, e))
}
