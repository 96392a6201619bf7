//! fusionprot-pipeline: structure files → residue graphs → versioned Parquet tables, and sequence
//! clusters → family-level splits. It knows nothing of the trainer; the trainer reads its tables
//! through the readers here.

pub mod graph;
pub mod input;
pub mod manifest;
pub mod mmseqs;
pub mod prepare;
pub mod protein;
pub mod read;
pub mod residue;
pub mod schema;
mod spill;
pub mod split;
pub mod structure;
mod write;

pub use prepare::{PrepareConfig, PrepareError, Summary, prepare};
pub use write::PartInfo;
