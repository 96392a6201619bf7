//! Weights in and out: safetensors, PyTorch `torch.save` files (read by our own restricted
//! unpickler, never executed), HuggingFace ESM checkpoints, fair-esm `.pt` files and FusionProt
//! state_dicts; strict loading by name with every missing, unexpected and mis-shaped key listed.

pub mod hub;
pub mod load;
pub mod pickle;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tch::Tensor;

use crate::config::{EsmConfig, ModelConfig, ModelKind};
use crate::error::ModelError;
use crate::model::Model;

/// Where a set of named tensors came from, which decides how names are mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// HuggingFace `EsmModel` / `EsmForMaskedLM` names (`esm.encoder.layer.N…`).
    HuggingFace,
    /// fair-esm ESM-2 names (`layers.N.self_attn…`, possibly under `encoder.sentence_encoder.`).
    FairEsm,
    /// The model's own state_dict names (FusionProt `.pth`, TorchDrug, our safetensors).
    Native,
}

/// Reads every tensor of a weights file: `.safetensors`, or a `torch.save` zip (`.pt`, `.pth`,
/// `.bin`, `.ckpt`). A fair-esm file's `model` dict is unwrapped.
///
/// # Errors
/// Unreadable or malformed file.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, ModelError> {
    let name = path.display().to_string();
    let bad = |message: String| ModelError::Checkpoint {
        path: name.clone(),
        message,
    };
    let mut head = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let _ = f.read(&mut head).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    if head.starts_with(b"PK") {
        let (value, tensors) = pickle::load(path).map_err(|e| bad(e.to_string()))?;
        // fair-esm: {"model": state_dict, "args": …, "cfg": …}; Lightning: {"state_dict": …}
        let dict = value
            .get("model")
            .filter(|v| matches!(v, pickle::Value::Dict(_)))
            .or_else(|| value.get("state_dict"))
            .unwrap_or(&value);
        let out = pickle::state_dict(dict, &tensors);
        if out.is_empty() {
            return Err(bad(
                "no tensors found: not a state_dict (nor a dict with `model` or `state_dict`)"
                    .into(),
            ));
        }
        return Ok(out);
    }
    Tensor::read_safetensors(path)
        .map_err(|e| bad(format!("not a safetensors or torch.save file: {e}")))
}

/// Guesses the naming scheme from the keys.
pub fn flavour(names: &[String]) -> Flavour {
    let any = |f: &dyn Fn(&str) -> bool| names.iter().any(|n| f(n));
    if any(&|n| {
        n.starts_with("esm.")
            || n.starts_with("embeddings.word_embeddings")
            || n.starts_with("encoder.layer.")
    }) {
        Flavour::HuggingFace
    } else if any(&|n| {
        n.starts_with("encoder.sentence_encoder.")
            || n.starts_with("embed_tokens.")
            || n.starts_with("layers.0.self_attn.")
    }) {
        Flavour::FairEsm
    } else {
        Flavour::Native
    }
}

/// HuggingFace ESM name → fair-esm name; `None` for entries that have no counterpart and
/// carry no weights we use (position ids, rotary buffers, the pooler, the tied decoder).
pub fn hf_to_fair(name: &str) -> Option<String> {
    let n = name.strip_prefix("esm.").unwrap_or(name);
    if n.ends_with("position_ids")
        || n.ends_with("inv_freq")
        || n.starts_with("pooler.")
        || n == "lm_head.decoder.weight"
    {
        return None;
    }
    if let Some(rest) = n.strip_prefix("encoder.layer.") {
        let (i, tail) = rest.split_once('.')?;
        let mapped = match tail {
            t if t.starts_with("attention.self.query.") => {
                t.replace("attention.self.query.", "self_attn.q_proj.")
            }
            t if t.starts_with("attention.self.key.") => {
                t.replace("attention.self.key.", "self_attn.k_proj.")
            }
            t if t.starts_with("attention.self.value.") => {
                t.replace("attention.self.value.", "self_attn.v_proj.")
            }
            t if t.starts_with("attention.output.dense.") => {
                t.replace("attention.output.dense.", "self_attn.out_proj.")
            }
            t if t.starts_with("attention.LayerNorm.") => {
                t.replace("attention.LayerNorm.", "self_attn_layer_norm.")
            }
            t if t.starts_with("intermediate.dense.") => t.replace("intermediate.dense.", "fc1."),
            t if t.starts_with("output.dense.") => t.replace("output.dense.", "fc2."),
            t if t.starts_with("LayerNorm.") => t.replace("LayerNorm.", "final_layer_norm."),
            other => format!("<unknown>.{other}"),
        };
        return Some(format!("layers.{i}.{mapped}"));
    }
    Some(match n {
        "embeddings.word_embeddings.weight" => "embed_tokens.weight".into(),
        n if n.starts_with("encoder.emb_layer_norm_after.") => n.replacen("encoder.", "", 1),
        // lm_head.{dense,layer_norm,bias} and contact_head.regression.* keep their names.
        n => n.to_owned(),
    })
}

