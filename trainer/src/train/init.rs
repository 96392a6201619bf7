//! `model.init`: a run of ours as another run's starting weights (a pre-training run for
//! fine-tuning, or a fine-tuning run to continue from). The path may be the run folder, one of
//! its checkpoint folders, `RUN/checkpoints/best` (the best evaluation's checkpoint, or for a run
//! that does not evaluate, as pre-training, its newest), or a weights file (an exported
//! `model.safetensors`). The run's head (`mlp.*`: the projection, the classifier) is dropped; the
//! rest must fit the model key by key ([`crate::weights::load::build_without`]).

use std::path::{Path, PathBuf};

use super::checkpoint::{self, State};
use crate::error::ModelError;

/// The weights file `init` names.
///
/// # Errors
/// Nothing there, a run folder without checkpoints, an unreadable `state.json`.
pub fn resolve(init: &Path) -> Result<PathBuf, ModelError> {
    let missing = |why: &str| {
        ModelError::Input(format!(
            "model.init {}: {why}; give a run folder, RUN/checkpoints/epoch-NNNN, RUN/checkpoints/best or a model.safetensors",
            init.display()
        ))
    };
    if init.is_file() {
        return Ok(init.to_owned());
    }
    if init.join("model.safetensors").is_file() {
        return Ok(init.join("model.safetensors"));
    }
    let run = if init.file_name().is_some_and(|n| n == "best")
        && init
            .parent()
            .is_some_and(|p| p.file_name().is_some_and(|n| n == "checkpoints"))
    {
        init.parent().and_then(Path::parent).unwrap_or(init)
    } else {
        init
    };
    let newest = checkpoint::newest(run).ok_or_else(|| missing("no checkpoint there"))?;
    let text =
        std::fs::read_to_string(newest.join("state.json")).map_err(|source| ModelError::Io {
            path: newest.join("state.json"),
            source,
        })?;
    let state: State = serde_json::from_str(&text).map_err(|e| ModelError::Checkpoint {
        path: newest.join("state.json").display().to_string(),
        message: e.to_string(),
    })?;
    let dir = match checkpoint::best_name(&state) {
        Some(best) if run.join("checkpoints").join(&best).is_dir() => {
            run.join("checkpoints").join(best)
        }
        _ => newest,
    };
    checkpoint::verify(&dir)?;
    Ok(dir.join("model.safetensors"))
}
