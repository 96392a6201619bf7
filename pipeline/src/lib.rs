//! fusionprot-pipeline: structure files → residue graphs → versioned Parquet tables, and sequence
//! clusters → family-level splits. It knows nothing of the trainer; the trainer reads its tables
//! through the readers here.

pub mod afdb;
pub mod dataset;
mod failpoint;
pub mod graph;
#[cfg(feature = "import")]
pub mod import;
pub mod mmseqs;
pub mod prepare;
pub mod protein;
pub mod residue;
pub mod split;
pub mod structure;

pub use dataset::part::PartInfo;
pub use prepare::{
    Extension, PrepareConfig, PrepareError, Safeguards, Staged, Summary, prepare, prepare_extended,
    prepare_with,
};
