//! One table's parts as a manifest lists them: each part's path, rows, bytes and sha256.

use serde::Serialize;

use super::schema::Table;

/// One written part, as the manifest lists it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PartInfo {
    /// Path relative to the dataset folder, e.g. `residues/part-00000.parquet`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableEntry {
    pub schema: String,
    pub rows: u64,
    pub parts: Vec<PartInfo>,
}

impl TableEntry {
    /// The entry of `table` written as `parts`.
    pub fn new(table: Table, parts: Vec<PartInfo>) -> Self {
        Self {
            schema: table.schema_tag(),
            rows: parts.iter().map(|p| p.rows).sum(),
            parts,
        }
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
