//! Building a model the way the CLI asks for it: configuration from a TOML file or implied by
//! the weights (and checked against them when both are given), weights from a checkpoint, from
//! ESM-2 weights by path or hub id, or a seeded random initialisation.

use std::path::PathBuf;

use serde_json::json;
use tch::Device;

use crate::config::{ModelConfig, ModelKind};
use crate::error::ModelError;
use crate::model::Model;
use crate::weights::hub;
use crate::weights::{self, Scope};

/// Weights read before the model is built: file, tensors, what they fill.
type WeightsIn = (PathBuf, Vec<(String, tch::Tensor)>, Scope);

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub config: Option<PathBuf>,
    /// A whole-model checkpoint (FusionProt `.pth`, our safetensors; for `esm2`, any ESM-2 file).
    pub checkpoint: Option<PathBuf>,
    /// ESM-2 weights only: a file, a folder, or a hub repository id.
    pub esm: Option<String>,
    /// Allow a model with no weights loaded at all.
    pub random_init: bool,
    pub device: Device,
    pub seed: i64,
}

#[derive(Debug)]
pub struct Loaded {
    pub model: Model,
    /// What was loaded from where (paths, sha256, flavour), for manifests.
    pub provenance: serde_json::Value,
    /// Parts of the model left at their random initialisation, if any.
    pub random_parts: Vec<&'static str>,
}

/// Builds and loads the model `spec` describes.
///
/// # Errors
/// Invalid configuration, a configuration that disagrees with the weights (every difference is
/// listed), unreadable or mismatching weights, or no weights without `random_init`.
pub fn build(spec: &ModelSpec) -> Result<Loaded, ModelError> {
    build_without(spec, &[])
}

/// [`build`], leaving out of the checkpoint's tensors those whose names start with one of `drop`
/// (a run's head — `mlp.` — when its weights initialise another run). Every other key must fit
/// the model, as in [`build`].
///
/// # Errors
/// As [`build`].
pub fn build_without(spec: &ModelSpec, drop: &[&str]) -> Result<Loaded, ModelError> {
    let base = match &spec.config {
        Some(p) => ModelConfig::load(p)?,
        None => ModelConfig::default(),
    };
    let config_name = spec.config.as_ref().map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    );
    let mismatch = |source: &str, diffs: Vec<String>| ModelError::Config {
        path: config_name.clone(),
        message: format!("disagrees with {source}: {}", diffs.join("; ")),
    };
    let mut random_parts = Vec::new();
    let mut provenance = json!({ "seed": spec.seed });
    let (config, weights_in): (ModelConfig, Option<WeightsIn>) = if let Some(path) =
        &spec.checkpoint
    {
        let mut tensors = weights::read_tensors(path)?;
        let before = tensors.len();
        tensors.retain(|(name, _)| !drop.iter().any(|d| name.starts_with(d)));
        if before != tensors.len() {
            provenance["dropped"] = json!({ "prefixes": drop, "tensors": before - tensors.len() });
        }
        let implied = weights::infer_config(&tensors, spec.kind, &base, None).map_err(|e| {
            ModelError::Checkpoint {
                path: path.display().to_string(),
                message: e.to_string(),
            }
        })?;
        if spec.config.is_some() {
            let diffs = weights::config_differences(&base, &implied);
            if !diffs.is_empty() {
                return Err(mismatch(&path.display().to_string(), diffs));
            }
        }
        let config = if spec.config.is_some() { base } else { implied };
        provenance["checkpoint"] = file_provenance(path)?;
        (config, Some((path.clone(), tensors, Scope::Whole)))
    } else if let Some(source) = &spec.esm {
        if !spec.kind.uses_esm() {
            return Err(ModelError::Input(format!(
                "--esm gives ESM-2 weights, and the {} model has no ESM part",
                spec.kind.name()
            )));
        }
        let found = hub::resolve(source)?;
        let tensors = weights::read_tensors(&found.weights)?;
        let mut config = base.clone();
        match &found.config {
            Some(hf) => {
                if spec.config.is_some() {
                    hf.check(&base.esm)
                        .map_err(|m| mismatch(source, m.differences))?;
                }
                config.esm = hf.to_esm();
                config.esm.max_residues = base.esm.max_residues;
            }
            None => {
                let heads = spec.config.as_ref().map(|_| base.esm.heads);
                let implied = weights::infer_config(&tensors, ModelKind::Esm2, &base, heads)
                    .map_err(|e| ModelError::Checkpoint {
                        path: found.weights.display().to_string(),
                        message: e.to_string(),
                    })?;
                if spec.config.is_some() {
                    let diffs: Vec<String> = weights::config_differences(&base, &implied)
                        .into_iter()
                        .filter(|d| d.starts_with("esm."))
                        .collect();
                    if !diffs.is_empty() {
                        return Err(mismatch(source, diffs));
                    }
                }
                config.esm = implied.esm;
            }
        }
        provenance["esm"] = file_provenance(&found.weights)?;
        provenance["esm"]["source"] = json!(source);
        if spec.kind.uses_gearnet() {
            random_parts.push("GearNet");
        }
        if spec.kind == ModelKind::Fusionprot {
            random_parts.push("fusion token and projections");
        }
        (config, Some((found.weights, tensors, Scope::Esm)))
    } else if spec.random_init {
        random_parts.push("all weights");
        (base, None)
    } else {
        return Err(ModelError::Input(
                "no weights: give --checkpoint FILE or --esm SOURCE, or --random-init for a randomly initialised model".into(),
            ));
    };
    tch::manual_seed(spec.seed);
    let mut model =
        Model::new(spec.kind, &config, spec.device).map_err(|e| ModelError::Config {
            path: config_name.clone(),
            message: e.to_string(),
        })?;
    if let Some((path, tensors, scope)) = weights_in {
        let flavour = weights::load_tensors(&mut model, tensors, &path, scope)?;
        provenance["weights_format"] = json!(format!("{flavour:?}"));
    }
    provenance["random_init"] = json!(random_parts);
    provenance["config"] = serde_json::to_value(&model.config).unwrap_or_default();
    provenance["model"] = json!(spec.kind.name());
    Ok(Loaded {
        model,
        provenance,
        random_parts,
    })
}

