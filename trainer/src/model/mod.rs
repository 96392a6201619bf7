//! The networks: ESM-2, GearNet and the models built from them.

pub mod batch;
pub mod esm;
pub mod fusion;
pub mod gearnet;
pub mod layers;

pub use batch::{Batch, ProteinGraph};
pub use fusion::{Model, Output};
