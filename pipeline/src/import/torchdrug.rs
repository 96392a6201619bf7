//! TorchDrug's EnzymeCommission / GeneOntology archives (spec training.md §1): the zip as
//! downloaded (`EnzymeCommission/` holding the annotation TSV, the test CSV and inner
//! `train.zip` / `valid.zip` / `test.zip` of chain files) or the folder it extracts to (inner zips,
//! or `train/` … folders). Every chain file becomes one protein named as TorchDrug names it
//! (`1A0E-A_11110.pdb` → `1A0E-A`), parsed by the pipeline's own readers.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::ProgressBar;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::annotation::{self, Annotation, CUTOFFS, Layout, TestFlags};
use super::labels::{LabelRow, write_labels};
use super::scratch::{Scratch, copy_capped, read_capped, read_file_capped};
use super::{ImportError, OFFICIAL, SplitCounts, io};
use crate::dataset::manifest::TableEntry;
use crate::dataset::part::hex;
use crate::dataset::schema::Table;
use crate::dataset::splits::{SplitRow, write_splits};
use crate::dataset::terms::{TermRow, write_terms};
use crate::prepare::input::is_structure_name;
use crate::prepare::{self, Extension, PrepareConfig, PrepareError, Safeguards, Staged, Summary};
use crate::protein::{ProteinOptions, file_stem};

/// Which archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Benchmark {
    Ec,
    Go,
}

impl Benchmark {
    fn root(self) -> &'static str {
        match self {
            Benchmark::Ec => "EnzymeCommission",
            Benchmark::Go => "GeneOntology",
        }
    }

    fn annotation(self) -> &'static str {
        match self {
            Benchmark::Ec => "nrPDB-EC_annot.tsv",
            Benchmark::Go => "nrPDB-GO_annot.tsv",
        }
    }

    fn test_csv(self) -> &'static str {
        match self {
            Benchmark::Ec => "nrPDB-EC_test.csv",
            Benchmark::Go => "nrPDB-GO_test.csv",
        }
    }

    fn layout(self) -> Layout {
        match self {
            Benchmark::Ec => annotation::EC,
            Benchmark::Go => annotation::GO,
        }
    }
}

/// The archive's splits, in TorchDrug's load order.
const SPLITS: [&str; 3] = ["train", "valid", "test"];

/// What to import.
#[derive(Debug, Clone)]
pub struct TorchDrugConfig {
    pub benchmark: Benchmark,
    /// The zip as downloaded, or the folder it was extracted to.
    pub archive: PathBuf,
    pub out: PathBuf,
    /// Which test CSV column decides the `official` split: index into [`CUTOFFS`].
    pub test_cutoff: usize,
    /// Keep only the chain ids listed in this file (one per line).
    pub only_ids: Option<PathBuf>,
    pub jobs: usize,
    pub safeguards: Safeguards,
    /// GO only: the Gene Ontology in OBO format (`go-basic.obo`), stored as `go_terms` with each
    /// term's depth.
    pub obo: Option<PathBuf>,
}

/// What an import did.
#[derive(Debug)]
pub struct ImportSummary {
    pub prepare: Summary,
    /// Per named split, proteins per part (`train`, `valid`, `test`, `removed`).
    pub splits: SplitCounts,
    /// Per task, the vocabulary size.
    pub tasks: Vec<(String, usize)>,
    /// Ids of `--only-ids` that are in no split of the archive, sorted.
    pub missing_ids: Vec<String>,
}

