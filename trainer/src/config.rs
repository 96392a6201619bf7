//! Model configuration: a TOML file with documented keys, validated once at load.
//!
//! ```toml
//! [esm]                       # ESM-2; defaults are esm2_t33_650M_UR50D
//! layers = 33
//! embed_dim = 1280
//! heads = 20
//! ffn_dim = 5120              # default 4 × embed_dim
//! token_dropout = true
//! max_residues = 1022         # proteins are truncated to this many residues up front (spec §6.4)
//!
//! [gearnet]                   # defaults are FusionProt's GearNet
//! hidden_dims = [512, 512, 512, 512, 512, 512]
//! num_relation = 7
//! batch_norm = true
//! short_cut = true
//! concat_hidden = true
//!
//! [fusion]
//! layers_per_injection = 5    # GearNet layer k runs after ESM layer l (0-based) when l > 0 and l % 5 == 0
//! token_position = "batch-end"   # "batch-end" (reference, §6.5) or "per-protein"
//! token_relation = "sequential"  # "sequential" (reference, relation 1, §6.2) or "separate" (one more relation)
//! token_init_std = 0.01
//! ```
//!
//! The GearNet input width is not a key: it follows from the model (21 for GearNet alone, the ESM
//! width for FusionProt and ESM-GearNet).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// A configuration value that cannot work, named by its key (`esm.heads`, `optim.lr`, …); the
/// message says why and what would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value out of its range, or two keys that exclude each other (`key` is the first).
    #[error("{message}")]
    Invalid { key: &'static str, message: String },
    /// The fusion schedule does not run every GearNet layer exactly once.
    #[error(
        "fusion schedule: {esm_layers} ESM layers with one injection every {step} layers give \
         {injections} injections, but GearNet has {gearnet_layers} layers; set \
         fusion.layers_per_injection or gearnet.hidden_dims so they match"
    )]
    Schedule {
        esm_layers: usize,
        step: usize,
        injections: usize,
        gearnet_layers: usize,
    },
}

impl ConfigError {
    /// [`ConfigError::Invalid`] for `key`.
    pub fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            message: message.into(),
        }
    }

    /// The key at fault (`fusion.layers_per_injection` for a schedule).
    pub fn key(&self) -> &'static str {
        match self {
            ConfigError::Invalid { key, .. } => key,
            ConfigError::Schedule { .. } => "fusion.layers_per_injection",
        }
    }
}

/// A model kind name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model kind {0:?}: fusionprot, esm2, gearnet or esm-gearnet")]
pub struct UnknownModelKind(pub String);

/// Which network `fusionprot embed` (and later training) builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", try_from = "String")]
pub enum ModelKind {
    /// FusionProt: ESM-2 and GearNet exchanging one learnable token (spec §1.4–1.5).
    Fusionprot,
    /// ESM-2 alone, mean readout.
    Esm2,
    /// GearNet alone on the 21-d residue one-hot, sum readout.
    Gearnet,
    /// ESM-GearNet serial fusion: ESM residue features are GearNet's input.
    EsmGearnet,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Fusionprot => "fusionprot",
            ModelKind::Esm2 => "esm2",
            ModelKind::Gearnet => "gearnet",
            ModelKind::EsmGearnet => "esm-gearnet",
        }
    }

    /// The kind named `name` (`fusionprot`, `esm2`, `gearnet`, `esm-gearnet`).
    ///
    /// # Errors
    /// Another name, listing the four.
    pub fn parse(name: &str) -> Result<Self, UnknownModelKind> {
        [
            ModelKind::Fusionprot,
            ModelKind::Esm2,
            ModelKind::Gearnet,
            ModelKind::EsmGearnet,
        ]
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| UnknownModelKind(name.to_owned()))
    }

    pub fn uses_esm(self) -> bool {
        !matches!(self, ModelKind::Gearnet)
    }

    pub fn uses_gearnet(self) -> bool {
        !matches!(self, ModelKind::Esm2)
    }
}

/// `model.kind = "…"` in a configuration: [`ModelKind::parse`]'s words for a name it does not know.
impl TryFrom<String> for ModelKind {
    type Error = UnknownModelKind;

