//! Where a run reports ([`RunLog`]): the CLI wires it to the tracker; the trainer knows nothing
//! of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where a run reports: the CLI wires it to the tracker; the trainer knows nothing of it.
pub trait RunLog {
    fn params(&mut self, params: &[(String, String)]);
    fn metric(&mut self, key: &str, value: f64, step: i64);
    /// Called after each checkpoint: what was logged up to it must not be lost to a crash,
    /// since a resumed run does not log it again.
    fn flush(&mut self) {}
    /// A checkpoint was written (at an evaluation, or at a stop).
    fn checkpoint(&mut self, _record: &CheckpointRecord) {}
    /// A file of the run folder worth keeping with the run (`artifact_path` relative).
    fn artifact(&mut self, _path: &Path, _artifact_path: &str) {}
}

/// What the tracker records about a checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointRecord {
    /// `epoch-NNNN` (folder under `checkpoints/`).
    pub name: String,
    pub path: PathBuf,
    /// Of its `model.safetensors`.
    pub sha256: String,
    pub epoch: usize,
    pub step: i64,
    /// The evaluation it was written at (`valid/…`, `test/…`); empty at a stop.
    pub metrics: BTreeMap<String, f64>,
    /// The best validation metric so far.
    pub best: bool,
}

/// A log that drops everything.
#[derive(Debug, Default)]
pub struct NoLog;

impl RunLog for NoLog {
    fn params(&mut self, _: &[(String, String)]) {}
    fn metric(&mut self, _: &str, _: f64, _: i64) {}
}
