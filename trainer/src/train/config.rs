//! A fine-tuning run's configuration: TOML, every key known (`deny_unknown_fields`), validated
//! once at load. Defaults are the reference's EC / GO recipe (spec §3.1–3.2, training.md §3):
//! AdamW lr 2e-5 (β 0.9 / 0.98, wd 0.01), ESM at lr × 0.08, FusionProt's own parameters not
//! trained (quirk §6.1), ReduceLROnPlateau(0.6, 5) in mode `min` (quirk §6.9), 100 epochs,
//! evaluation every 2, micro-batches of 2 × 8 accumulated.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plateau::PlateauConfig;
use crate::config::{ConfigError, ModelKind};
use crate::error::ModelError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub data: DataConfig,
    pub model: ModelSection,
    #[serde(default)]
    pub optim: OptimConfig,
    /// `None` (no key) keeps the reference's scheduler; `scheduler.enabled = false` turns it off.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub distributed: DistributedConfig,
    /// Seeds the head's initialisation and any random model part.
    #[serde(default = "default_seed")]
    pub seed: i64,
}

/// What BatchNorm computes its batch statistics over in a data-parallel run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchNormSync {
    /// SyncBatchNorm: every rank's micro-batch together (the reference converts every BatchNorm).
    #[default]
    Sync,
    /// Each rank's own micro-batch (plain DDP without the conversion).
    PerRank,
}

/// `[distributed]`: how a data-parallel run (torchrun, srun, `--world-size`) trains; the ranks
/// themselves come from the launcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributedConfig {
    pub batch_norm: BatchNormSync,
}

/// `v` is finite and above zero.
pub(crate) fn positive(v: f64, what: &'static str) -> Result<(), ConfigError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            what,
            format!("{what} must be positive, got {v}"),
        ))
    }
}

/// `v` is finite and not below zero.
pub(crate) fn non_negative(v: f64, what: &'static str) -> Result<(), ConfigError> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            what,
            format!("{what} must be zero or positive, got {v}"),
        ))
    }
}

/// The reference's seed.
pub(crate) fn default_seed() -> i64 {
    1024
}

/// A fine-tuning task of an imported benchmark, parsed once from `data.task` (a typo is refused
/// when the configuration loads, naming the five).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Task {
    /// Enzyme Commission numbers (`fusionprot import ec`).
    #[serde(rename = "ec")]
    Ec,
    /// Gene Ontology, molecular function (`fusionprot import go`).
    #[serde(rename = "go-mf")]
    GoMf,
    /// Gene Ontology, biological process.
    #[serde(rename = "go-bp")]
    GoBp,
    /// Gene Ontology, cellular component.
    #[serde(rename = "go-cc")]
    GoCc,
    /// Mutation stability pairs (`fusionprot import msp`).
    #[serde(rename = "msp")]
    Msp,
}

impl Task {
    /// The name the manifest and the configuration use.
    pub fn name(self) -> &'static str {
        match self {
            Task::Ec => "ec",
            Task::GoMf => "go-mf",
            Task::GoBp => "go-bp",
            Task::GoCc => "go-cc",
            Task::Msp => "msp",
        }
    }

    /// The task named `name` in a manifest or a configuration.
    pub fn from_name(name: &str) -> Option<Task> {
        [Task::Ec, Task::GoMf, Task::GoBp, Task::GoCc, Task::Msp]
            .into_iter()
            .find(|t| t.name() == name)
    }

    /// Whether examples are (wild type, mutant) pairs with one binary label (MSP).
    pub fn is_pairs(self) -> bool {
        self == Task::Msp
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// An imported benchmark dataset (`fusionprot import ec|go`).
    pub dataset: PathBuf,
    /// The task: `ec`, `go-mf`, `go-bp`, `go-cc` (`fusionprot import ec|go`), `msp`
    /// (`fusionprot import msp`).
    pub task: Task,
    /// A named split of the dataset (`official`, `family`, …).
    #[serde(default = "default_split")]
    pub split: String,
    /// Proteins are truncated to this many residues before batching (ESM-2 takes 1022).
    #[serde(default = "default_max_residues")]
    pub max_residues: usize,
    /// Also evaluate the train part at every evaluation (`train/f1_max` …): to see it fit.
    #[serde(default)]
    pub evaluate_train: bool,
    /// Proteins the background loader reads per window, ahead of the model: the bound on the
    /// graphs in memory (about twice this many at once).
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// Sort each window of `prefetch` examples by length before cutting micro-batches (less
    /// padding in ESM; changes the reference's order, so off by default).
    #[serde(default)]
    pub bucket_by_length: bool,
}

