//! fusionprot-pipeline: structure files → residue graphs → versioned Parquet tables, and sequence
//! clusters → family-level splits. It knows nothing of the trainer; the trainer reads its tables
//! through the readers here.

mod failpoint;
pub mod graph;
mod ids;
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
pub mod swap;
mod write;

pub use prepare::{PrepareConfig, PrepareError, Safeguards, Summary, prepare, prepare_with};
pub use write::PartInfo;
