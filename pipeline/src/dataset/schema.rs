//! The dataset's table contracts: names, versions and Arrow schemas of `proteins`, `residues`,
//! `edges`, `splits`, and the benchmark tables `labels`, `pairs` and `go_terms`. A column change bumps the table's version (and [`DATASET_SCHEMA_VERSION`] when older readers of
//! the layout would misread it; a nullable column added to one table, with the older version still
//! read, does not); readers check the `fusionprot.schema` key in each part's metadata. Documented in ARCHITECTURE.md.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// Version of the dataset layout as a whole (tables, manifest).
pub const DATASET_SCHEMA_VERSION: u32 = 2;

/// Parquet key-value metadata key carrying `<table>/v<N>`.
pub const SCHEMA_KEY: &str = "fusionprot.schema";

/// The tables `prepare` writes, each a folder of Parquet parts under the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    Proteins,
    Residues,
    Edges,
    /// Named splits (`split --name`, an import's official splits): one row per protein and name.
    Splits,
    /// Benchmark labels (`import ec|go`): per protein and task, label indices in the vocabulary.
    Labels,
    /// MSP mutant / wild-type pairs (`import msp`).
    Pairs,
    /// Gene Ontology terms with their depth (`import go --obo`): one row per term id, not per
    /// protein.
    GoTerms,
}

impl Table {
    /// The tables `prepare` writes.
    pub const PREPARED: [Table; 3] = [Table::Proteins, Table::Residues, Table::Edges];
    pub const ALL: [Table; 7] = [
        Table::Proteins,
        Table::Residues,
        Table::Edges,
        Table::Splits,
        Table::Labels,
        Table::Pairs,
        Table::GoTerms,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Proteins => "proteins",
            Table::Residues => "residues",
            Table::Edges => "edges",
            Table::Splits => "splits",
            Table::Labels => "labels",
            Table::Pairs => "pairs",
            Table::GoTerms => "go_terms",
        }
    }

    pub fn version(self) -> u32 {
        match self {
            // v2: named splits (`name`), cluster and component nullable (official splits have none).
            // v3: `max_train_identity` (certified splits: each protein's highest identity to train).
            Table::Splits => 3,
            _ => 1,
        }
    }

    /// Older versions this fusionprot still reads: their columns are the current ones less those
    /// added after them ([`Table::added_columns`]); readers take the missing ones as null.
    pub fn older_readable(self) -> &'static [u32] {
        match self {
            Table::Splits => &[2],
            _ => &[],
        }
    }

    /// Columns added to the table after its first readable version, with the version that added
    /// each (all nullable).
    fn added_columns(self) -> &'static [(&'static str, u32)] {
        match self {
            Table::Splits => &[("max_train_identity", 3)],
            _ => &[],
        }
    }

    /// The Arrow schema of `version` of this table: the current one, or a readable older one.
    pub fn arrow_schema_of(self, version: u32) -> Option<SchemaRef> {
        if version == self.version() {
            return Some(self.arrow_schema());
        }
        if !self.older_readable().contains(&version) {
            return None;
        }
        let added = self.added_columns();
        let fields: Vec<Field> = self
            .arrow_schema()
            .fields()
            .iter()
            .filter(|f| !added.iter().any(|(c, v)| c == f.name() && *v > version))
            .map(|f| f.as_ref().clone())
            .collect();
        Some(Arc::new(Schema::new(fields)))
    }

    /// `residues/v1`: the value of [`SCHEMA_KEY`].
    pub fn schema_tag(self) -> String {
        format!("{}/v{}", self.name(), self.version())
    }

    /// Rows per row group: small enough that fetching one protein reads little, large enough
    /// for good compression. Sorted by `protein_id`, so row-group statistics locate a protein.
    pub(crate) fn row_group_rows(self) -> usize {
        match self {
            Table::Proteins | Table::Splits | Table::Labels | Table::Pairs | Table::GoTerms => {
                8_192
            }
            Table::Residues => 65_536,
            Table::Edges => 262_144,
        }
    }

    /// A part is closed at the first protein boundary after this many rows.
    pub(crate) fn part_rows(self) -> usize {
        match self {
            Table::Proteins | Table::Splits | Table::Labels | Table::Pairs | Table::GoTerms => {
                1_000_000
            }
            Table::Residues => 8_000_000,
            Table::Edges => 64_000_000,
        }
    }

    pub fn arrow_schema(self) -> SchemaRef {
        let f = |name: &str, ty: DataType, nullable: bool| Field::new(name, ty, nullable);
        let fields = match self {
            Table::Proteins => vec![
                f("protein_id", DataType::Utf8, false),
                f("entry_id", DataType::Utf8, false),
                f("chain_id", DataType::Utf8, false),
                f("sequence", DataType::Utf8, false),
                f("num_residues", DataType::Int32, false),
                f("num_residues_in_file", DataType::Int32, false),
                f("source", DataType::Utf8, false),
                f("source_sha256", DataType::Utf8, false),
                f("format", DataType::Utf8, false),
                f("mean_plddt", DataType::Float32, true),
                f("method", DataType::Utf8, true),
                f("resolution_angstrom", DataType::Float32, true),
                f(
                    "ec_numbers",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
                    false,
                ),
                f("title", DataType::Utf8, true),
            ],
            Table::Residues => vec![
                f("protein_id", DataType::Utf8, false),
                f("residue_index", DataType::Int32, false),
                f("residue_name", DataType::Utf8, false),
                f("residue_type", DataType::Int8, false),
                f("chain_id", DataType::Utf8, false),
                f("residue_number", DataType::Int32, false),
                f("insertion_code", DataType::Utf8, true),
                f("x", DataType::Float32, false),
                f("y", DataType::Float32, false),
                f("z", DataType::Float32, false),
                f("b_factor", DataType::Float32, false),
            ],
            Table::Edges => vec![
                f("protein_id", DataType::Utf8, false),
                f("src", DataType::Int32, false),
                f("dst", DataType::Int32, false),
                f("relation", DataType::Int8, false),
            ],
            Table::Splits => vec![
                f("protein_id", DataType::Utf8, false),
                f("name", DataType::Utf8, false),
                f("split", DataType::Utf8, false),
                f("cluster_id", DataType::Utf8, true),
                f("component_id", DataType::Int32, true),
                f("max_train_identity", DataType::Float32, true),
            ],
            Table::Labels => vec![
                f("protein_id", DataType::Utf8, false),
                f("task", DataType::Utf8, false),
                f("label_index", int_list(), false),
            ],
            Table::Pairs => vec![
                f("protein_id", DataType::Utf8, false),
                f("wild_type_id", DataType::Utf8, false),
                f("mutation", DataType::Utf8, false),
                f("mutated_residues", int_list(), false),
                f("label", DataType::Int8, false),
                f("window_start", DataType::Int32, false),
                f("window_length", DataType::Int32, false),
            ],
            Table::GoTerms => vec![
                f("term_id", DataType::Utf8, false),
                f("primary_id", DataType::Utf8, false),
                f("namespace", DataType::Utf8, false),
                f("name", DataType::Utf8, false),
                f("depth", DataType::Int32, false),
                f("level", DataType::Int32, false),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

fn int_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Int32, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_starts_with_protein_id_for_sorting_and_lookup() {
        // go_terms is keyed by term, sorted by term_id
        for t in Table::ALL.into_iter().filter(|t| *t != Table::GoTerms) {
            assert_eq!(
                t.arrow_schema().field(0).name(),
                "protein_id",
                "{}",
                t.name()
            );
        }
        assert_eq!(Table::Residues.schema_tag(), "residues/v1");
    }
}