/// Imports an EC or GO archive into `cfg.out`.
///
/// # Errors
/// A missing or malformed archive file (named, with its line), a chain without annotation,
/// and what `prepare` refuses. The dataset is left as it was.
pub fn import_torchdrug(
    cfg: &TorchDrugConfig,
    progress: &ProgressBar,
) -> Result<ImportSummary, ImportError> {
    if let (Some(path), Benchmark::Ec) = (&cfg.obo, cfg.benchmark) {
        return Err(ImportError::File {
            file: path.display().to_string(),
            line: None,
            message: "--obo is the Gene Ontology, for `import go`; EC numbers need none".into(),
        });
    }
    let parent = match cfg.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let src = open(
        cfg.benchmark,
        &cfg.archive,
        &parent,
        cfg.safeguards.max_file_bytes,
    )?;
    let layout = cfg.benchmark.layout();
    let annot = annotation::read_annotation(layout, &src.annotation.0, &src.annotation.1)?;
    let flags = annotation::read_test_flags(&src.test_csv.0, &src.test_csv.1)?;
    let only = match &cfg.only_ids {
        Some(path) => Some(read_id_list(path)?),
        None => None,
    };
    let ontology = match &cfg.obo {
        Some(path) => Some(read_ontology(path, &annot, cfg)?),
        None => None,
    };
    let mut split_of: HashMap<String, &'static str> = HashMap::new();
    for (split, ids) in &src.listing {
        for (id, member) in ids {
            if only.as_ref().is_some_and(|o| !o.contains(id)) {
                continue;
            }
            if !annot.labels.contains_key(id) {
                return Err(ImportError::File {
                    file: member.clone(),
                    line: None,
                    message: format!(
                        "chain {id} has no row in {} (TorchDrug would stop here too)",
                        src.annotation.0
                    ),
                });
            }
            split_of.entry(id.clone()).or_insert(split);
        }
    }
    // Ids the list asks for that the archive does not have: named, not silently dropped.
    let listed: BTreeSet<&str> = src
        .listing
        .iter()
        .flat_map(|(_, ids)| ids.iter().map(|(id, _)| id.as_str()))
        .collect();
    let missing_ids: Vec<String> = only
        .iter()
        .flatten()
        .filter(|id| !listed.contains(id.as_str()))
        .cloned()
        .collect();
    if only.is_some() && missing_ids.len() == only.as_ref().map_or(0, BTreeSet::len) {
        return Err(ImportError::File {
            file: cfg
                .only_ids
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            line: None,
            message: format!(
                "none of its {} ids is a chain of the archive (e.g. {}); ids are TorchDrug's, such as 1A0E-A",
                missing_ids.len(),
                missing_ids
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let mut ext = Labels {
        benchmark: cfg.benchmark,
        annot: &annot,
        flags: &flags,
        split_of: &split_of,
        cutoff: cfg.test_cutoff,
        section: json!({
            "kind": cfg.benchmark,
            "archive": src.archive.clone(),
            "annotation": file_entry(&src.annotation),
            "test_csv": file_entry(&src.test_csv),
            "test_cutoff": CUTOFFS[cfg.test_cutoff].0.parse::<f64>().unwrap_or(0.95),
            "only_ids": cfg.only_ids.as_ref().map(|p| json!({
                "path": p.display().to_string(),
                "ids": only.as_ref().map_or(0, BTreeSet::len),
                "not_in_archive": missing_ids,
            })),
            "tasks": annot.tasks.iter().map(|t| json!({"task": t.task, "size": t.terms.len(), "terms": t.terms})).collect::<Vec<_>>(),
        }),
        counts: SplitCounts::new(),
        archive_name: cfg.archive.to_string_lossy().into_owned(),
        ontology,
    };
    let pcfg = PrepareConfig {
        inputs: src.inputs.clone(),
        out: cfg.out.clone(),
        proteins: ProteinOptions {
            file_prefix_ids: true,
            ..ProteinOptions::default()
        },
        jobs: cfg.jobs,
        strict: false,
        only_ids: only.map(Arc::new),
        shard: None,
    };
    let summary = prepare::prepare_extended(&pcfg, &cfg.safeguards, Some(&mut ext), progress)?;
    drop(src);
    Ok(ImportSummary {
        prepare: summary,
        splits: ext.counts,
        tasks: annot
            .tasks
            .iter()
            .map(|t| (t.task.clone(), t.terms.len()))
            .collect(),
        missing_ids,
    })
}

fn file_entry((name, bytes): &(String, Vec<u8>)) -> serde_json::Value {
    json!({"name": name, "bytes": bytes.len(), "sha256": hex(&Sha256::digest(bytes))})
}

/// The ontology of `--obo`, and its manifest section (file, hash, release, the vocabulary's terms
/// it lacks).
fn read_ontology(
    path: &Path,
    annot: &Annotation,
    cfg: &TorchDrugConfig,
) -> Result<(Vec<TermRow>, serde_json::Value), ImportError> {
    let bytes = read_file_capped(path, cfg.safeguards.max_file_bytes)?;
    let name = path.display().to_string();
    let text = std::str::from_utf8(&bytes).map_err(|e| ImportError::File {
        file: name.clone(),
        line: None,
        message: format!("not UTF-8 text: {e}"),
    })?;
    let o = super::obo::parse(&name, text)?;
    let known: BTreeSet<&str> = o.rows.iter().map(|r| r.term_id.as_str()).collect();
    let missing: Vec<&str> = annot
        .tasks
        .iter()
        .flat_map(|t| t.terms.iter().map(String::as_str))
        .filter(|t| !known.contains(t))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            terms = missing.len(),
            first = missing[0],
            "vocabulary terms the ontology lacks (obsolete or newer): their depth is unknown"
        );
    }
    let section = json!({
        "file": name,
        "bytes": bytes.len(),
        "sha256": hex(&Sha256::digest(&bytes)),
        "format_version": o.format_version,
        "data_version": o.data_version,
        "terms": o.terms,
        "rows": o.rows.len(),
        "depth": "GOATOOLS' depth: the longest is_a path to the namespace's root (root 0); level: the shortest",
        "vocabulary_terms_missing": missing,
    });
    Ok((o.rows, section))
}

/// One id per line; blank lines and `#` comments skipped.
fn read_id_list(path: &Path) -> Result<BTreeSet<String>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let ids: BTreeSet<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(ImportError::File {
            file: path.display().to_string(),
            line: None,
            message: "lists no ids".into(),
        });
    }
    Ok(ids)
}