/// fair-esm name → the name inside our ESM module; `None` for buffers we recompute (rotary
/// frequencies) and the LM head's tied output weight.
pub fn fair_to_ours(name: &str) -> Option<String> {
    let n = name
        .strip_prefix("encoder.sentence_encoder.")
        .or_else(|| name.strip_prefix("encoder."))
        .unwrap_or(name);
    if n.ends_with("rot_emb.inv_freq") || n == "lm_head.weight" {
        return None;
    }
    Some(n.to_owned())
}

/// Whether a native key is a recomputed buffer or a tied alias that carries nothing of its own.
fn native_ignorable(name: &str) -> bool {
    name.ends_with("rot_emb.inv_freq") || name.ends_with("lm_head.weight")
}

/// Which part of the model a file is meant to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every tensor of the model (a FusionProt / task checkpoint, our own safetensors).
    Whole,
    /// Only the ESM-2 part (`--esm`): HF or fair-esm weights; the rest keeps its initialisation.
    Esm,
}

/// Loads `path` into `model`, strictly within `scope`: the file must provide every tensor of
/// that scope with the right shape, and nothing else. Tensors are converted to the model's
/// dtype and device.
///
/// # Errors
/// Unreadable file, or a mismatch listing missing, unexpected and mis-shaped keys.
pub fn load(model: &mut Model, path: &Path, scope: Scope) -> Result<Flavour, ModelError> {
    let tensors = read_tensors(path)?;
    load_tensors(model, tensors, path, scope)
}

/// [`load`] for tensors already read (by [`read_tensors`]) from `path`.
///
/// # Errors
/// As [`load`].
pub fn load_tensors(
    model: &mut Model,
    tensors: Vec<(String, Tensor)>,
    path: &Path,
    scope: Scope,
) -> Result<Flavour, ModelError> {
    let names: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
    let flavour = flavour(&names);
    let prefix = model.esm_prefix;
    let mut provided: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, t) in tensors {
        let mapped = match flavour {
            Flavour::HuggingFace => hf_to_fair(&name)
                .and_then(|n| fair_to_ours(&n))
                .map(|n| format!("{prefix}{n}")),
            Flavour::FairEsm => fair_to_ours(&name).map(|n| format!("{prefix}{n}")),
            Flavour::Native => (!native_ignorable(&name)).then_some(name),
        };
        if let Some(m) = mapped {
            provided.insert(m, t);
        }
    }
    if flavour != Flavour::Native && !model.kind.uses_esm() {
        return Err(ModelError::Mismatch {
            path: path.display().to_string(),
            model: model.kind.name().into(),
            details: "this is an ESM-2 checkpoint, and the model has no ESM part".into(),
        });
    }
    let scope = if flavour == Flavour::Native {
        scope
    } else {
        Scope::Esm
    };
    let mut vars = model.vs.variables();
    if scope == Scope::Esm {
        vars.retain(|k, _| k.starts_with(prefix));
    }
    let mut missing = Vec::new();
    let mut misshaped = Vec::new();
    for (name, var) in &vars {
        match provided.get(name) {
            None => missing.push(name.clone()),
            Some(t) if t.size() != var.size() => {
                misshaped.push(format!(
                    "{name}: model {:?}, file {:?}",
                    var.size(),
                    t.size()
                ));
            }
            Some(_) => {}
        }
    }
    let unexpected: Vec<String> = provided
        .keys()
        .filter(|k| !vars.contains_key(*k))
        .cloned()
        .collect();
    if !(missing.is_empty() && misshaped.is_empty() && unexpected.is_empty()) {
        return Err(ModelError::Mismatch {
            path: path.display().to_string(),
            model: model.kind.name().into(),
            details: mismatch_report(&missing, &unexpected, &misshaped),
        });
    }
    tch::no_grad(|| -> Result<(), ModelError> {
        for (name, var) in &mut vars {
            if let Some(src) = provided.get(name) {
                let mut v = var.shallow_clone();
                v.f_copy_(&src.f_to_kind(var.kind())?.f_to_device(var.device())?)?;
            }
        }
        Ok(())
    })?;
    Ok(flavour)
}

