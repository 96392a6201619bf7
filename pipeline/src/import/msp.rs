//! Atom3D's MSP task (`MSP-split-by-sequence-identity-30.tar.gz`, or the folder it extracts to):
//! each LMDB record becomes a wild-type and a mutant protein (whole complexes, residues built as
//! FusionProt builds them, [`super::atoms`]) and one `pairs` row; the archive's train / val / test
//! environments become the `official` split. Wild types shared by several mutants are stored once.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::{Int8Array, Int32Array, RecordBatch, StringArray};
use arrow_schema::Field;
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;

use super::atoms::{self, Frame};
use super::lmdb;
use super::scratch::{Scratch, copy_capped};
use super::{ImportError, OFFICIAL, SplitCounts, io};
use crate::dataset::manifest::{
    Counts, GraphParameters, InputEntry, Manifest, Parameters, TableEntry,
};
use crate::dataset::schema::{DATASET_SCHEMA_VERSION, Table};
use crate::dataset::splits::{SplitRow, write_splits};
use crate::dataset::swap;
use crate::dataset::write::{PreparedWriter, TableWriter, WriteError};
use crate::graph;
use crate::prepare::{self, NEW};
use crate::protein::{ProteinOptions, ProteinRecord, ResidueColumns};
use crate::residue;
use crate::structure::Format;

/// The reference's window (`TruncateProteinPair(max_length=1000)`, training.md §2.4).
pub const WINDOW: usize = 1000;

/// Atom3D's split folders and our names for them.
const SPLITS: [(&str, &str); 3] = [("train", "train"), ("val", "valid"), ("test", "test")];

/// What to import.
#[derive(Debug, Clone)]
pub struct MspConfig {
    /// The `.tar.gz` as downloaded, or the folder it was extracted to.
    pub archive: PathBuf,
    pub out: PathBuf,
    pub jobs: usize,
    /// Cap on a `data.mdb` (unpacked from the tar or found in the folder), `--max-file-mib`.
    pub max_file_bytes: u64,
}

/// What an MSP import did.
#[derive(Debug)]
pub struct MspSummary {
    pub proteins: usize,
    pub wild_types: usize,
    pub pairs: usize,
    pub residues: u64,
    pub edges: u64,
    /// Pairs with a window (more than [`WINDOW`] residues).
    pub windowed: usize,
    pub splits: SplitCounts,
    pub elapsed_secs: f64,
}

#[derive(Debug, Deserialize)]
struct Record {
    id: String,
    label: serde_json::Value,
    original_atoms: Frame,
    mutated_atoms: Frame,
}

/// One `pairs` row.
#[derive(Debug, Clone)]
struct Pair {
    mutant: String,
    wild_type: String,
    mutation: String,
    mutated: Vec<i32>,
    label: i8,
    window_start: i32,
    window_length: i32,
    /// More than [`WINDOW`] residues: the trainer applies the window.
    windowed: bool,
}

/// Imports an MSP archive into `cfg.out` through the same journaled swap as `prepare`.
///
/// # Errors
/// A missing split environment, a corrupt record (named by environment and key), wild type and
/// mutant of different lengths, I/O. The dataset is left as it was.
pub fn import_msp(cfg: &MspConfig, progress: &ProgressBar) -> Result<MspSummary, ImportError> {
    let start = Instant::now();
    let parent = match cfg.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let envs = locate(&cfg.archive, &parent, cfg.max_file_bytes)?;
    std::fs::create_dir_all(&cfg.out).map_err(io(&cfg.out))?;
    let lock = swap::lock(&cfg.out).map_err(prepare_err)?;
    prepare::log_recovery(
        &cfg.out,
        &swap::recover(&cfg.out, &lock).map_err(prepare_err)?,
    );
    swap::remove_stale(&cfg.out, &lock).map_err(prepare_err)?;
    let staging_name = format!(".staging-{}", std::process::id());
    let staging = cfg.out.join(&staging_name);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let result = (|| {
        let read = read_all(&envs, progress)?;
        let summary = write_all(cfg, &envs, read, &staging, progress, start)?;
        let mut new: Vec<&str> = NEW.to_vec();
        new.insert(3, Table::Pairs.name());
        new.insert(4, Table::Splits.name());
        prepare::commit(&cfg.out, &staging_name, &lock, &new)?;
        Ok(summary)
    })();
    if result.is_err() && !cfg.out.join(swap::JOURNAL).exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    drop(envs);
    result
}