/// The extension that stages `labels` and the official splits.
struct Labels<'a> {
    benchmark: Benchmark,
    annot: &'a Annotation,
    flags: &'a TestFlags,
    split_of: &'a HashMap<String, &'static str>,
    cutoff: usize,
    section: serde_json::Value,
    counts: SplitCounts,
    archive_name: String,
    /// `--obo`: the `go_terms` rows and the manifest's `gene_ontology` section.
    ontology: Option<(Vec<TermRow>, serde_json::Value)>,
}

impl Labels<'_> {
    fn stage_inner(
        &mut self,
        staging: &Path,
        proteins: &[(String, String)],
    ) -> Result<Staged, ImportError> {
        let mut rows = Vec::with_capacity(proteins.len() * self.annot.tasks.len());
        let mut splits = Vec::new();
        for (id, source) in proteins {
            let (Some(labels), Some(split)) = (self.annot.labels.get(id), self.split_of.get(id))
            else {
                return Err(ImportError::File {
                    file: source.clone(),
                    line: None,
                    message: format!("protein {id} is not a chain of the archive's splits"),
                });
            };
            for (t, vocab) in self.annot.tasks.iter().enumerate() {
                rows.push(LabelRow {
                    protein_id: id,
                    task: &vocab.task,
                    label_index: &labels[t],
                });
            }
            for c in std::iter::once(None).chain((0..CUTOFFS.len()).map(Some)) {
                let column = c.unwrap_or(self.cutoff);
                let name = match c {
                    None => OFFICIAL.to_owned(),
                    Some(c) => format!("{OFFICIAL}-{}", CUTOFFS[c].0),
                };
                // TorchDrug's filter_pdb: a test chain with 0 in the cutoff's column leaves test.
                let leaves = *split == "test" && self.flags.get(id).is_some_and(|f| !f[column]);
                let part = if leaves { "removed" } else { *split };
                *self
                    .counts
                    .entry(name.clone())
                    .or_default()
                    .entry(part.to_owned())
                    .or_default() += 1;
                splits.push(SplitRow {
                    protein_id: id.clone(),
                    name,
                    split: part.to_owned(),
                    cluster_id: None,
                    component_id: None,
                    max_train_identity: None,
                });
            }
        }
        let parts = write_labels(staging, &rows)?;
        write_splits(staging, splits)?;
        let mut staged = Staged::default();
        staged
            .tables
            .insert(Table::Labels.name(), TableEntry::new(Table::Labels, parts));
        staged.other.push(Table::Splits.name());
        if let Some((terms, section)) = self.ontology.take() {
            let parts = write_terms(staging, &terms)?;
            staged.tables.insert(
                Table::GoTerms.name(),
                TableEntry::new(Table::GoTerms, parts),
            );
            staged.sections.insert("gene_ontology".into(), section);
        }
        let mut named = serde_json::Map::new();
        for (name, counts) in &self.counts {
            let column = match name.strip_prefix(&format!("{OFFICIAL}-")) {
                Some(c) => CUTOFFS.iter().position(|x| x.0 == c).unwrap_or(self.cutoff),
                None => self.cutoff,
            };
            named.insert(
                name.clone(),
                json!({
                    "kind": "official",
                    "source": format!("{} archive ({})", self.benchmark.root(), self.archive_name),
                    "test_cutoff": CUTOFFS[column].0.parse::<f64>().unwrap_or(0.95),
                    "rule": format!(
                        "train / valid / test as the archive's folders; test chains with 0 in the test CSV's {:?} column \
                         are `removed` (TorchDrug's test_cutoff filter)", CUTOFFS[column].1),
                    "counts": counts,
                }),
            );
        }
        staged
            .sections
            .insert("benchmark".into(), self.section.clone());
        staged
            .sections
            .insert("splits".into(), serde_json::Value::Object(named));
        staged.inputs = Some(vec![self.archive_name.clone()]);
        Ok(staged)
    }
}

