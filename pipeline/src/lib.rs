//! fusionprot-pipeline: structure files → residue graphs → versioned Parquet tables, and sequence
//! clusters → family-level splits. It knows nothing of the trainer; the trainer reads its tables
//! through the readers here.

pub mod access;
pub mod afdb;
mod failpoint;
pub mod graph;
mod ids;
#[cfg(feature = "import")]
pub mod import;
pub mod input;
pub mod link;
pub mod manifest;
pub mod merge;
pub mod mmseqs;
pub mod prepare;
pub mod protein;
pub mod read;
pub mod residue;
pub mod schema;
pub mod shard;
mod spill;
pub mod split;
pub mod splits;
pub mod structure;
pub mod swap;
mod write;

pub use prepare::{
    Extension, PrepareConfig, PrepareError, Safeguards, Staged, Summary, prepare, prepare_extended,
    prepare_with,
};
pub use write::PartInfo;
