//! A pre-training run's configuration (`fusionprot pretrain`): TOML, every key known, validated
//! once at load. Defaults are FusionProt's Multiview Contrast recipe (spec §4: FP
//! `config/pretrain/mc_esm_gearnet.yaml`): crops of 50 residues, Identity or edge masking at
//! 0.15, a two-layer projection, τ 0.07, ESM frozen while FusionProt's own fusion parameters are
//! trained, Adam lr 2e-4 without weight decay, 16 proteins per micro-batch × 4 accumulated,
//! 50 epochs with a checkpoint every 10. `objective.kind = "residue-type"` is the reference's
//! other recipe (`attr_esm_gearnet.yaml`: 15% of residues masked, random 100-residue windows).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{CheckpointConfig, ModelSection, apply_sets, non_negative, positive};
use super::pretrain_data::Order;
use crate::config::{ConfigError, ModelKind};
use crate::error::ModelError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    pub data: PretrainData,
    pub model: ModelSection,
    #[serde(default)]
    pub objective: ObjectiveConfig,
    #[serde(default)]
    pub optim: PretrainOptim,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub distributed: super::config::DistributedConfig,
    /// Seeds the heads' initialisation, random model parts and every view and mask.
    #[serde(default = "super::config::default_seed")]
    pub seed: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainData {
    /// Prepared datasets (`fusionprot prepare`, AlphaFold DB proteome tars; a `merge --link`
    /// dataset counts as one): every protein of each.
    pub datasets: Vec<PathBuf>,
    /// `shuffled` (one permutation over all proteins per epoch) or `dataset-by-dataset` (the
    /// reference's walk over AlphaFold DB splits, `epochs_per_dataset` epochs on each in turn).
    #[serde(default)]
    pub order: OrderName,
    #[serde(default = "default_epochs_per_dataset")]
    pub epochs_per_dataset: usize,
    /// Proteins the background loader reads per window.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
}

/// `data.order`, as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderName {
    #[default]
    Shuffled,
    DatasetByDataset,
}

fn default_epochs_per_dataset() -> usize {
    10
}

fn default_prefetch() -> usize {
    64
}

/// Which pre-training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// TorchDrug's `MultiviewContrast` (the published FusionProt weights).
    #[default]
    MultiviewContrast,
    /// FusionProt's `ResidueTypePrediction` (TorchDrug's `AttributeMasking` on residues).
    ResidueType,
}

