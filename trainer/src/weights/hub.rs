//! ESM-2 weights by name: a local file or folder, or a HuggingFace hub repository id
//! (`facebook/esm2_t33_650M_UR50D`) looked up in the hub cache (`$HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, the layout `huggingface_hub` writes) and
//! downloaded into it with the hub client when missing and online (`HF_HUB_OFFLINE=1` forbids
//! it; `HF_ENDPOINT` points at a mirror).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::EsmConfig;
use crate::error::ModelError;

/// Weights found for an ESM source.
#[derive(Debug, Clone)]
pub struct EsmWeights {
    pub weights: PathBuf,
    /// HuggingFace `config.json`, when the source has one.
    pub config: Option<HfEsmConfig>,
}

/// The fields of a HuggingFace ESM `config.json` that shape the network.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HfEsmConfig {
    pub num_hidden_layers: usize,
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default)]
    pub token_dropout: bool,
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_vocab() -> usize {
    33
}

/// A Hugging Face `config.json` that describes another ESM-2 than the model configuration: each
/// difference as `key: config A, checkpoint B`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .differences.join("; "))]
pub struct ArchitectureMismatch {
    pub differences: Vec<String>,
}

impl HfEsmConfig {
    /// Checks the file's architecture against the model configuration.
    ///
    /// # Errors
    /// A list of every differing value.
    pub fn check(&self, esm: &EsmConfig) -> Result<(), ArchitectureMismatch> {
        let mut diffs = Vec::new();
        let mut cmp = |key: &str, ours: usize, theirs: usize| {
            if ours != theirs {
                diffs.push(format!("{key}: config {ours}, checkpoint {theirs}"));
            }
        };
        cmp("esm.layers", esm.layers, self.num_hidden_layers);
        cmp("esm.embed_dim", esm.embed_dim, self.hidden_size);
        cmp("esm.heads", esm.heads, self.num_attention_heads);
        cmp("esm.ffn_dim", esm.ffn(), self.intermediate_size);
        cmp("vocabulary", 33, self.vocab_size);
        if esm.token_dropout != self.token_dropout {
            diffs.push(format!(
                "esm.token_dropout: config {}, checkpoint {}",
                esm.token_dropout, self.token_dropout
            ));
        }
        if let Some(p) = &self.position_embedding_type
            && p != "rotary"
        {
            diffs.push(format!(
                "position_embedding_type {p:?}: only rotary (ESM-2) is supported"
            ));
        }
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(ArchitectureMismatch { differences: diffs })
        }
    }

    pub fn to_esm(&self) -> EsmConfig {
        EsmConfig {
            layers: self.num_hidden_layers,
            embed_dim: self.hidden_size,
            heads: self.num_attention_heads,
            ffn_dim: Some(self.intermediate_size),
            token_dropout: self.token_dropout,
            max_residues: 1022,
        }
    }
}

const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// Resolves `source` to weights on disk, downloading into the hub cache when needed.
///
/// # Errors
/// A path without weights, an invalid repository id, offline with an empty cache, or a failed
/// download (with the URL).
pub fn resolve(source: &str) -> Result<EsmWeights, ModelError> {
    let path = Path::new(source);
    if path.is_file() {
        let config = path
            .parent()
            .map(|d| d.join("config.json"))
            .filter(|c| c.is_file())
            .map(|c| read_config(&c))
            .transpose()?;
        return Ok(EsmWeights {
            weights: path.to_path_buf(),
            config,
        });
    }
    if path.is_dir() {
        let weights = WEIGHT_FILES
            .iter()
            .map(|f| path.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                ModelError::Hub(format!(
                    "{source}: a folder without model.safetensors or pytorch_model.bin"
                ))
            })?;
        let config = Some(path.join("config.json"))
            .filter(|c| c.is_file())
            .map(|c| read_config(&c))
            .transpose()?;
        return Ok(EsmWeights { weights, config });
    }
    let valid_id = source.split('/').count() == 2
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !source.contains("..")
        && !source.starts_with('/');
    if !valid_id {
        return Err(ModelError::Hub(format!(
            "{source}: neither an existing file or folder nor a hub repository id like facebook/esm2_t33_650M_UR50D"
        )));
    }
    let cache = cache_dir();
    let cached = hf_hub::Cache::new(cache.clone()).model(source.to_owned());
    if let Some(config) = cached.get("config.json")
        && let Some(weights) = WEIGHT_FILES.iter().find_map(|f| cached.get(f))
    {
        tracing::info!(repo = source, weights = %weights.display(), "ESM weights from the hub cache");
        return Ok(EsmWeights {
            weights,
            config: Some(read_config(&config)?),
        });
    }
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0") {
        return Err(ModelError::Hub(format!(
            "{source} is not in the hub cache ({}) and HF_HUB_OFFLINE is set",
            cache.display()
        )));
    }
    download(source, &cache)
}

fn download(repo: &str, cache: &Path) -> Result<EsmWeights, ModelError> {
    let mut builder = hf_hub::api::sync::ApiBuilder::new()
        .with_cache_dir(cache.to_path_buf())
        .with_progress(true)
        .with_retries(3);
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_owned());
    }
    if let Ok(token) = std::env::var("HF_TOKEN") {
        builder = builder.with_token(Some(token));
    }
    let api = builder
        .build()
        .map_err(|e| ModelError::Hub(format!("cannot start the hub client: {e}")))?;
    let model = api.model(repo.to_owned());
    let get = |file: &str| {
        model
            .get(file)
            .map_err(|e| ModelError::Hub(format!("{}: {e}", model.url(file))))
    };
    let config = get("config.json")?;
    let mut last = None;
    for file in WEIGHT_FILES {
        match get(file) {
            Ok(weights) => {
                tracing::info!(repo, weights = %weights.display(), "downloaded ESM weights");
                return Ok(EsmWeights {
                    weights,
                    config: Some(read_config(&config)?),
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ModelError::Hub(format!("{repo}: no weights"))))
}

/// The hub cache folder, as `huggingface_hub` chooses it.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("hub");
    }
    hf_hub::Cache::default().path().clone()
}

fn read_config(path: &Path) -> Result<HfEsmConfig, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ModelError::Checkpoint {
        path: path.display().to_string(),
        message: format!("not an ESM config.json: {e}"),
    })
}