fn prepare_err(e: swap::SwapError) -> ImportError {
    crate::prepare::PrepareError::from(e).into()
}

/// The split environments found, and where they came from.
struct Envs {
    /// (our split name, environment folder, its name in messages)
    dirs: Vec<(&'static str, PathBuf, String)>,
    archive: serde_json::Value,
    /// `data.mdb` files unpacked from a tar; removed when dropped.
    _tmp: Option<Scratch>,
}

fn locate(given: &Path, tmp_parent: &Path, cap: u64) -> Result<Envs, ImportError> {
    let meta = std::fs::metadata(given).map_err(io(given))?;
    if meta.is_dir() {
        let data = find_data_folder(given, 3).ok_or_else(|| ImportError::File {
            file: given.display().to_string(),
            line: None,
            message: "no data/train/data.mdb (Atom3D's LMDB layout) here or below".into(),
        })?;
        let mut dirs = Vec::new();
        for (folder, ours) in SPLITS {
            let d = data.join(folder);
            if !d.join("data.mdb").is_file() {
                return Err(ImportError::File {
                    file: d.display().to_string(),
                    line: None,
                    message: "no data.mdb: every split (train, val, test) is needed".into(),
                });
            }
            let size = std::fs::metadata(d.join("data.mdb"))
                .map_err(io(&d.join("data.mdb")))?
                .len();
            if size > cap {
                return Err(ImportError::File {
                    file: d.join("data.mdb").display().to_string(),
                    line: None,
                    message: format!(
                        "{size} bytes, over --max-file-mib {} (raise it if the file is genuine)",
                        cap >> 20
                    ),
                });
            }
            let label = d
                .strip_prefix(given)
                .map_or_else(|_| d.display().to_string(), |p| p.display().to_string());
            dirs.push((ours, d, label));
        }
        return Ok(Envs {
            dirs,
            archive: json!({"path": given.display().to_string(), "kind": "folder"}),
            _tmp: None,
        });
    }
    let tmp = Scratch::create(tmp_parent)?;
    let label = given.display().to_string();
    let file = File::open(given).map_err(io(given))?;
    let reader: Box<dyn std::io::Read> = if is_gzip(given)? {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut tar = tar::Archive::new(reader);
    let bad = |message: String| ImportError::File {
        file: label.clone(),
        line: None,
        message,
    };
    let mut found: HashMap<&'static str, String> = HashMap::new();
    for entry in tar
        .entries()
        .map_err(|e| bad(format!("not a readable tar: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("broken tar: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| bad(format!("broken tar: {e}")))?
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = name.trim_end_matches('/').split('/').collect();
        let n = parts.len();
        if n < 3 || parts[n - 1] != "data.mdb" || parts[n - 3] != "data" {
            continue;
        }
        let Some(&(_, ours)) = SPLITS.iter().find(|(f, _)| *f == parts[n - 2]) else {
            continue;
        };
        let dir = tmp.path().join(ours);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join("data.mdb");
        let claimed = entry.header().size().ok();
        copy_capped(&mut entry, claimed, cap, &format!("{label}/{name}"), &path)?;
        found.insert(ours, name[..name.len() - "/data.mdb".len()].to_owned());
    }
    let mut dirs = Vec::new();
    for (folder, ours) in SPLITS {
        let Some(member) = found.get(ours) else {
            return Err(bad(format!("no data/{folder}/data.mdb in the archive")));
        };
        dirs.push((ours, tmp.path().join(ours), format!("{label}/{member}")));
    }
    let (bytes, sha256) = crate::dataset::write::sha256_file(given)?;
    Ok(Envs {
        dirs,
        archive: json!({"path": label, "kind": "tar", "bytes": bytes, "sha256": sha256}),
        _tmp: Some(tmp),
    })
}

fn is_gzip(path: &Path) -> Result<bool, ImportError> {
    let mut magic = [0u8; 2];
    let mut f = File::open(path).map_err(io(path))?;
    let n = std::io::Read::read(&mut f, &mut magic).map_err(io(path))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

/// `dir/data` (or `dir` itself) holding `train/data.mdb`, searched breadth-first `depth` levels.
fn find_data_folder(dir: &Path, depth: usize) -> Option<PathBuf> {
    if dir.join("train/data.mdb").is_file() {
        return Some(dir.to_owned());
    }
    if depth == 0 {
        return None;
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    subs.iter().find_map(|s| find_data_folder(s, depth - 1))
}

/// Everything read from the environments.
struct Read {
    proteins: BTreeMap<String, ProteinRecord>,
    pairs: Vec<Pair>,
    split_of: HashMap<String, &'static str>,
    inputs: Vec<InputEntry>,
    wild_types: usize,
    /// Wild types whose mutants sit in more than one split (stored under the first).
    shared_wild_types: Vec<String>,
}

fn label_of(v: &serde_json::Value) -> Option<i8> {
    match v {
        serde_json::Value::String(s) if s == "1" => Some(1),
        serde_json::Value::String(s) if s == "0" => Some(0),
        serde_json::Value::Number(n) => n.as_i64().filter(|x| *x == 0 || *x == 1).map(|x| x as i8),
        serde_json::Value::Bool(b) => Some(i8::from(*b)),
        _ => None,
    }
}

fn record_protein(id: &str, source: String, sha: &str, residues: ResidueColumns) -> ProteinRecord {
    let mut chains: Vec<&str> = Vec::new();
    for c in &residues.chain {
        if !chains.contains(&c.as_str()) {
            chains.push(c);
        }
    }
    ProteinRecord {
        protein_id: id.to_owned(),
        entry_id: id.split('_').next().unwrap_or(id).to_owned(),
        chain_id: chains.join(","),
        sequence: residues
            .name
            .iter()
            .map(|n| char::from(residue::one_letter(n)))
            .collect(),
        num_residues_in_file: residues.len() as u32,
        source,
        source_sha256: sha.to_owned(),
        format: Format::Atom3d,
        mean_plddt: None,
        method: None,
        resolution_angstrom: None,
        ec_numbers: Vec::new(),
        title: None,
        residues,
    }
}

fn read_all(envs: &Envs, progress: &ProgressBar) -> Result<Read, ImportError> {
    let mut read = Read {
        proteins: BTreeMap::new(),
        pairs: Vec::new(),
        split_of: HashMap::new(),
        inputs: Vec::new(),
        wild_types: 0,
        shared_wild_types: Vec::new(),
    };
    progress.set_message("reading records");
    for (split, dir, label) in &envs.dirs {
        let mdb = dir.join("data.mdb");
        let (bytes, sha256) = crate::dataset::write::sha256_file(&mdb)?;
        let each = |i: usize, rec: Record, sha: String| -> Result<(), ImportError> {
            let bad = |message: String| ImportError::Record {
                env: label.clone(),
                key: i.to_string(),
                id: Some(rec.id.clone()),
                message,
            };
            let Some((wt_id, mutation)) = rec.id.rsplit_once('_') else {
                return Err(bad("the id has no `_<mutation>` suffix".into()));
            };
            let label_value = label_of(&rec.label)
                .ok_or_else(|| bad(format!("label is {}, expected '0' or '1'", rec.label)))?;
            let wt = atoms::residues(&rec.original_atoms)
                .map_err(|m| bad(format!("original_atoms: {m}")))?;
            let mt = atoms::residues(&rec.mutated_atoms)
                .map_err(|m| bad(format!("mutated_atoms: {m}")))?;
            if wt.is_empty() {
                return Err(bad("no residue with a CA atom".into()));
            }
            if wt.len() != mt.len() {
                return Err(bad(format!(
                    "the wild type has {} residues and the mutant {}; the MSP task pairs them residue by residue",
                    wt.len(),
                    mt.len()
                )));
            }
            let mutated: Vec<i32> = (0..wt.len())
                .filter(|&k| {
                    residue::residue_type(&wt.name[k]) != residue::residue_type(&mt.name[k])
                })
                .map(|k| k as i32)
                .collect();
            let n = wt.len();
            let (window_start, window_length) = if n > WINDOW {
                let Some(&first) = mutated.first() else {
                    return Err(bad(format!(
                        "{n} residues and no residue type differs: the {WINDOW}-residue window has no centre"
                    )));
                };
                let start = (i64::from(first) - (WINDOW / 2) as i64)
                    .min((n - WINDOW) as i64)
                    .max(0);
                (start as i32, WINDOW as i32)
            } else {
                (0, n as i32)
            };
            let source = format!("{label}/{i}");
            match read.proteins.get(wt_id) {
                Some(existing) if existing.residues != wt => {
                    return Err(bad(format!(
                        "the wild type {wt_id} differs from the one in {}",
                        existing.source
                    )));
                }
                Some(_) => {
                    let first = read.split_of.get(wt_id).copied();
                    if first != Some(*split) && !read.shared_wild_types.iter().any(|w| w == wt_id) {
                        read.shared_wild_types.push(wt_id.to_owned());
                    }
                }
                None => {
                    read.proteins.insert(
                        wt_id.to_owned(),
                        record_protein(wt_id, format!("{source}/original_atoms"), &sha, wt),
                    );
                    read.split_of.insert(wt_id.to_owned(), split);
                    read.wild_types += 1;
                }
            }
            if read.proteins.contains_key(&rec.id) {
                return Err(bad("this id is already a protein of the dataset".into()));
            }
            read.proteins.insert(
                rec.id.clone(),
                record_protein(&rec.id, format!("{source}/mutated_atoms"), &sha, mt),
            );
            read.split_of.insert(rec.id.clone(), split);
            read.pairs.push(Pair {
                mutant: rec.id.clone(),
                wild_type: wt_id.to_owned(),
                mutation: mutation.to_owned(),
                mutated,
                label: label_value,
                window_start,
                window_length,
                windowed: n > WINDOW,
            });
            progress.inc(1);
            Ok(())
        };
        let records = lmdb::for_each_record(dir, label, |n| progress.inc_length(n as u64), each)?;
        read.inputs.push(InputEntry {
            path: format!("{label}/data.mdb"),
            bytes,
            sha256,
            proteins: records,
        });
    }
    read.pairs.sort_by(|a, b| a.mutant.cmp(&b.mutant));
    Ok(read)
}

fn write_all(
    cfg: &MspConfig,
    envs: &Envs,
    read: Read,
    staging: &Path,
    progress: &ProgressBar,
    start: Instant,
) -> Result<MspSummary, ImportError> {
    progress.set_message("building graphs and writing");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.jobs.max(1))
        .build()
        .expect("a rayon pool with a positive thread count");
    let mut writer = PreparedWriter::new(staging, cfg.jobs.max(1))?;
    let mut counts = Counts {
        files: envs.dirs.len(),
        proteins: read.proteins.len(),
        ..Counts::default()
    };
    let records: Vec<&ProteinRecord> = read.proteins.values().collect();
    for chunk in records.chunks(64) {
        let edges: Vec<graph::Edges> = pool.install(|| {
            chunk
                .par_iter()
                .map(|p| graph::build(&p.residues.pos, &p.residues.chain_keys()))
                .collect()
        });
        for (p, e) in chunk.iter().zip(&edges) {
            counts.residues += p.residues.len() as u64;
            counts.edges += e.len() as u64;
            writer.push(p, e)?;
        }
    }
    let mut tables = writer.finish()?;
    let parts = write_pairs(staging, &read.pairs)?;
    tables.insert(Table::Pairs.name(), TableEntry::new(Table::Pairs, parts));
    let mut split_counts = SplitCounts::new();
    let rows: Vec<SplitRow> = read
        .proteins
        .keys()
        .map(|id| {
            let split = read.split_of.get(id).copied().unwrap_or("removed");
            *split_counts
                .entry(OFFICIAL.to_owned())
                .or_default()
                .entry(split.to_owned())
                .or_default() += 1;
            SplitRow {
                protein_id: id.clone(),
                name: OFFICIAL.to_owned(),
                split: split.to_owned(),
                cluster_id: None,
                component_id: None,
                max_train_identity: None,
            }
        })
        .collect();
    write_splits(staging, rows)?;
    let mut pair_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &read.pairs {
        *pair_counts
            .entry(read.split_of.get(&p.mutant).copied().unwrap_or("removed"))
            .or_default() += 1;
    }
    let windowed = read.pairs.iter().filter(|p| p.windowed).count();
    let mut extra = serde_json::Map::new();
    extra.insert(
        "benchmark".into(),
        json!({
            "kind": "msp",
            "archive": envs.archive,
            "tasks": [{"task": "msp", "size": 1, "terms": ["label"]}],
            "pairs": read.pairs.len(),
            "pairs_per_split": pair_counts,
            "wild_types": read.wild_types,
            "wild_types_in_several_splits": read.shared_wild_types,
            "window": {
                "residues": WINDOW,
                "rule": "only when a complex has more than 1000 residues: start = max(0, min(first mutated index - 500, L - 1000)), the same residues of wild type and mutant (TorchDrug's TruncateProteinPair, random=False); stored in pairs, applied by the trainer",
            },
            "atoms": "elements outside TorchDrug's atom vocabulary (H, and Biopython's upper-case SE …) dropped; residues cut where (residue, insertion_code, resname) changes; nodes = residues with a CA",
        }),
    );
    extra.insert(
        "splits".into(),
        json!({ OFFICIAL: {
            "kind": "official",
            "source": "Atom3D MSP split-by-sequence-identity-30 (data/train, data/val, data/test)",
            "rule": "each mutant in the split of its LMDB environment; a wild type in the split of its first mutant",
            "counts": split_counts.get(OFFICIAL),
        }}),
    );
    let manifest = Manifest {
        tool: "fusionprot",
        tool_version: env!("CARGO_PKG_VERSION"),
        dataset_schema_version: DATASET_SCHEMA_VERSION,
        parameters: Parameters {
            inputs: vec![cfg.archive.to_string_lossy().into_owned()],
            proteins: ProteinOptions::default(),
            strict: true,
            max_file_bytes: crate::prepare::input::DEFAULT_MAX_FILE_BYTES,
            allow_empty: false,
        },
        graph: GraphParameters::spec(),
        counts: counts.clone(),
        tables,
        inputs: read.inputs,
        failures: Vec::new(),
        duplicates: Vec::new(),
        alphafold_db: None,
        extra,
    };
    let path = staging.join("manifest.json");
    manifest.write(&path).map_err(io(&path))?;
    Ok(MspSummary {
        proteins: counts.proteins,
        wild_types: read.wild_types,
        pairs: read.pairs.len(),
        residues: counts.residues,
        edges: counts.edges,
        windowed,
        splits: SplitCounts::from([(
            "pairs".to_owned(),
            pair_counts
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )]),
        elapsed_secs: start.elapsed().as_secs_f64(),
    })
}

fn write_pairs(
    dir: &Path,
    pairs: &[Pair],
) -> Result<Vec<crate::dataset::part::PartInfo>, WriteError> {
    let mut w = TableWriter::new(dir, Table::Pairs)?;
    for chunk in pairs.chunks(Table::Pairs.row_group_rows()) {
        let s = |f: &dyn Fn(&Pair) -> &str| -> StringArray {
            chunk.iter().map(|p| Some(f(p))).collect()
        };
        let mut lists = ListBuilder::new(Int32Builder::new()).with_field(Arc::new(Field::new(
            "item",
            arrow_schema::DataType::Int32,
            false,
        )));
        for p in chunk {
            lists.values().append_slice(&p.mutated);
            lists.append(true);
        }
        let batch = RecordBatch::try_new(
            Table::Pairs.arrow_schema(),
            vec![
                Arc::new(s(&|p| &p.mutant)),
                Arc::new(s(&|p| &p.wild_type)),
                Arc::new(s(&|p| &p.mutation)),
                Arc::new(lists.finish()),
                Arc::new(chunk.iter().map(|p| Some(p.label)).collect::<Int8Array>()),
                Arc::new(
                    chunk
                        .iter()
                        .map(|p| Some(p.window_start))
                        .collect::<Int32Array>(),
                ),
                Arc::new(
                    chunk
                        .iter()
                        .map(|p| Some(p.window_length))
                        .collect::<Int32Array>(),
                ),
            ],
        )
        .map_err(|source| WriteError::Arrow {
            table: "pairs",
            source,
        })?;
        w.write(&batch)?;
    }
    w.finish(dir)
}