impl ObjectiveKind {
    /// The tag value (`fusionprot.objective`).
    pub fn name(self) -> &'static str {
        match self {
            Self::MultiviewContrast => "multiview-contrast",
            Self::ResidueType => "residue-type",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectiveConfig {
    pub kind: ObjectiveKind,
    /// Multiview Contrast: `SubsequenceNode(max_length)`.
    pub crop_length: usize,
    /// Multiview Contrast: draw Identity or edge masking per view (the reference); `false`:
    /// Identity only.
    pub edge_mask: bool,
    /// Multiview Contrast: `RandomEdgeMask(mask_rate)`.
    pub edge_mask_rate: f64,
    /// Multiview Contrast: InfoNCE temperature.
    pub tau: f64,
    /// Linear layers of the projection (Multiview Contrast) or the residue-type classifier.
    pub mlp_layers: usize,
    /// Residue type: the share of each protein's residues masked (at least one).
    pub mask_rate: f64,
    /// Residue type: a random window of this many residues per protein per step
    /// (`TruncateProtein(max_length, random=True)`).
    pub truncate: usize,
    /// Train ESM-2 too (the reference freezes it: `fix_sequence_model`). Gradients flow through
    /// its activations to the fusion token either way.
    pub train_sequence_model: bool,
    /// Proteins probed at every checkpoint (spread evenly over the data; 0: no probe): Multiview
    /// Contrast's positive-pair rank and top-1 retrieval, residue type's accuracy, on draws fixed
    /// by the seed, in eval mode.
    pub probe: usize,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self {
            kind: ObjectiveKind::MultiviewContrast,
            crop_length: 50,
            edge_mask: true,
            edge_mask_rate: 0.15,
            tau: 0.07,
            mlp_layers: 2,
            mask_rate: 0.15,
            truncate: 100,
            train_sequence_model: false,
            probe: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainOptim {
    /// Adam's learning rate (the reference's `optimizer: Adam, lr: 2.0e-4`).
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    /// Decoupled weight decay (0: Adam exactly, as the reference).
    pub weight_decay: f64,
    /// Proteins per forward pass (the reference's 16 per GPU).
    pub micro_batch: usize,
    pub gradient_interval: usize,
    pub epochs: usize,
    /// A checkpoint every this many epochs (and after the last): the reference's `save_interval`.
    pub save_every: usize,
    /// CUDA autocast with dynamic loss scaling (off: the reference trains in float32).
    pub amp: bool,
}

impl Default for PretrainOptim {
    fn default() -> Self {
        Self {
            lr: 2e-4,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.0,
            micro_batch: 16,
            gradient_interval: 4,
            epochs: 50,
            save_every: 10,
            amp: false,
        }
    }
}

impl PretrainConfig {
    /// Reads `path`, applies `--set key=value` overrides, validates once.
    ///
    /// # Errors
    /// Unreadable file, a fine-tuning configuration (`data.task`), unknown keys, invalid values.
    pub fn load_with(path: &Path, sets: &[String]) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        let (text, name) = apply_sets(&text, &path.display().to_string(), sets)?;
        Self::parse(&text, &name)
    }

    /// Parses and validates TOML text; `name` is what errors call it.
    ///
    /// # Errors
    /// As [`PretrainConfig::load_with`].
    pub fn parse(text: &str, name: &str) -> Result<Self, ModelError> {
        let err = |message: String| ModelError::Config {
            path: name.to_owned(),
            message,
        };
        if let Ok(doc) = toml::from_str::<toml::Table>(text)
            && let Some(task) = doc.get("data").and_then(|d| d.get("task"))
        {
            return Err(err(format!(
                "data.task = {task} makes this a fine-tuning configuration: run it with `fusionprot train`"
            )));
        }
        let cfg: PretrainConfig = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        cfg.validate().map_err(|e| err(e.to_string()))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.model.check()?;
        let o = &self.optim;
        positive(o.lr, "optim.lr")?;
        positive(o.eps, "optim.eps")?;
        positive(self.objective.tau, "objective.tau")?;
        non_negative(o.weight_decay, "optim.weight_decay")?;
        if o.betas.iter().any(|b| !(0.0..1.0).contains(b)) {
            return Err(ConfigError::invalid(
                "optim.betas",
                format!("optim.betas must be in [0, 1), got {:?}", o.betas),
            ));
        }
        for (v, what) in [
            (self.objective.edge_mask_rate, "objective.edge_mask_rate"),
            (self.objective.mask_rate, "objective.mask_rate"),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ConfigError::invalid(
                    what,
                    format!("{what} must be in [0, 1], got {v}"),
                ));
            }
        }
        for (v, what) in [
            (o.micro_batch, "optim.micro_batch"),
            (o.gradient_interval, "optim.gradient_interval"),
            (o.epochs, "optim.epochs"),
            (o.save_every, "optim.save_every"),
            (self.objective.crop_length, "objective.crop_length"),
            (self.objective.truncate, "objective.truncate"),
            (self.objective.mlp_layers, "objective.mlp_layers"),
            (self.data.prefetch, "data.prefetch"),
            (self.data.epochs_per_dataset, "data.epochs_per_dataset"),
        ] {
            if v == 0 {
                return Err(ConfigError::invalid(
                    what,
                    format!("{what} must be at least 1"),
                ));
            }
        }
        if self.objective.kind == ObjectiveKind::MultiviewContrast && o.micro_batch < 2 {
            return Err(ConfigError::invalid(
                "optim.micro_batch",
                "optim.micro_batch must be at least 2 for Multiview Contrast: the other proteins of a micro-batch are the negatives",
            ));
        }
        Ok(())
    }

    /// The model kind named in `model.kind`.
    pub fn kind(&self) -> ModelKind {
        self.model.kind
    }

    /// The epoch order named in `data.order`.
    pub fn order(&self) -> Order {
        match self.data.order {
            OrderName::Shuffled => Order::Shuffled,
            OrderName::DatasetByDataset => Order::DatasetByDataset {
                epochs_per_dataset: self.data.epochs_per_dataset,
            },
        }
    }

    /// Makes the datasets' and model's paths absolute against `base` (for `--resume`).
    pub fn absolutize(&mut self, base: &Path) {
        for d in &mut self.data.datasets {
            if d.is_relative() {
                *d = base.join(&*d);
            }
        }
        self.model.absolutize(base);
    }

    /// The configuration as TOML (every key, defaults included).
    ///
    /// # Errors
    /// A value TOML cannot hold.
    pub fn to_toml(&self) -> Result<String, ModelError> {
        toml::to_string(self).map_err(|e| ModelError::Input(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[data]\ndatasets = [\"afdb\"]\n[model]\nkind = \"fusionprot\"\n";

    #[test]
    fn defaults_are_the_reference_multiview_contrast_recipe() {
        let c = PretrainConfig::parse(BASE, "p.toml").expect("parses");
        assert_eq!(c.objective.kind, ObjectiveKind::MultiviewContrast);
        assert_eq!(
            (
                c.objective.crop_length,
                c.objective.tau,
                c.objective.mlp_layers
            ),
            (50, 0.07, 2)
        );
        assert_eq!((c.optim.lr, c.optim.weight_decay), (2e-4, 0.0));
        assert_eq!((c.optim.micro_batch, c.optim.gradient_interval), (16, 4));
        assert!(!c.objective.train_sequence_model);
        assert_eq!(c.order(), Order::Shuffled);
    }

    #[test]
    fn fine_tuning_configs_and_mistakes_are_refused_by_name() {
        let e = PretrainConfig::parse(
            "[data]\ndataset = \"ec\"\ntask = \"ec\"\n[model]\nkind = \"fusionprot\"\n",
            "ec.toml",
        )
        .expect_err("a fine-tuning config")
        .to_string();
        assert!(
            e.contains("fusionprot train") && e.contains("ec.toml"),
            "{e}"
        );
        for (extra, key) in [
            ("[objective]\nkind = \"masked-lm\"\n", "masked-lm"),
            ("[objective]\ntau = 0\n", "objective.tau"),
            ("[optim]\nmicro_batch = 1\n", "negatives"),
            (
                "[objective]\nedge_mask_rate = 1.5\n",
                "objective.edge_mask_rate",
            ),
        ] {
            let e = PretrainConfig::parse(&format!("{BASE}{extra}"), "p.toml")
                .expect_err(extra)
                .to_string();
            assert!(e.contains(key), "{extra}: {e}");
        }
        let e = PretrainConfig::parse(
            "[data]\ndatasets = [\"a\"]\norder = \"random\"\n[model]\nkind = \"fusionprot\"\n",
            "p.toml",
        )
        .expect_err("order")
        .to_string();
        assert!(e.contains("dataset-by-dataset"), "{e}");
    }
}
