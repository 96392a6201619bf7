//! The trainer's typed errors.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model config {path}: {message}")]
    Config { path: String, message: String },
    /// A weights file that cannot be read, or whose contents are not what its format promises.
    #[error("{path}: {message}")]
    Checkpoint { path: String, message: String },
    /// A weights file that reads fine but does not fit the model (strict loading).
    #[error("{path}: the weights do not match the {model} model:\n{details}")]
    Mismatch {
        path: String,
        model: String,
        details: String,
    },
    #[error("hub: {0}")]
    Hub(String),
    /// A collective failed: a peer rank died or timed out (names this rank).
    #[error("{0}")]
    Distributed(String),
    #[error("{0}")]
    Input(String),
    /// A non-finite training loss: the run stops there, its checkpoints untouched.
    #[error(
        "training diverged: the loss is {loss} at epoch {epoch}, optimizer step {step}; lower optim.lr (now {lr}) \
         or check optim.weight_decay; the run's checkpoints are kept as they were{}",
        .last_checkpoint.as_ref().map(|c| format!(" (newest: {c})")).unwrap_or_default()
    )]
    Diverged {
        epoch: usize,
        step: i64,
        loss: f64,
        lr: f64,
        last_checkpoint: Option<String>,
    },
    #[error(transparent)]
    Read(#[from] fusionprot_pipeline::dataset::read::ReadError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl From<fusionprot_dist::DistError> for ModelError {
    fn from(e: fusionprot_dist::DistError) -> Self {
        ModelError::Distributed(e.to_string())
    }
}
