//! fusionprot-pipeline: structure files → residue graphs → versioned Parquet tables, and sequence
//! clusters → family-level splits. It knows nothing of the trainer; the trainer reads its tables
//! through the readers here.

pub mod mmseqs;
