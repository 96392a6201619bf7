//! `DATASET/manifest.json`: what went in (every input with its sha256, every parameter), what came
//! out (every part with rows and sha256), and what failed. No wall-clock times, so the same inputs
//! and parameters give the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use super::part::TableEntry;
use crate::protein::{Filtered, ProteinOptions};

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

/// A dataset's `manifest.json` as read back — by the trainer, the CLI and the tracker alike: the
/// sections readers use, typed, and every other key kept as it was (`parameters`, `inputs`, an
/// import's `splits`, a merge's `shards`, sections of a later version), so that what is read can
/// be stored or sent on without loss. Only `dataset_schema_version` and `tables` are required
/// (what a tracking client must send to register a dataset by its manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_version: String,
    pub dataset_schema_version: u32,
    /// Every table with its parts (a `merge --link` dataset's point into its shards), exactly as
    /// written: the content hash is taken over it; [`Recorded::table`] reads one typed.
    pub tables: serde_json::Map<String, serde_json::Value>,
    /// What an import adds: the benchmark's tasks with their vocabularies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<Benchmark>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One table of [`Recorded`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedTable {
    pub schema: String,
    pub rows: u64,
    pub parts: Vec<RecordedPart>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One part of a [`RecordedTable`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedPart {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The `benchmark` section an import writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    #[serde(default)]
    pub tasks: Vec<BenchmarkTask>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One task of a benchmark: its name, label count and label vocabulary in label-index order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkTask {
    pub task: String,
    #[serde(default)]
    pub size: usize,
    #[serde(default)]
    pub terms: Vec<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A manifest that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Not JSON, or a section of the wrong shape (serde names the field and the line).
    #[error("{}: not a fusionprot dataset manifest: {source}", .path.display())]
    Json {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
}

impl Recorded {
    /// Reads `DATASET/manifest.json`.
    ///
    /// # Errors
    /// Unreadable, not JSON, or without the sections every manifest has.
    pub fn read(dataset: &Path) -> Result<Recorded, ManifestError> {
        let path = dataset.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ManifestError::Json { path, source })
    }

    /// A manifest sent as JSON (a tracking client registering a dataset by its manifest).
    ///
    /// # Errors
    /// Without the sections every manifest has, or with one of the wrong shape.
    pub fn from_value(value: serde_json::Value) -> Result<Recorded, serde_json::Error> {
        serde_json::from_value(value)
    }

    /// The `identity_to_train` statement of split `name`'s section (`fusionprot split` records it
    /// with `splits.max_train_identity`); `None` for imported splits and older certificates.
    pub fn identity_to_train(&self, name: &str) -> Option<&str> {
        self.other
            .get("splits")?
            .get(name)?
            .get("identity_to_train")?
            .as_str()
    }

    /// The manifest as JSON, every key it was read with included.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The dataset's content hash: sha256 of its `tables` section (every part's rows, bytes and
    /// sha256) as canonical JSON (keys sorted), so it names the data, not where it lies.
    pub fn content_hash(&self) -> String {
        use sha2::Digest;
        let canonical = serde_json::Value::Object(self.tables.clone()).to_string();
        super::part::hex(&sha2::Sha256::digest(canonical.as_bytes()))
    }

    /// One table's entry, typed.
    ///
    /// # Errors
    /// The entry has another shape (names the field).
    pub fn table(&self, name: &str) -> Option<Result<RecordedTable, serde_json::Error>> {
        self.tables
            .get(name)
            .map(|v| serde_json::from_value(v.clone()))
    }

    /// The task named `task` of the benchmark this dataset was imported from.
    pub fn task(&self, task: &str) -> Option<&BenchmarkTask> {
        self.benchmark
            .as_ref()
            .and_then(|b| b.tasks.iter().find(|t| t.task == task))
    }

    /// The benchmark's task names, in the manifest's order.
    pub fn task_names(&self) -> Vec<&str> {
        self.benchmark
            .iter()
            .flat_map(|b| b.tasks.iter().map(|t| t.task.as_str()))
            .collect()
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
    Link(#[from] crate::dataset::link::LinkError),
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
    crate::dataset::link::verify_shards(dataset, &value)?;
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

#[cfg(test)]
mod recorded_tests {
    use super::*;

    #[test]
    fn a_manifest_read_back_keeps_every_key_and_its_content_hash() {
        let text = r#"{
          "tool": "fusionprot", "tool_version": "0.1.0", "dataset_schema_version": 2,
          "parameters": {"inputs": ["a.pdb"], "truncate": null},
          "tables": {"proteins": {"schema": "proteins/v1", "rows": 1,
            "parts": [{"path": "proteins/part-00000.parquet", "rows": 1, "bytes": 9, "sha256": "ab"}]}},
          "benchmark": {"kind": "ec", "tasks": [{"task": "ec", "size": 2, "terms": ["1.1.1.1", "2.7.7.7"], "weights": [1, 2]}]},
          "splits": {"official": {"kind": "official"}},
          "from_the_future": {"x": [1, 2, 3]}
        }"#;
        let v: serde_json::Value = serde_json::from_str(text).expect("json");
        let m = Recorded::from_value(v.clone()).expect("a manifest");
        assert_eq!(m.to_value(), v, "read and written back, nothing lost");
        assert_eq!(m.task_names(), ["ec"]);
        let ec = m.task("ec").expect("ec");
        assert_eq!((ec.size, ec.terms.len()), (2, 2));
        assert!(m.task("go-bp").is_none());
        let t = m.table("proteins").expect("proteins").expect("typed");
        assert_eq!((t.rows, t.parts[0].bytes), (1, 9));
        // The hash the tracker always took: sha256 of the `tables` value as canonical JSON.
        use sha2::Digest;
        let old =
            crate::dataset::part::hex(&sha2::Sha256::digest(v["tables"].to_string().as_bytes()));
        assert_eq!(m.content_hash(), old);

        for (bad, field) in [
            (r#"{"tables": {}}"#, "dataset_schema_version"),
            (r#"{"dataset_schema_version": 1}"#, "tables"),
            (
                r#"{"dataset_schema_version": 1, "tables": {}, "benchmark": {"tasks": [{"size": 1}]}}"#,
                "task",
            ),
        ] {
            let e = Recorded::from_value(serde_json::from_str(bad).expect("json"))
                .expect_err(bad)
                .to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }
}