fn default_prefetch() -> usize {
    64
}

fn default_split() -> String {
    "official".to_owned()
}

fn default_max_residues() -> usize {
    1022
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `fusionprot`, `esm2`, `gearnet`, `esm-gearnet`.
    pub kind: ModelKind,
    /// A model configuration TOML (`trainer/configs/*.toml`); default: the published sizes.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Initial weights: a FusionProt `.pth`, our safetensors, or ESM-2 weights for `esm2`.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// ESM-2 weights only (file, folder or hub id).
    #[serde(default)]
    pub esm: Option<String>,
    /// Start from a seeded random initialisation where no weights are given.
    #[serde(default)]
    pub random_init: bool,
    /// Initial weights from a run of ours: a pre-training (or fine-tuning) run folder, one of its
    /// checkpoint folders (`RUN/checkpoints/epoch-NNNN`, or `RUN/checkpoints/best`: the best, or
    /// for pre-training the newest) or an exported `model.safetensors`. Its head (`mlp.*`: the
    /// projection, the classifier) is dropped; every other key must fit the model, and every
    /// missing or unexpected one is named.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// Linear layers of the head (TorchDrug's `num_mlp_layer`); default 3 for EC / GO, 1 for
    /// MSP, as the reference's configs.
    #[serde(default)]
    pub mlp_layers: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub lr: f64,
    pub betas: [f64; 2],
    pub weight_decay: f64,
    pub eps: f64,
    /// ESM's learning rate is `lr × sequence_model_lr_ratio`.
    pub sequence_model_lr_ratio: f64,
    /// Train FusionProt's own fusion parameters (the reference leaves them out: quirk §6.1).
    pub train_fusion_parameters: bool,
    /// Proteins per forward pass.
    pub micro_batch: usize,
    /// Micro-batches per optimizer step (the last group of an epoch is divided by its real size).
    pub gradient_interval: usize,
    pub epochs: usize,
    /// Evaluate valid and test every this many epochs (and after the last).
    pub eval_every: usize,
    /// Mixed precision: forward passes under CUDA autocast (float16) with dynamic loss scaling.
    /// Off by default: the reference trains in float32. On CPU autocast changes nothing and only
    /// the (exact, power-of-two) loss scaling runs.
    pub amp: bool,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 2e-5,
            betas: [0.9, 0.98],
            weight_decay: 0.01,
            eps: 1e-8,
            sequence_model_lr_ratio: 0.08,
            train_fusion_parameters: false,
            micro_batch: 2,
            gradient_interval: 8,
            epochs: 100,
            eval_every: 2,
            amp: false,
        }
    }
}

/// ReduceLROnPlateau's settings (no `flatten`: serde ignores `deny_unknown_fields` with it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub enabled: bool,
    pub mode: super::plateau::Mode,
    pub factor: f64,
    pub patience: u32,
    pub threshold: f64,
    pub cooldown: u32,
    pub min_lr: f64,
    pub eps: f64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let p = PlateauConfig::default();
        Self {
            enabled: true,
            mode: p.mode,
            factor: p.factor,
            patience: p.patience,
            threshold: p.threshold,
            cooldown: p.cooldown,
            min_lr: p.min_lr,
            eps: p.eps,
        }
    }
}

