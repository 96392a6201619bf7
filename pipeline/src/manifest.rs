//! `DATASET/manifest.json`: what went in (every input with its sha256, every parameter), what came
//! out (every part with rows and sha256), and what failed. No wall-clock times, so the same inputs
//! and parameters give the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::protein::{Filtered, ProteinOptions};
use crate::write::PartInfo;

/// The manifest as written; [`serde_json::Value`] sections let later steps (splits) add theirs
/// without this crate knowing them in advance.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub tool: &'static str,
    pub tool_version: &'static str,
    pub dataset_schema_version: u32,
    pub parameters: Parameters,
    pub graph: GraphParameters,
    pub counts: Counts,
    pub tables: BTreeMap<&'static str, TableEntry>,
    pub inputs: Vec<InputEntry>,
    pub failures: Vec<Failure>,
    pub duplicates: Vec<Duplicate>,
    /// Proteins per AlphaFold DB version and the rule among copies ([`crate::afdb`]); only when
    /// some kept protein comes from an AFDB file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alphafold_db: Option<crate::afdb::AfdbSection>,
    /// Sections an import adds (`benchmark`, `splits`), written after the others.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The run's parameters, as given (after validation).
#[derive(Debug, Clone, Serialize)]
pub struct Parameters {
    /// Inputs exactly as named on the command line.
    pub inputs: Vec<String>,
    #[serde(flatten)]
    pub proteins: ProteinOptions,
    pub strict: bool,
    /// The size cap on one structure's bytes (file, archive member, decompressed gzip).
    pub max_file_bytes: u64,
    pub allow_empty: bool,
}

/// The fixed graph construction of spec §2.2, recorded so a reader need not trust the version.
#[derive(Debug, Clone, Serialize)]
pub struct GraphParameters {
    pub node: &'static str,
    pub sequential_max_distance: usize,
    pub radius_angstrom: f32,
    pub radius_max_neighbors: usize,
    pub radius_cap: &'static str,
    pub knn_k: usize,
    pub min_sequence_distance: usize,
    pub relations: [&'static str; 7],
}

impl GraphParameters {
    pub fn spec() -> Self {
        use crate::graph::*;
        Self {
            node: "alpha carbon of each polymer residue that has one",
            sequential_max_distance: SEQUENTIAL_MAX_DISTANCE,
            radius_angstrom: RADIUS_ANGSTROM,
            radius_max_neighbors: RADIUS_MAX_NEIGHBORS,
            radius_cap: "first 32 candidates in index order, before the sequence-distance filter",
            knn_k: KNN_K,
            min_sequence_distance: MIN_SEQUENCE_DISTANCE,
            relations: [
                "sequential -2 (r+2 -> r)",
                "sequential -1 (r+1 -> r)",
                "self-loop",
                "sequential +1 (r -> r+1)",
                "sequential +2 (r -> r+2)",
                "radius 10 A, |i-j| >= 5",
                "knn 10, |i-j| >= 5",
            ],
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    pub files: usize,
    pub files_failed: usize,
    pub proteins: usize,
    pub residues: u64,
    pub edges: u64,
    pub duplicates_skipped: usize,
    pub filtered: BTreeMap<Filtered, usize>,
    pub non_protein_chains: usize,
    pub waters: usize,
    pub ligands: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableEntry {
    pub schema: String,
    pub rows: u64,
    pub parts: Vec<PartInfo>,
}

impl TableEntry {
    /// The entry of `table` written as `parts`.
    pub fn new(table: crate::schema::Table, parts: Vec<PartInfo>) -> Self {
        Self {
            schema: table.schema_tag(),
            rows: parts.iter().map(|p| p.rows).sum(),
            parts,
        }
    }
}

/// One structure that was read (a file, or a member of an archive).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    pub proteins: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

/// A protein id seen again in a later input; the first one is kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Duplicate {
    pub protein_id: String,
    pub skipped: String,
    pub kept: String,
}

impl Manifest {
    /// Writes pretty JSON to `path` through a temporary file and a rename.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// Errors checking a dataset folder against its manifest.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a dataset manifest: {source}", .path.display())]
    Json {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
    #[error("{part} is listed in manifest.json but missing")]
    Missing { part: String },
    #[error("{part} has {found} bytes, manifest.json lists {listed}")]
    Size {
        part: String,
        listed: u64,
        found: u64,
    },
    #[error("{0}")]
    Link(String),
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub proteins: u64,
    pub parts: usize,
}

#[derive(Debug, Deserialize)]
struct StoredManifest {
    tables: BTreeMap<String, StoredTable>,
}

#[derive(Debug, Deserialize)]
struct StoredTable {
    rows: u64,
    parts: Vec<StoredPart>,
}

#[derive(Debug, Deserialize)]
struct StoredPart {
    path: String,
    bytes: u64,
}

/// Checks that every part `dataset/manifest.json` lists is there with the listed size (sizes,
/// not hashes: cheap enough for any dataset; `register` hashes), and for a linked dataset that
/// its shards' manifests are the ones it linked.
///
/// # Errors
/// A missing or unreadable manifest, a missing part, or a part of another size.
pub fn verify(dataset: &Path) -> Result<Verified, VerifyError> {
    let path = dataset.join("manifest.json");
    let text = std::fs::read(&path).map_err(|source| VerifyError::Io {
        path: path.clone(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|source| VerifyError::Json {
            path: path.clone(),
            source,
        })?;
    crate::link::verify_shards(dataset, &value).map_err(VerifyError::Link)?;
    let m: StoredManifest =
        serde_json::from_value(value).map_err(|source| VerifyError::Json { path, source })?;
    let mut parts = 0;
    for table in m.tables.values() {
        for part in &table.parts {
            let found = match dataset.join(&part.path).metadata() {
                Ok(meta) => meta.len(),
                Err(_) => {
                    return Err(VerifyError::Missing {
                        part: part.path.clone(),
                    });
                }
            };
            if found != part.bytes {
                return Err(VerifyError::Size {
                    part: part.path.clone(),
                    listed: part.bytes,
                    found,
                });
            }
            parts += 1;
        }
    }
    Ok(Verified {
        proteins: m.tables.get("proteins").map_or(0, |t| t.rows),
        parts,
    })
}