impl Extension for Labels<'_> {
    fn stage(
        &mut self,
        staging: &Path,
        proteins: &[(String, String)],
    ) -> Result<Staged, PrepareError> {
        self.stage_inner(staging, proteins)
            .map_err(|e| PrepareError::Extension(Box::new(e)))
    }
}

/// The archive's files, found.
struct Source {
    annotation: (String, Vec<u8>),
    test_csv: (String, Vec<u8>),
    /// What `prepare` reads, one per split, in TorchDrug's order.
    inputs: Vec<PathBuf>,
    /// Per split, its chain ids (with the member they came from) in archive order.
    listing: Vec<(&'static str, Vec<(String, String)>)>,
    archive: serde_json::Value,
    /// Inner zips unpacked from the outer one; removed when dropped.
    _tmp: Option<Scratch>,
}

fn chain_id(member: &str) -> Option<String> {
    is_structure_name(member).then(|| {
        let stem = file_stem(member);
        stem.split('_').next().unwrap_or(stem).to_owned()
    })
}

fn open(b: Benchmark, given: &Path, tmp_parent: &Path, cap: u64) -> Result<Source, ImportError> {
    let meta = std::fs::metadata(given).map_err(io(given))?;
    if meta.is_dir() {
        open_folder(b, given, cap)
    } else {
        open_zip(b, given, tmp_parent, cap)
    }
}

fn zip_listing(path: &Path, label: &str) -> Result<Vec<(String, String)>, ImportError> {
    let file = File::open(path).map_err(io(path))?;
    let zip = zip::ZipArchive::new(file).map_err(|e| ImportError::File {
        file: label.to_owned(),
        line: None,
        message: format!("not a readable zip: {e}"),
    })?;
    Ok(zip
        .file_names()
        .filter_map(|n| chain_id(n).map(|id| (id, format!("{label}/{n}"))))
        .collect::<Vec<_>>())
}

fn open_folder(b: Benchmark, given: &Path, cap: u64) -> Result<Source, ImportError> {
    let root = if given.join(b.annotation()).is_file() {
        given.to_owned()
    } else if given.join(b.root()).join(b.annotation()).is_file() {
        given.join(b.root())
    } else {
        return Err(ImportError::File {
            file: given.display().to_string(),
            line: None,
            message: format!("no {} here or in {}/", b.annotation(), b.root()),
        });
    };
    let read = |name: &str| -> Result<(String, Vec<u8>), ImportError> {
        let p = root.join(name);
        Ok((p.display().to_string(), read_file_capped(&p, cap)?))
    };
    let annotation = read(b.annotation())?;
    let test_csv = read(b.test_csv())?;
    let mut inputs = Vec::new();
    let mut listing = Vec::new();
    for split in SPLITS {
        let zip = root.join(format!("{split}.zip"));
        let dir = root.join(split);
        if zip.is_file() {
            listing.push((split, zip_listing(&zip, &zip.display().to_string())?));
            inputs.push(zip);
        } else if dir.is_dir() {
            let items = crate::prepare::input::plan(std::slice::from_ref(&dir))?;
            let ids = items
                .iter()
                .filter_map(|i| chain_id(&i.name).map(|id| (id, i.path.display().to_string())))
                .collect();
            listing.push((split, ids));
            inputs.push(dir);
        } else {
            return Err(ImportError::File {
                file: root.display().to_string(),
                line: None,
                message: format!("no {split}.zip and no {split}/ folder"),
            });
        }
    }
    Ok(Source {
        archive: json!({"path": given.display().to_string(), "kind": "folder"}),
        annotation,
        test_csv,
        inputs,
        listing,
        _tmp: None,
    })
}

fn open_zip(
    b: Benchmark,
    given: &Path,
    tmp_parent: &Path,
    cap: u64,
) -> Result<Source, ImportError> {
    let label = given.display().to_string();
    let file = File::open(given).map_err(io(given))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| ImportError::File {
        file: label.clone(),
        line: None,
        message: format!("not a readable zip: {e}"),
    })?;
    let annot_member = zip
        .file_names()
        .filter(|n| n.rsplit('/').next() == Some(b.annotation()))
        .min_by_key(|n| n.len())
        .map(str::to_owned)
        .ok_or_else(|| ImportError::File {
            file: label.clone(),
            line: None,
            message: format!("no {} in the archive", b.annotation()),
        })?;
    let prefix = &annot_member[..annot_member.len() - b.annotation().len()];
    let mut read = |name: &str| -> Result<(String, Vec<u8>), ImportError> {
        let member = format!("{prefix}{name}");
        let name = format!("{label}/{member}");
        let f = zip.by_name(&member).map_err(|e| ImportError::File {
            file: name.clone(),
            line: None,
            message: format!("cannot read it: {e}"),
        })?;
        let claimed = f.size();
        let bytes = read_capped(f, Some(claimed), cap, &name)?;
        Ok((name, bytes))
    };
    let annotation = read(b.annotation())?;
    let test_csv = read(b.test_csv())?;
    let tmp = Scratch::create(tmp_parent)?;
    let mut inputs = Vec::new();
    let mut listing = Vec::new();
    for split in SPLITS {
        let member = format!("{prefix}{split}.zip");
        let path = tmp.path().join(format!("{split}.zip"));
        {
            let f = zip.by_name(&member).map_err(|e| ImportError::File {
                file: format!("{label}/{member}"),
                line: None,
                message: format!("cannot read it: {e}"),
            })?;
            let claimed = f.size();
            copy_capped(f, Some(claimed), cap, &format!("{label}/{member}"), &path)?;
        }
        listing.push((split, zip_listing(&path, &format!("{label}/{member}"))?));
        inputs.push(path);
    }
    let (bytes, sha256) = crate::dataset::write::sha256_file(given)?;
    Ok(Source {
        archive: json!({"path": label, "kind": "zip", "bytes": bytes, "sha256": sha256}),
        annotation,
        test_csv,
        inputs,
        listing,
        _tmp: Some(tmp),
    })
}

/// Counts per named split, for printing: `official: train 12, valid 3, test 4 (removed 1)`.
pub fn describe(counts: &SplitCounts) -> Vec<String> {
    counts
        .iter()
        .map(|(name, c)| {
            let get = |k: &str| c.get(k).copied().unwrap_or(0);
            let mut s = format!(
                "{name}: train {}, valid {}, test {}",
                get("train"),
                get("valid"),
                get("test")
            );
            if get("removed") > 0 {
                s += &format!(" ({} test chains removed by the cutoff)", get("removed"));
            }
            s
        })
        .collect()
}