fn mismatch_report(missing: &[String], unexpected: &[String], misshaped: &[String]) -> String {
    let mut out = String::new();
    for (what, list) in [
        ("missing from the file", missing),
        ("unexpected in the file", unexpected),
        ("wrong shape", misshaped),
    ] {
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("  {} {what}:\n", list.len()));
        for k in list.iter().take(12) {
            out.push_str(&format!("    {k}\n"));
        }
        if list.len() > 12 {
            out.push_str(&format!("    … and {} more\n", list.len() - 12));
        }
    }
    out
}

/// Writes every tensor of the model as safetensors (state_dict names), through a temporary
/// file renamed into place.
///
/// # Errors
/// I/O or libtorch errors.
pub fn save(model: &Model, path: &Path) -> Result<(), ModelError> {
    let vars: HashMap<String, Tensor> = model.vs.variables();
    let mut named: Vec<(String, Tensor)> = vars
        .into_iter()
        .map(|(k, t)| (k, t.to_device(tch::Device::Cpu).contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".weights-")
        .suffix(".safetensors")
        .tempfile_in(dir)
        .map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    Tensor::write_safetensors(&named, tmp.path())?;
    tmp.persist(path).map_err(|e| ModelError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Reads the ESM-2 shape a checkpoint implies: (layers, embed_dim, ffn_dim).
pub fn implied_esm_shape(tensors: &[(String, Tensor)]) -> Option<(usize, usize, usize)> {
    let names: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
    let fl = flavour(&names);
    let mut layers = 0usize;
    let mut embed = None;
    let mut ffn = None;
    for (name, t) in tensors {
        let n = match fl {
            Flavour::HuggingFace => hf_to_fair(name),
            Flavour::FairEsm => fair_to_ours(name),
            Flavour::Native => name
                .strip_prefix("sequence_model.model.")
                .map(str::to_owned),
        };
        let Some(n) = n else { continue };
        if let Some(rest) = n.strip_prefix("layers.")
            && let Some((i, tail)) = rest.split_once('.')
            && let Ok(i) = i.parse::<usize>()
        {
            layers = layers.max(i + 1);
            if tail == "fc1.weight" {
                ffn = Some(t.size()[0] as usize);
            }
        }
        if n == "embed_tokens.weight" {
            embed = Some(t.size()[1] as usize);
        }
    }
    Some((layers, embed?, ffn?))
}

/// What a checkpoint's tensors do not tell about the model they belong to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferError {
    #[error("no ESM-2 weights (embed_tokens, layers.N.fc1) in the checkpoint")]
    NoEsm,
    #[error(
        "ESM-2 with {layers} layers of width {embed} is not a published size; give its head count in --model-config ([esm] heads)"
    )]
    UnknownEsmSize { layers: usize, embed: usize },
    #[error("no GearNet weights ({prefix}layers.0.self_loop.weight) in the checkpoint")]
    NoGearnet { prefix: &'static str },
}

/// The configuration a checkpoint implies for `kind`, starting from `base` for what weights
/// cannot tell (short-cut, concat-hidden, token position). ESM heads come from `esm_heads`, or
/// the published ESM-2 sizes.
///
/// # Errors
/// A message when the checkpoint has no ESM or GearNet weights the model needs, or an ESM size
/// whose head count is unknown.
pub fn infer_config(
    tensors: &[(String, Tensor)],
    kind: ModelKind,
    base: &ModelConfig,
    esm_heads: Option<usize>,
) -> Result<ModelConfig, InferError> {
    let mut c = base.clone();
    let shapes: HashMap<&str, Vec<i64>> = tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.size()))
        .collect();
    if kind.uses_esm() {
        let (layers, embed, ffn) = implied_esm_shape(tensors).ok_or(InferError::NoEsm)?;
        c.esm.layers = layers;
        c.esm.embed_dim = embed;
        c.esm.ffn_dim = Some(ffn);
        c.esm.heads = match esm_heads.or_else(|| EsmConfig::known_heads(layers, embed)) {
            Some(h) => h,
            None if base.esm.layers == layers && base.esm.embed_dim == embed => base.esm.heads,
            None => return Err(InferError::UnknownEsmSize { layers, embed }),
        };
    }
    if kind.uses_gearnet() {
        let prefix = match kind {
            ModelKind::Gearnet => "",
            _ => "structure_model.",
        };
        let mut hidden = Vec::new();
        let mut relations = None;
        while let Some(s) =
            shapes.get(format!("{prefix}layers.{}.self_loop.weight", hidden.len()).as_str())
        {
            let k = hidden.len();
            if let Some(l) = shapes.get(format!("{prefix}layers.{k}.linear.weight").as_str())
                && s[1] > 0
            {
                relations.get_or_insert((l[1] / s[1]) as usize);
            }
            hidden.push(s[0] as usize);
        }
        if hidden.is_empty() {
            return Err(InferError::NoGearnet { prefix });
        }
        c.gearnet.hidden_dims = hidden;
        c.gearnet.batch_norm =
            shapes.contains_key(format!("{prefix}batch_norms.0.weight").as_str());
        if let Some(r) = relations {
            if kind == ModelKind::Fusionprot && r == base.gearnet.num_relation + 1 {
                c.fusion.token_relation = crate::config::TokenRelation::Separate;
            } else {
                c.gearnet.num_relation = r;
            }
        }
    }
    Ok(c)
}