    fn try_from(name: String) -> Result<Self, UnknownModelKind> {
        ModelKind::parse(&name)
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsmConfig {
    pub layers: usize,
    pub embed_dim: usize,
    pub heads: usize,
    /// Feed-forward width; `None` means 4 × `embed_dim` (every ESM-2 size).
    pub ffn_dim: Option<usize>,
    pub token_dropout: bool,
    pub max_residues: usize,
}

impl Default for EsmConfig {
    fn default() -> Self {
        EsmConfig {
            layers: 33,
            embed_dim: 1280,
            heads: 20,
            ffn_dim: None,
            token_dropout: true,
            max_residues: 1022,
        }
    }
}

impl EsmConfig {
    pub fn ffn(&self) -> usize {
        self.ffn_dim.unwrap_or(4 * self.embed_dim)
    }

    pub fn head_dim(&self) -> usize {
        self.embed_dim / self.heads.max(1)
    }

    /// The published ESM-2 sizes, for checkpoints that carry no head count (fair-esm `.pt`
    /// whose `cfg` we do not unpickle, or bare state_dicts).
    pub fn known_heads(layers: usize, embed_dim: usize) -> Option<usize> {
        match (layers, embed_dim) {
            (6, 320) | (12, 480) | (30, 640) | (33, 1280) => Some(20),
            (36, 2560) | (48, 5120) => Some(40),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GearNetConfig {
    pub hidden_dims: Vec<usize>,
    /// Relations in the pipeline's graphs (7: five sequential offsets, radius, KNN).
    pub num_relation: usize,
    pub batch_norm: bool,
    pub short_cut: bool,
    pub concat_hidden: bool,
}

impl Default for GearNetConfig {
    fn default() -> Self {
        GearNetConfig {
            hidden_dims: vec![512; 6],
            num_relation: 7,
            batch_norm: true,
            short_cut: true,
            concat_hidden: true,
        }
    }
}

impl GearNetConfig {
    pub fn output_dim(&self) -> usize {
        if self.concat_hidden {
            self.hidden_dims.iter().sum()
        } else {
            self.hidden_dims.last().copied().unwrap_or(0)
        }
    }
}

/// Where the fusion token sits in each ESM row (spec §1.4, quirk §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenPosition {
    /// The reference: padded column `L_max + 1` for every protein of the batch, so a shorter
    /// protein sees it after its `<eos>` and padding, at a position that depends on the batch.
    BatchEnd,
    /// The fix: right after each protein's last residue, before its own `<eos>`.
    PerProtein,
}

/// Which relation the token's graph edges use (quirk §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenRelation {
    /// The reference: relation 1, shared with the sequential "r+1 → r" edges.
    Sequential,
    /// The fix: a relation of its own (GearNet gets `num_relation + 1`; the released checkpoint
    /// cannot be loaded with it).
    Separate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FusionConfig {
    /// GearNet layer k runs after ESM layer l (0-based) where l > 0 and l % this == 0. `None`
    /// derives it as `(esm.layers - 1) / gearnet layers` (5 for 33 and 6, the reference).
    pub layers_per_injection: Option<usize>,
    pub token_position: TokenPosition,
    pub token_relation: TokenRelation,
    pub token_init_std: f64,
}

impl Default for FusionConfig {
    fn default() -> Self {
        FusionConfig {
            layers_per_injection: None,
            token_position: TokenPosition::BatchEnd,
            token_relation: TokenRelation::Sequential,
            token_init_std: 0.01,
        }
    }
}

/// The whole model configuration. Every section is optional in the file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub esm: EsmConfig,
    pub gearnet: GearNetConfig,
    pub fusion: FusionConfig,
}

impl ModelConfig {
    /// Reads and validates a TOML model configuration.
    ///
    /// # Errors
    /// Unreadable file, TOML syntax or unknown key (with line), or an invalid value.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: ModelConfig = toml::from_str(&text).map_err(|e| ModelError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|e| ModelError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(config)
    }

    /// Checks the values that would otherwise fail deep inside a forward pass.
    ///
    /// # Errors
    /// A message naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.esm;
        if e.layers == 0 || e.embed_dim == 0 || e.heads == 0 {
            return Err(ConfigError::invalid(
                "esm.layers",
                "esm.layers, esm.embed_dim and esm.heads must be positive",
            ));
        }
        if !e.embed_dim.is_multiple_of(e.heads) || !e.head_dim().is_multiple_of(2) {
            return Err(ConfigError::invalid(
                "esm.heads",
                format!(
                    "esm.embed_dim ({}) must be a multiple of esm.heads ({}) with an even head size (rotary embeddings)",
                    e.embed_dim, e.heads
                ),
            ));
        }
        if e.max_residues == 0 || e.max_residues > 1022 {
            return Err(ConfigError::invalid(
                "esm.max_residues",
                format!(
                    "esm.max_residues must be in 1..=1022 (ESM-2 has 1024 positions with <cls> and <eos>), got {}",
                    e.max_residues
                ),
            ));
        }
        let g = &self.gearnet;
        if g.hidden_dims.is_empty() || g.hidden_dims.contains(&0) {
            return Err(ConfigError::invalid(
                "gearnet.hidden_dims",
                "gearnet.hidden_dims must be a non-empty list of positive widths",
            ));
        }
        if g.num_relation < 2 {
            return Err(ConfigError::invalid(
                "gearnet.num_relation",
                "gearnet.num_relation must be at least 2 (the token uses relation 1)",
            ));
        }
        if !(self.fusion.token_init_std.is_finite() && self.fusion.token_init_std >= 0.0) {
            return Err(ConfigError::invalid(
                "fusion.token_init_std",
                "fusion.token_init_std must be a finite, non-negative number",
            ));
        }
        Ok(())
    }

    /// [`validate`](Self::validate), plus what only `kind` needs (the fusion schedule).
    ///
    /// # Errors
    /// A message naming the key.
    pub fn validate_for(&self, kind: ModelKind) -> Result<(), ConfigError> {
        self.validate()?;
        if kind == ModelKind::Fusionprot {
            self.injection_layers()?;
        }
        Ok(())
    }

    /// ESM layer indices (0-based) after which GearNet layer 0, 1, … runs.
    ///
    /// # Errors
    /// When the schedule does not use every GearNet layer exactly once.
    pub fn injection_layers(&self) -> Result<Vec<usize>, ConfigError> {
        let n_gear = self.gearnet.hidden_dims.len();
        let step = match self.fusion.layers_per_injection {
            Some(0) => {
                return Err(ConfigError::invalid(
                    "fusion.layers_per_injection",
                    "fusion.layers_per_injection must be positive",
                ));
            }
            Some(s) => s,
            None => (self.esm.layers.saturating_sub(1) / n_gear.max(1)).max(1),
        };
        let layers: Vec<usize> = (1..self.esm.layers).filter(|l| l % step == 0).collect();
        if layers.len() != n_gear {
            return Err(ConfigError::Schedule {
                esm_layers: self.esm.layers,
                step,
                injections: layers.len(),
                gearnet_layers: n_gear,
            });
        }
        Ok(layers)
    }

    /// GearNet's relation count for the fused model (one more with a separate token relation).
    pub fn fused_relations(&self) -> usize {
        match self.fusion.token_relation {
            TokenRelation::Sequential => self.gearnet.num_relation,
            TokenRelation::Separate => self.gearnet.num_relation + 1,
        }
    }

    /// The relation id of the token's edges.
    pub fn token_relation_id(&self) -> i64 {
        match self.fusion.token_relation {
            TokenRelation::Sequential => 1,
            TokenRelation::Separate => self.gearnet.num_relation as i64,
        }
    }

    /// A tiny configuration for tests and the demo: the reference's depth (33 ESM layers, 6
    /// GearNet layers, so the 650M schedule) at small widths.
    pub fn tiny() -> Self {
        ModelConfig {
            esm: EsmConfig {
                layers: 33,
                embed_dim: 32,
                heads: 4,
                ffn_dim: None,
                token_dropout: true,
                max_residues: 1022,
            },
            gearnet: GearNetConfig {
                hidden_dims: vec![16; 6],
                ..GearNetConfig::default()
            },
            fusion: FusionConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_schedule_is_after_esm_layers_5_to_30() {
        let c = ModelConfig::default();
        assert_eq!(c.injection_layers(), Ok(vec![5, 10, 15, 20, 25, 30]));
        assert_eq!(c.gearnet.output_dim(), 3072);
    }

    #[test]
    fn schedule_follows_the_config() {
        let mut c = ModelConfig::default();
        c.esm.layers = 12;
        c.gearnet.hidden_dims = vec![64; 3];
        // derived step (12-1)/3 = 3 → after layers 3, 6, 9
        assert_eq!(c.injection_layers(), Ok(vec![3, 6, 9]));
        c.fusion.layers_per_injection = Some(5);
        let err = c.injection_layers().expect_err("an error");
        assert!(err.to_string().contains("give 2 injections"), "{err}");
        assert_eq!(err.key(), "fusion.layers_per_injection");
    }

    #[test]
    fn the_shipped_config_files_are_the_defaults_and_the_tiny_model() {
        let published: ModelConfig =
            toml::from_str(include_str!("../configs/fusionprot-650m.toml")).expect("parses");
        assert_eq!(published, ModelConfig::default());
        let tiny: ModelConfig =
            toml::from_str(include_str!("../configs/tiny.toml")).expect("parses");
        assert_eq!(tiny, ModelConfig::tiny());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = toml::from_str::<ModelConfig>("[esm]\nlayer = 3\n").expect_err("an error");
        assert!(err.to_string().contains("layer"), "{err}");
        let c: ModelConfig = toml::from_str("[esm]\nembed_dim = 30\nheads = 4\n").expect("parses");
        assert!(
            c.validate()
                .expect_err("an error")
                .to_string()
                .contains("esm.embed_dim")
        );
        let c: ModelConfig =
            toml::from_str("[fusion]\ntoken_position = \"per-protein\"\n").expect("parses");
        assert_eq!(c.fusion.token_position, TokenPosition::PerProtein);
    }
}