impl SchedulerConfig {
    pub fn plateau(&self) -> PlateauConfig {
        PlateauConfig {
            mode: self.mode,
            factor: self.factor,
            patience: self.patience,
            threshold: self.threshold,
            cooldown: self.cooldown,
            min_lr: self.min_lr,
            eps: self.eps,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Evaluation checkpoints kept besides the best one.
    pub keep: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { keep: 1 }
    }
}

/// `--set key=value` overrides (`optim.lr=1e-4`, `data.split=family`: the value is TOML, a bare
/// word a string) merged into the TOML `text` before it is validated; returns the merged text and
/// the name errors should call it.
///
/// # Errors
/// Invalid TOML, an override without `=`, or one whose parent is not a section.
pub(crate) fn apply_sets(
    text: &str,
    name: &str,
    sets: &[String],
) -> Result<(String, String), ModelError> {
    if sets.is_empty() {
        return Ok((text.to_owned(), name.to_owned()));
    }
    let err = |message: String| ModelError::Config {
        path: name.to_owned(),
        message,
    };
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| err(e.to_string()))?;
    for set in sets {
        let (key, value) = set
            .split_once('=')
            .ok_or_else(|| err(format!("--set {set:?}: expected KEY=VALUE")))?;
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        let path: Vec<&str> = key.trim().split('.').collect();
        let (last, parents) = path
            .split_last()
            .ok_or_else(|| err(format!("--set {set:?}: empty key")))?;
        let mut table = &mut doc;
        for p in parents {
            table = table
                .entry((*p).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| err(format!("--set {set:?}: {p} is not a section")))?;
        }
        table.insert((*last).to_owned(), value);
    }
    let merged = toml::to_string(&doc).map_err(|e| err(e.to_string()))?;
    Ok((
        merged,
        format!("{name} with --set {}", sets.join(" --set ")),
    ))
}

impl ModelSection {
    /// Refuses weights given two ways.
    ///
    /// # Errors
    /// `init` together with `checkpoint` or `esm`.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.init.is_some() && (self.checkpoint.is_some() || self.esm.is_some()) {
            return Err(ConfigError::invalid(
                "model.init",
                "model.init gives all the starting weights: leave model.checkpoint and model.esm out",
            ));
        }
        Ok(())
    }

    /// Makes the model configuration, checkpoint, `init` and ESM paths absolute against `base`.
    pub fn absolutize(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = &mut self.config {
            abs(p);
        }
        if let Some(p) = &mut self.checkpoint {
            abs(p);
        }
        if let Some(p) = &mut self.init {
            abs(p);
        }
        if let Some(e) = &mut self.esm
            && Path::new(e.as_str()).is_relative()
            && base.join(e.as_str()).exists()
        {
            *e = base.join(e.as_str()).display().to_string();
        }
    }
}

