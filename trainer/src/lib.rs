//! fusionprot-trainer: ESM-2, GearNet and FusionProt on libtorch through `tch`, and what they need
//! around them (devices, checkpoints, embedding, training, metrics). It reads the pipeline's
//! tables and knows nothing of the tracker.

pub mod config;
pub mod data;
pub mod embed;
pub mod error;
pub use fusionprot_metrics as metrics;
pub mod model;
pub mod runtime;
pub mod store;
pub mod train;
pub mod weights;

pub use config::{ModelConfig, ModelKind};
pub use error::ModelError;
pub use model::{Batch, Model, Output, ProteinGraph};
pub use tch::Device;