/// The values a checkpoint can imply, by config key.
fn implied_values(c: &ModelConfig) -> [(&'static str, String); 8] {
    [
        ("esm.layers", c.esm.layers.to_string()),
        ("esm.embed_dim", c.esm.embed_dim.to_string()),
        ("esm.ffn_dim", c.esm.ffn().to_string()),
        ("esm.heads", c.esm.heads.to_string()),
        (
            "gearnet.hidden_dims",
            format!("{:?}", c.gearnet.hidden_dims),
        ),
        ("gearnet.num_relation", c.gearnet.num_relation.to_string()),
        ("gearnet.batch_norm", c.gearnet.batch_norm.to_string()),
        (
            "fusion.token_relation",
            format!("{:?}", c.fusion.token_relation),
        ),
    ]
}

/// Differences between a configuration and what a checkpoint implies, as `key: a vs b`.
pub fn config_differences(config: &ModelConfig, implied: &ModelConfig) -> Vec<String> {
    implied_values(config)
        .into_iter()
        .zip(implied_values(implied))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((key, a), (_, b))| format!("{key}: config {a}, checkpoint {b}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_implies_its_configuration() {
        // ESM-2 8M (6 layers of 320, a published size: 20 heads) with a 5-layer GearNet of 24
        let mut config = ModelConfig::default();
        config.esm.layers = 6;
        config.esm.embed_dim = 320;
        config.gearnet.hidden_dims = vec![24; 5];
        for kind in [
            ModelKind::Fusionprot,
            ModelKind::EsmGearnet,
            ModelKind::Gearnet,
            ModelKind::Esm2,
        ] {
            let model = Model::new(kind, &config, tch::Device::Cpu).expect("model");
            let tensors: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
            let implied =
                infer_config(&tensors, kind, &ModelConfig::default(), None).expect("infer");
            let diffs = config_differences(&config, &implied);
            let relevant: Vec<&String> = diffs
                .iter()
                .filter(|d| {
                    (kind.uses_esm() && d.starts_with("esm."))
                        || (kind.uses_gearnet() && d.starts_with("gearnet."))
                })
                .collect();
            assert!(relevant.is_empty(), "{kind:?}: {relevant:?}");
        }
        // an unpublished ESM size needs its head count
        let mut odd = config.clone();
        odd.esm.embed_dim = 64;
        odd.esm.heads = 4;
        let model = Model::new(ModelKind::Esm2, &odd, tch::Device::Cpu).expect("model");
        let tensors: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
        let err = infer_config(&tensors, ModelKind::Esm2, &ModelConfig::default(), None)
            .expect_err("heads");
        assert_eq!(
            err,
            InferError::UnknownEsmSize {
                layers: 6,
                embed: 64
            }
        );
        assert!(err.to_string().contains("head count"), "{err}");
        let ok = infer_config(&tensors, ModelKind::Esm2, &ModelConfig::default(), Some(4))
            .expect("heads given");
        assert_eq!((ok.esm.layers, ok.esm.embed_dim, ok.esm.heads), (6, 64, 4));
    }

    #[test]
    fn hf_names_map_to_fair_esm_names() {
        assert_eq!(
            hf_to_fair("esm.encoder.layer.3.attention.self.query.weight").as_deref(),
            Some("layers.3.self_attn.q_proj.weight")
        );
        assert_eq!(
            hf_to_fair("esm.encoder.layer.0.LayerNorm.bias").as_deref(),
            Some("layers.0.final_layer_norm.bias")
        );
        assert_eq!(
            hf_to_fair("esm.encoder.layer.0.attention.LayerNorm.bias").as_deref(),
            Some("layers.0.self_attn_layer_norm.bias")
        );
        assert_eq!(
            hf_to_fair("esm.encoder.emb_layer_norm_after.weight").as_deref(),
            Some("emb_layer_norm_after.weight")
        );
        assert_eq!(hf_to_fair("esm.embeddings.position_ids"), None);
        assert_eq!(
            fair_to_ours("encoder.sentence_encoder.layers.1.fc1.weight").as_deref(),
            Some("layers.1.fc1.weight")
        );
        assert_eq!(fair_to_ours("encoder.lm_head.weight"), None);
    }
}
