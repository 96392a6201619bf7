//! fusionprot-tracker: records experiments, runs, metrics and checkpoints in SQLite behind an
//! MLflow-compatible REST API, and answers SQL over results and datasets through DuckDB (feature
//! `sql`). It stores numbers, paths and hashes, and knows nothing of tch or the trainer.

pub mod api;
pub mod artifacts;
pub mod client;
pub mod dashboard;
pub mod dataset_files;
pub mod engines;
pub mod error;
pub mod filter;
pub mod migrate;
pub mod model;
pub mod openapi;
pub mod registry;
pub mod server;
#[cfg(feature = "sql")]
pub mod sql;
pub mod store;

pub use error::{ErrorCode, TrackerError};
pub use server::{ServeConfig, serve};
pub use store::{Durability, Store};