impl TrainConfig {
    /// Reads and validates `path`; relative paths inside are relative to the current directory.
    ///
    /// # Errors
    /// Unreadable file, unknown key (named by serde with its line), invalid values.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Reads `path`, applies `--set key=value` overrides (`optim.lr=1e-4`, `data.split=family`:
    /// the value is TOML, a bare word a string), then validates the result once.
    ///
    /// # Errors
    /// As [`TrainConfig::load`]; an override without `=`, or one naming a key the configuration
    /// lacks (unknown keys are refused as in the file).
    pub fn load_with(path: &Path, sets: &[String]) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        let (text, name) = apply_sets(&text, &path.display().to_string(), sets)?;
        Self::parse(&text, &name)
    }

    /// Makes the dataset, model configuration and checkpoint paths absolute against `base`, so
    /// the copy kept in the run folder works from any directory (`--resume`).
    pub fn absolutize(&mut self, base: &Path) {
        if self.data.dataset.is_relative() {
            self.data.dataset = base.join(&self.data.dataset);
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

    /// Parses and validates TOML text; `name` is what errors call it.
    ///
    /// # Errors
    /// As [`TrainConfig::load`].
    pub fn parse(text: &str, name: &str) -> Result<Self, ModelError> {
        if let Ok(doc) = toml::from_str::<toml::Table>(text)
            && (doc.contains_key("objective")
                || doc.get("data").is_some_and(|d| d.get("datasets").is_some()))
        {
            return Err(ModelError::Config {
                path: name.to_owned(),
                message: "an [objective] section or data.datasets makes this a pre-training configuration: run it with `fusionprot pretrain`".into(),
            });
        }
        let cfg: TrainConfig = toml::from_str(text).map_err(|e| ModelError::Config {
            path: name.to_owned(),
            message: e.to_string(),
        })?;
        cfg.validate().map_err(|e| ModelError::Config {
            path: name.to_owned(),
            message: e.to_string(),
        })?;
        Ok(cfg)
    }

    /// Linear layers of the head, resolved for the task.
    pub fn mlp_layers(&self) -> usize {
        self.model
            .mlp_layers
            .unwrap_or(if self.data.task.is_pairs() { 1 } else { 3 })
    }

    /// The model kind named in `model.kind`.
    pub fn kind(&self) -> ModelKind {
        self.model.kind
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.model.check()?;
        let o = &self.optim;
        positive(o.lr, "optim.lr")?;
        positive(o.eps, "optim.eps")?;
        non_negative(o.weight_decay, "optim.weight_decay")?;
        non_negative(self.scheduler.min_lr, "scheduler.min_lr")?;
        non_negative(self.scheduler.eps, "scheduler.eps")?;
        if !(0.0..=1.0).contains(&o.sequence_model_lr_ratio) {
            return Err(ConfigError::invalid(
                "optim.sequence_model_lr_ratio",
                "optim.sequence_model_lr_ratio must be in [0, 1]",
            ));
        }
        if o.betas.iter().any(|b| !(0.0..1.0).contains(b)) {
            return Err(ConfigError::invalid(
                "optim.betas",
                format!("optim.betas must be in [0, 1), got {:?}", o.betas),
            ));
        }
        for (v, what) in [
            (o.micro_batch, "optim.micro_batch"),
            (o.gradient_interval, "optim.gradient_interval"),
            (o.epochs, "optim.epochs"),
            (o.eval_every, "optim.eval_every"),
            (self.mlp_layers(), "model.mlp_layers"),
            (self.data.max_residues, "data.max_residues"),
            (self.data.prefetch, "data.prefetch"),
        ] {
            if v == 0 {
                return Err(ConfigError::invalid(
                    what,
                    format!("{what} must be at least 1"),
                ));
            }
        }
        if self.scheduler.enabled {
            let p = self.scheduler.plateau();
            if !(p.factor > 0.0 && p.factor < 1.0) {
                return Err(ConfigError::invalid(
                    "scheduler.factor",
                    format!("scheduler.factor must be in (0, 1), got {}", p.factor),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_recipe_and_mistakes_are_named() {
        let c = TrainConfig::parse(
            "[data]\ndataset = \"ec\"\ntask = \"ec\"\n[model]\nkind = \"fusionprot\"\n",
            "t.toml",
        )
        .expect("parses");
        assert_eq!(c.optim.sequence_model_lr_ratio, 0.08);
        assert_eq!((c.optim.micro_batch, c.optim.gradient_interval), (2, 8));
        assert_eq!(c.scheduler.plateau().patience, 5);
        let bad = TrainConfig::parse(
            "[data]\ndataset = \"ec\"\ntask = \"ec\"\n[model]\nkind = \"fusionprot\"\n[scheduler]\npatiense = 3\n",
            "t.toml",
        )
        .expect_err("unknown scheduler key")
        .to_string();
        assert!(bad.contains("patiense"), "{bad}");
        assert_eq!(c.data.split, "official");
        let bad = TrainConfig::parse(
            "[data]\ndataset = \"ec\"\ntask = \"ec\"\nsplitt = \"x\"\n[model]\nkind = \"fusionprot\"\n",
            "t.toml",
        )
        .expect_err("unknown key")
        .to_string();
        assert!(bad.contains("t.toml") && bad.contains("splitt"), "{bad}");
        let bad = TrainConfig::parse(
            "[data]\ndataset = \"ec\"\ntask = \"ec\"\n[model]\nkind = \"fusionprot\"\n[optim]\nmicro_batch = 0\n",
            "t.toml",
        )
        .expect_err("zero batch")
        .to_string();
        assert!(bad.contains("optim.micro_batch"), "{bad}");
        // Issue 20: a negative or NaN weight decay and a negative min_lr are refused at load.
        for (section, line, key) in [
            ("optim", "weight_decay = -0.01", "optim.weight_decay"),
            ("optim", "weight_decay = nan", "optim.weight_decay"),
            ("scheduler", "min_lr = -1e-6", "scheduler.min_lr"),
        ] {
            let bad = TrainConfig::parse(
                &format!(
                    "[data]\ndataset = \"ec\"\ntask = \"ec\"\n[model]\nkind = \"fusionprot\"\n[{section}]\n{line}\n"
                ),
                "t.toml",
            )
            .expect_err(line)
            .to_string();
            assert!(
                bad.contains(key) && bad.contains("zero or positive"),
                "{bad}"
            );
        }
    }

    #[test]
    fn task_and_model_kind_are_parsed_once_and_typos_name_the_choices() {
        let text = |task: &str, kind: &str| {
            format!("[data]\ndataset = \"d\"\ntask = \"{task}\"\n[model]\nkind = \"{kind}\"\n")
        };
        let c = TrainConfig::parse(&text("msp", "esm-gearnet"), "t.toml").expect("valid");
        assert_eq!((c.data.task, c.kind()), (Task::Msp, ModelKind::EsmGearnet));
        assert!(c.data.task.is_pairs() && c.mlp_layers() == 1);
        let again = TrainConfig::parse(&c.to_toml().expect("toml"), "again").expect("round trip");
        assert_eq!(again.data.task, Task::Msp);
        for task in ["ec", "go-mf", "go-bp", "go-cc", "msp"] {
            assert_eq!(Task::from_name(task).map(Task::name), Some(task));
        }
        let e = TrainConfig::parse(&text("ecc", "fusionprot"), "t.toml")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("`ecc`") && e.contains("`go-cc`"), "{e}");
        let e = TrainConfig::parse(&text("ec", "esm3"), "t.toml")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("unknown model kind \"esm3\""), "{e}");
    }

    #[test]
    fn every_shipped_recipe_loads_and_names_files_that_exist() {
        let root =
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
                .join("..");
        let mut seen = Vec::new();
        for e in std::fs::read_dir(root.join("trainer/configs")).expect("configs") {
            let path = e.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            if !text.contains("[data]") {
                continue; // a model configuration
            }
            if text.contains("[objective]") {
                // A pre-training recipe: it loads as one, and is refused as a fine-tuning one.
                let p = super::super::pretrain_config::PretrainConfig::load_with(&path, &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if let Some(model) = &p.model.config {
                    assert!(root.join(model).is_file(), "{}", path.display());
                }
                let e = TrainConfig::load(&path)
                    .expect_err("a pre-training recipe")
                    .to_string();
                assert!(e.contains("fusionprot pretrain"), "{e}");
                continue;
            }
            let c = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Some(model) = &c.model.config {
                assert!(
                    root.join(model).is_file(),
                    "{}: {}",
                    path.display(),
                    model.display()
                );
            }
            seen.push((
                c.data.task.name().to_owned(),
                c.model.kind.name().to_owned(),
            ));
        }
        for task in ["ec", "go-mf", "msp"] {
            for kind in ["fusionprot", "esm2", "gearnet", "esm-gearnet"] {
                assert!(
                    seen.contains(&(task.to_owned(), kind.to_owned())),
                    "no {task} recipe for {kind}"
                );
            }
        }
    }

    #[test]
    fn set_overrides_are_typed_validated_and_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[data]\ndataset = \"ec\"\ntask = \"ec\"\n[model]\nkind = \"fusionprot\"\n",
        )
        .expect("write");
        let set = |v: &[&str]| {
            TrainConfig::load_with(&f, &v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        let c = set(&[
            "optim.lr=1e-4",
            "data.split=family",
            "scheduler.enabled=false",
        ])
        .expect("overrides");
        assert_eq!(c.optim.lr, 1e-4);
        assert_eq!(c.data.split, "family");
        assert!(!c.scheduler.enabled);
        let bad = set(&["optim.lrr=1"]).expect_err("unknown key").to_string();
        assert!(bad.contains("lrr") && bad.contains("--set"), "{bad}");
        let bad = set(&["optim.micro_batch=0"])
            .expect_err("validated")
            .to_string();
        assert!(bad.contains("optim.micro_batch"), "{bad}");
        let bad = set(&["optim.lr"]).expect_err("no =").to_string();
        assert!(bad.contains("KEY=VALUE"), "{bad}");
        let bad = set(&["optim.lr=\"fast\""])
            .expect_err("a string for a float")
            .to_string();
        assert!(bad.contains("lr") || bad.contains("invalid type"), "{bad}");
        let mut c = set(&[]).expect("plain");
        c.absolutize(Path::new("/runs"));
        assert_eq!(c.data.dataset, Path::new("/runs/ec"));
        let again = TrainConfig::parse(&c.to_toml().expect("toml"), "again").expect("round trip");
        assert_eq!(again, c);
    }
}
