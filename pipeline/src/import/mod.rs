//! Benchmark imports (`fusionprot import ec|go|msp`): the archives exactly as TorchDrug and
//! Atom3D distribute them become datasets with `labels` (EC / GO) or `pairs` (MSP) and the
//! archive's official splits as named splits, in one journaled swap with the prepared tables.
//!
//! - [`annotation`]: the nrPDB annotation TSV and test CSV (polars);
//! - [`torchdrug`]: EC / GO archives (outer zip or folder, inner per-split zips of chain files);
//! - [`labels`]: the `labels/v1` table;
//! - [`lmdb`], [`atoms`], [`msp`]: Atom3D's LMDB, its atom data frames, MSP pairs;
//! - `scratch`: the scratch folder beside the output (stale ones of dead imports removed) and
//!   the `--max-file-mib` cap on every member read or unpacked.

pub mod annotation;
pub mod atoms;
pub mod fixture;
pub mod labels;
pub mod lmdb;
pub mod msp;
pub mod obo;
mod scratch;
pub mod torchdrug;

use std::path::PathBuf;

use crate::dataset::read::ReadError;
use crate::dataset::write::WriteError;
use crate::prepare::PrepareError;

pub use msp::{MspConfig, import_msp};
pub use torchdrug::{Benchmark, TorchDrugConfig, import_torchdrug};

/// The official splits' names: `official` at the chosen cutoff, `official-<cutoff>` for each.
pub use crate::dataset::splits::OFFICIAL;

/// Errors that stop an import; the dataset is then left as it was.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Bad content, naming the archive member (or file) and, when it has lines, the line.
    #[error("{file}{}: {message}", .line.map(|l| format!(", line {l}")).unwrap_or_default())]
    File {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// A bad LMDB record, naming the environment and the record key.
    #[error("{env}, record {key}{}: {message}", .id.as_ref().map(|i| format!(" ({i})")).unwrap_or_default())]
    Record {
        env: String,
        key: String,
        id: Option<String>,
        message: String,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Prepare(Box<PrepareError>),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Input(#[from] crate::prepare::input::InputError),
}

impl From<PrepareError> for ImportError {
    fn from(e: PrepareError) -> Self {
        match e {
            // An import's own error travelled through `prepare`: give it back as it was.
            PrepareError::Extension(inner) => match inner.downcast::<ImportError>() {
                Ok(mine) => *mine,
                Err(other) => ImportError::Invalid(other.to_string()),
            },
            other => ImportError::Prepare(Box::new(other)),
        }
    }
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Per named split, how many proteins each part holds: the import's summary and manifest.
pub type SplitCounts =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>;
