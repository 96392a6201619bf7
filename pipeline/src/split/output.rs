//! Writing: the `splits` table (staged in the work folder), its commit into the dataset with the
//! manifest's `split` section, and sequences-only datasets for tests and benchmarks.

use std::path::Path;

use super::config::{REMOVED, SPLIT_NAMES, SplitConfig, SplitError, io};
use super::proteins::Proteins;
use super::report::SplitReport;
use crate::dataset::part::PartInfo;
use crate::dataset::schema::Table;
use crate::dataset::splits::{self, SplitRow};
use crate::dataset::write::TableWriter;

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
    let mut batches = crate::dataset::batches::Batches::new();
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
    let tables = batches
        .take()
        .map_err(crate::dataset::write::WriteError::from)?;
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

/// Per sequence node: its MMseqs2 representative, first protein, component, split, removal and
/// identity to train.
pub(super) struct SplitColumns<'a> {
    pub(super) reps: &'a [u32],
    pub(super) first_protein: &'a [usize],
    pub(super) labels: &'a [u32],
    pub(super) split_of: &'a [u8],
    pub(super) removed: &'a [bool],
    /// Highest identity to a train node (valid / test nodes).
    pub(super) train_identity: &'a [Option<f32>],
}

/// Writes `splits/` into the work folder: this split's rows (one per protein) and the rows of
/// the dataset's other named splits, sorted by protein id and name.
pub(super) fn write_splits(
    cfg: &SplitConfig,
    work: &Path,
    p: &Proteins,
    node_of: &[u32],
    columns: &SplitColumns<'_>,
) -> Result<Vec<PartInfo>, SplitError> {
    let staging = work.join("out");
    let c = columns;
    let mut rows: Vec<SplitRow> = splits::read_splits(&cfg.dataset)?
        .into_iter()
        .filter(|r| r.name != cfg.name)
        .collect();
    for (id, &n) in p.ids.iter().zip(node_of) {
        let n = n as usize;
        rows.push(SplitRow {
            protein_id: id.clone(),
            name: cfg.name.clone(),
            split: if c.removed[n] {
                REMOVED
            } else {
                SPLIT_NAMES[c.split_of[n] as usize]
            }
            .to_owned(),
            cluster_id: Some(p.ids[c.first_protein[c.reps[n] as usize]].clone()),
            component_id: Some(c.labels[n] as i32),
            max_train_identity: c.train_identity[n],
        });
    }
    Ok(splits::write_splits(&staging, rows)?)
}

/// Moves `splits/` into the dataset (the old one aside first) and adds the `split` section to
/// the manifest through a temporary file.
pub(super) fn commit(
    cfg: &SplitConfig,
    work: &Path,
    report: &SplitReport,
) -> Result<(), SplitError> {
    let manifest_path = cfg.dataset.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let mut manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| SplitError::Io {
            path: manifest_path.clone(),
            source: std::io::Error::other(e),
        })?;
    let section = serde_json::to_value(report).map_err(|e| SplitError::Io {
        path: manifest_path.clone(),
        source: std::io::Error::other(e),
    })?;
    if let Some(m) = manifest.as_object_mut() {
        // Datasets split before named splits carry one unnamed `split` section; its table is gone.
        m.remove("split");
        let all = m.entry("splits").or_insert_with(|| serde_json::json!({}));
        if !all.is_object() {
            *all = serde_json::json!({});
        }
        all[cfg.name.as_str()] = section;
    }
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
