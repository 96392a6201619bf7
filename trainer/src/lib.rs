//! fusionprot-trainer: ESM-2, GearNet and FusionProt on libtorch through `tch`, and what they need
//! around them (devices, checkpoints, training, metrics). It reads the pipeline's tables and knows
//! nothing of the tracker.

pub mod runtime;

pub use tch::Device;