fn file_provenance(path: &std::path::Path) -> Result<serde_json::Value, ModelError> {
    let (bytes, digest) = sha256_file(path)?;
    Ok(json!({ "path": path.display().to_string(), "bytes": bytes, "sha256": digest }))
}

/// A file's size and sha256 (hex), read once.
///
/// # Errors
/// An unreadable file.
pub(crate) fn sha256_file(path: &std::path::Path) -> Result<(u64, String), ModelError> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = Sha256::new();
    let bytes = std::io::copy(&mut f, &mut h).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((bytes, format!("{:x}", h.finalize())))
}

/// A device as users name it — `cpu`, `cuda` or `cuda:N` — parsed once, at the edge (`--device`,
/// a run's `launch.json`); [`DeviceChoice::open`] checks that libtorch can use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    /// `cuda` (`None`: the first GPU, or `cuda:LOCAL_RANK` under a launcher) or `cuda:N`.
    Cuda(Option<usize>),
}

impl std::str::FromStr for DeviceChoice {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<DeviceChoice, ModelError> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(None)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(|n| DeviceChoice::Cuda(Some(n)))
                .ok_or_else(|| {
                    ModelError::Input(format!("unknown device {other:?}: use cpu, cuda or cuda:N"))
                }),
        }
    }
}

impl TryFrom<String> for DeviceChoice {
    type Error = ModelError;

    fn try_from(s: String) -> Result<DeviceChoice, ModelError> {
        s.parse()
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(None) => f.write_str("cuda"),
            DeviceChoice::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    pub fn is_cuda(self) -> bool {
        matches!(self, DeviceChoice::Cuda(_))
    }

    /// The libtorch device, checking that CUDA is there.
    ///
    /// # Errors
    /// CUDA asked for where libtorch sees none (or fewer devices).
    pub fn open(self) -> Result<Device, ModelError> {
        let dev = match self {
            DeviceChoice::Cpu => return Ok(Device::Cpu),
            DeviceChoice::Cuda(n) => n.unwrap_or(0),
        };
        let count = if tch::Cuda::is_available() {
            tch::Cuda::device_count() as usize
        } else {
            0
        };
        if dev >= count {
            return Err(ModelError::Input(format!(
                "--device {self}: libtorch sees {count} CUDA device(s); run `fusionprot doctor` to see why"
            )));
        }
        Ok(Device::Cuda(dev))
    }
}

/// Parses `cpu`, `cuda` or `cuda:N`, checking that CUDA is there.
///
/// # Errors
/// An unknown device, or CUDA asked for where libtorch sees none.
pub fn parse_device(s: &str) -> Result<Device, ModelError> {
    s.parse::<DeviceChoice>()?.open()
}
