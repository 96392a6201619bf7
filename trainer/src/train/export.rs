//! `fusionprot export`: a run's checkpoint as the reference's state dict — the names and tensors
//! `FusionNetwork.state_dict()` has (TorchDrug `EvolutionaryScaleModeling` around fair-esm's ESM2,
//! GearNet, the fusion token and its linears), so that the reference's own code loads it with
//! `load_state_dict(strict=True)`. The run's head (`mlp.*`: a projection or a classifier, not part
//! of the network) is left out; the buffers we recompute instead of storing are written as the
//! reference holds them: each ESM block's rotary `inv_freq` and the LM head's weight, tied to the
//! token embedding. A manifest beside the file names the checkpoint (path, sha256), the model and
//! what was left out.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use super::checkpoint::write_atomic;
use super::config::ModelSection;
use super::init;
use crate::error::ModelError;
use crate::model::Model;
use crate::weights::load::{ModelSpec, build_without};

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The checkpoint's weights file that was read.
    pub source: PathBuf,
    /// Tensors written.
    pub tensors: usize,
    /// Tensors of the checkpoint left out (the head).
    pub dropped: usize,
    pub manifest: PathBuf,
}

/// The `[model]` section of a run's `config.toml` (fine-tuning or pre-training); the rest is not
/// this module's business.
#[derive(Debug, Deserialize)]
struct RunModel {
    model: ModelSection,
}

/// The model's state dict under the reference's names, sorted by name, ready to write.
pub fn reference_state_dict(model: &Model) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> = model
        .vs
        .variables()
        .into_iter()
        .map(|(k, t)| (k, t.detach().to_device(Device::Cpu)))
        .collect();
    if model.kind.uses_esm() {
        let esm = &model.config.esm;
        let p = model.esm_prefix;
        // fair-esm's RotaryEmbedding: 1 / 10000^(arange(0, d, 2) / d), d the head width.
        let d = esm.head_dim() as i64;
        let inv_freq = (Tensor::arange_start_step(0, d, 2, (Kind::Float, Device::Cpu))
            .to_kind(Kind::Float)
            / d as f64)
            .multiply_scalar(10000f64.ln())
            .exp()
            .reciprocal();
        for i in 0..esm.layers {
            out.push((
                format!("{p}layers.{i}.self_attn.rot_emb.inv_freq"),
                inv_freq.copy(),
            ));
        }
        // ESM2's lm_head.weight is embed_tokens.weight (tied): the state dict holds both.
        if let Some((_, embed)) = out
            .iter()
            .find(|(k, _)| *k == format!("{p}embed_tokens.weight"))
        {
            let tied = embed.copy();
            out.push((format!("{p}lm_head.weight"), tied));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Exports the checkpoint `input` names (a run folder, `RUN/checkpoints/epoch-NNNN`,
/// `RUN/checkpoints/best`, or such a folder's `model.safetensors`) to `out`, with
/// `out.manifest.json` beside it. The model's kind and sizes come from the run's `config.toml`.
///
/// # Errors
/// No checkpoint there, a checkpoint whose checksums fail, no run `config.toml` above it, weights
/// that do not fit the run's model, I/O.
pub fn export(input: &Path, out: &Path) -> Result<Exported, ModelError> {
    let weights = init::resolve(input)?;
    // RUN/checkpoints/NAME/model.safetensors → RUN.
    let run = weights
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .filter(|r| r.join("config.toml").is_file())
        .ok_or_else(|| {
            ModelError::Input(format!(
                "{}: not inside a run folder (no RUN/config.toml two levels above the checkpoint); export reads the model's kind and sizes from it",
                weights.display()
            ))
        })?;
    let config_path = run.join("config.toml");
    let text = std::fs::read_to_string(&config_path).map_err(|source| ModelError::Io {
        path: config_path.clone(),
        source,
    })?;
    let section = toml::from_str::<RunModel>(&text)
        .map_err(|e| ModelError::Config {
            path: config_path.display().to_string(),
            message: e.to_string(),
        })?
        .model;
    let kind = section.kind;
    let loaded = build_without(
        &ModelSpec {
            kind,
            config: section.config.clone(),
            checkpoint: Some(weights.clone()),
            esm: None,
            random_init: false,
            device: Device::Cpu,
            seed: 0,
        },
        &["mlp."],
    )?;
    let tensors = reference_state_dict(&loaded.model);
    let dropped = loaded.provenance["dropped"]["tensors"]
        .as_u64()
        .unwrap_or(0) as usize;
    let tmp = out.with_extension("safetensors.tmp");
    Tensor::write_safetensors(&tensors, &tmp).map_err(|e| ModelError::Checkpoint {
        path: tmp.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::rename(&tmp, out).map_err(|source| ModelError::Io {
        path: out.to_owned(),
        source,
    })?;
    let manifest = PathBuf::from(format!("{}.manifest.json", out.display()));
    let body = json!({
        "format": "fusionprot-export/v1",
        "names": "reference (FusionNetwork.state_dict)",
        "model": { "kind": kind.name(), "config": section.config, "sizes": serde_json::to_value(&loaded.model.config).unwrap_or_default() },
        "source": loaded.provenance["checkpoint"],
        "run": run.display().to_string(),
        "tensors": tensors.len(),
        "dropped": { "prefixes": ["mlp."], "tensors": dropped },
        "added": "rot_emb.inv_freq per ESM block and lm_head.weight (tied to embed_tokens.weight)",
    });
    write_atomic(
        &manifest,
        serde_json::to_string_pretty(&body)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(Exported {
        source: weights,
        tensors: tensors.len(),
        dropped,
        manifest,
    })
}
