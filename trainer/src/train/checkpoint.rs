//! A run's checkpoints: `checkpoints/epoch-NNNN[-step-NNNNNNN]/` with the weights (BatchNorm
//! statistics included), the optimizer's state and the loop's state, written under a temporary
//! name and renamed into place; pruned to the newest `keep` and the best.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::adamw::AdamW;
use super::plateau::Plateau;
use crate::error::ModelError;
use crate::model::Model;

/// The metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub epoch: usize,
    pub step: i64,
    pub valid: BTreeMap<String, f64>,
    pub test: BTreeMap<String, f64>,
    /// With `data.evaluate_train`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub train: BTreeMap<String, f64>,
}

/// The loop's state, saved in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: i64,
    /// Accumulation groups of the current epoch already done (a checkpoint taken mid-epoch).
    #[serde(default)]
    pub groups_done: usize,
    pub plateau: Option<Plateau>,
    /// Index into `evaluations` of the best validation metric.
    pub best: Option<usize>,
    /// With `optim.amp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaler: Option<super::scaler::LossScaler>,
    pub evaluations: Vec<Evaluation>,
    /// The ranks of the data-parallel job that wrote it (1 alone): a run resumed on another
    /// number keeps the global batch (`optim.micro_batch` × ranks).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub ranks: usize,
}

fn one() -> usize {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_one(n: &usize) -> bool {
    *n == 1
}

/// A checkpoint just written.
#[derive(Debug, Clone)]
pub struct Saved {
    /// `epoch-NNNN` (or `epoch-NNNN-step-NNNNNNN` mid-epoch).
    pub name: String,
    pub dir: PathBuf,
    /// Of `model.safetensors`.
    pub sha256: String,
}

/// The newest checkpoint folder of a run.
pub fn newest(out: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("epoch-"))
        })
        .collect();
    dirs.sort();
    dirs.pop()
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Where a run starts: with `resume`, its newest checkpoint (an error when there is none);
/// otherwise nothing, refusing a folder that already holds checkpoints. Creates `out/checkpoints`.
///
/// # Errors
/// As above, or the folder cannot be created.
pub(crate) fn resume_point(out: &Path, resume: bool) -> Result<Option<PathBuf>, ModelError> {
    let found = newest(out);
    let from = match (resume, found) {
        (true, Some(dir)) => Some(dir),
        (true, None) => {
            return Err(ModelError::Input(format!(
                "--resume: no checkpoint in {}/checkpoints",
                out.display()
            )));
        }
        (false, Some(_)) => {
            return Err(ModelError::Input(format!(
                "{} already holds checkpoints: pass --resume to continue that run, or choose another --out",
                out.display()
            )));
        }
        (false, None) => None,
    };
    std::fs::create_dir_all(out.join("checkpoints")).map_err(|source| ModelError::Io {
        path: out.to_owned(),
        source,
    })?;
    Ok(from)
}

/// The folder name of the best evaluation's checkpoint.
pub fn best_name(state: &State) -> Option<String> {
    state
        .best
        .map(|b| format!("epoch-{:04}", state.evaluations[b].epoch))
}

/// Writes `checkpoints/epoch-NNNN/` (weights, optimizer state, loop state) under a temporary
/// name, renames it into place, then prunes all but the newest `keep` and the best.
pub(crate) fn save(
    out: &Path,
    model: &Model,
    opt: &AdamW,
    state: &State,
    keep: usize,
) -> Result<Saved, ModelError> {
    let dir = out.join("checkpoints");
    // Mid-epoch (Ctrl-C) checkpoints sort after their epoch's start and before the next epoch.
    let name = if state.groups_done > 0 {
        format!("epoch-{:04}-step-{:07}", state.epoch, state.step)
    } else {
        format!("epoch-{:04}", state.epoch)
    };
    let tmp = dir.join(format!(".tmp-{name}"));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ModelError::Io { path, source }
    };
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    model
        .vs
        .save(tmp.join("model.safetensors"))
        .map_err(|e| ModelError::Checkpoint {
            path: tmp.display().to_string(),
            message: e.to_string(),
        })?;
    opt.save(&tmp.join("optimizer.safetensors"))?;
    let text = serde_json::to_string_pretty(state).map_err(|e| ModelError::Input(e.to_string()))?;
    std::fs::write(tmp.join("state.json"), text).map_err(io(&tmp))?;
    // What `--resume` checks before it uses the checkpoint.
    let mut sums = BTreeMap::new();
    for file in CHECKED {
        sums.insert(file, crate::weights::load::sha256_file(&tmp.join(file))?.1);
    }
    let sha256 = sums["model.safetensors"].clone();
    let text = serde_json::to_string_pretty(&sums).map_err(|e| ModelError::Input(e.to_string()))?;
    std::fs::write(tmp.join(CHECKSUMS), text).map_err(io(&tmp))?;
    let target = dir.join(&name);
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    let best = best_name(state);
    let mut all: Vec<String> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("epoch-"))
        .collect();
    all.sort();
    let newest: Vec<String> = all.iter().rev().take(keep.max(1)).cloned().collect();
    for n in all {
        if !newest.contains(&n) && best.as_deref() != Some(n.as_str()) {
            std::fs::remove_dir_all(dir.join(&n)).map_err(io(&dir.join(&n)))?;
        }
    }
    Ok(Saved {
        name,
        dir: target,
        sha256,
    })
}

/// The files of a checkpoint whose sha256 `checksums.json` records.
const CHECKED: [&str; 3] = ["model.safetensors", "optimizer.safetensors", "state.json"];
const CHECKSUMS: &str = "checksums.json";

/// Checks each file of a checkpoint against the sha256 written with it. Checkpoints written
/// before checksums were recorded are used with a warning.
///
/// # Errors
/// A file changed or damaged since the checkpoint was written, named with both hashes.
pub fn verify(dir: &Path) -> Result<(), ModelError> {
    let path = dir.join(CHECKSUMS);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(checkpoint = %dir.display(), "no checksums.json (written by an older fusionprot): its files are not verified");
            return Ok(());
        }
        Err(source) => return Err(ModelError::Io { path, source }),
    };
    let sums: BTreeMap<String, String> =
        serde_json::from_slice(&text).map_err(|e| ModelError::Checkpoint {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    for file in CHECKED {
        let want = sums.get(file).ok_or_else(|| ModelError::Checkpoint {
            path: path.display().to_string(),
            message: format!("no sha256 for {file}"),
        })?;
        let (_, found) = crate::weights::load::sha256_file(&dir.join(file))?;
        if &found != want {
            return Err(ModelError::Checkpoint {
                path: dir.join(file).display().to_string(),
                message: format!(
                    "sha256 {found}, but the checkpoint was written with {want}: the file changed or is damaged; \
                     remove this checkpoint folder to resume from the one before it"
                ),
            });
        }
    }
    Ok(())
}

/// Loads a checkpoint's weights and optimizer state after checking their sha256; returns its
/// loop state.
pub(crate) fn load(dir: &Path, model: &mut Model, opt: &mut AdamW) -> Result<State, ModelError> {
    verify(dir)?;
    model
        .vs
        .load(dir.join("model.safetensors"))
        .map_err(|e| ModelError::Checkpoint {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    opt.load(&dir.join("optimizer.safetensors"))?;
    let text =
        std::fs::read_to_string(dir.join("state.json")).map_err(|source| ModelError::Io {
            path: dir.join("state.json"),
            source,
        })?;
    serde_json::from_str(&text).map_err(|e| ModelError::Checkpoint {
        path: dir.join("state.json").display().to_string(),
        message: e.to_string(),
    })
}
