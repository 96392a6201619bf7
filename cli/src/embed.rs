//! `fusionprot embed`: protein embeddings for a prepared dataset.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use fusionprot_trainer::ModelKind;
use fusionprot_trainer::embed::{EmbedOptions, embed};
use fusionprot_trainer::weights::load::{DeviceChoice, ModelSpec, build};

use crate::progress;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelArg {
    Fusionprot,
    Esm2,
    Gearnet,
    EsmGearnet,
}

impl From<ModelArg> for ModelKind {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Fusionprot => ModelKind::Fusionprot,
            ModelArg::Esm2 => ModelKind::Esm2,
            ModelArg::Gearnet => ModelKind::Gearnet,
            ModelArg::EsmGearnet => ModelKind::EsmGearnet,
        }
    }
}

/// Embed every protein of a prepared dataset with FusionProt or a baseline.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// A dataset written by `fusionprot prepare`.
    pub dataset: PathBuf,
    #[arg(long, value_enum, default_value = "fusionprot")]
    pub model: ModelArg,
    /// Whole-model weights: a FusionProt `.pth` state_dict, a safetensors file written by
    /// fusionprot, or (for --model esm2) any ESM-2 checkpoint. The model configuration follows
    /// from it unless --model-config is given, which is then checked against it.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// ESM-2 weights only: a file (.safetensors, fair-esm .pt), a HuggingFace folder, or a hub
    /// id such as facebook/esm2_t33_650M_UR50D (hub cache first, then downloaded).
    #[arg(long)]
    pub esm: Option<String>,
    /// Model configuration (TOML; see ARCHITECTURE.md, "Models").
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// Run with randomly initialised weights (for trying the pipeline; the embeddings mean nothing).
    #[arg(long)]
    pub random_init: bool,
    /// Output Parquet file (table embeddings/v1); `<out>.manifest.json` is written beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write every residue's embedding (column residue_embedding).
    #[arg(long)]
    pub per_residue: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Proteins per forward pass.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// Seed for random initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: i64,
    /// Also save the loaded model's weights as safetensors (state_dict names).
    #[arg(long)]
    pub save_weights: Option<PathBuf>,
}

pub fn run(args: &EmbedArgs) -> Result<ExitCode> {
    let device = args.device.open()?;
    let spec = ModelSpec {
        kind: args.model.into(),
        config: args.model_config.clone(),
        checkpoint: args.checkpoint.clone(),
        esm: args.esm.clone(),
        random_init: args.random_init,
        device,
        seed: args.seed,
    };
    let loaded = build(&spec).context("loading the model")?;
    let model = &loaded.model;
    if !loaded.random_parts.is_empty() {
        tracing::warn!(
            "randomly initialised (seed {}): {}",
            args.seed,
            loaded.random_parts.join(", ")
        );
    }
    tracing::info!(
        model = spec.kind.name(),
        parameters = model.num_parameters(),
        dim = model.output_dim(),
        device = ?device,
        "model ready"
    );
    if let Some(path) = &args.save_weights {
        fusionprot_trainer::weights::save(model, path)
            .with_context(|| format!("saving weights to {}", path.display()))?;
    }
    let total = fusionprot_pipeline::dataset::read::read_table(
        &args.dataset,
        fusionprot_pipeline::dataset::schema::Table::Proteins,
    )
    .with_context(|| format!("reading {}", args.dataset.display()))?
    .iter()
    .map(|b| b.num_rows() as u64)
    .sum::<u64>();
    let bar = progress::bar("proteins");
    bar.set_length(total);
    bar.set_message("embedding");
    let opts = EmbedOptions {
        dataset: args.dataset.clone(),
        out: args.out.clone(),
        per_residue: args.per_residue,
        batch_size: args.batch_size as usize,
        window: 1024,
    };
    let summary = embed(model, &opts, |done| bar.set_position(done as u64))
        .with_context(|| format!("embedding {}", args.dataset.display()))?;
    bar.finish_and_clear();
    let dataset_manifest = args.dataset.join("manifest.json");
    let manifest = serde_json::json!({
        "schema": fusionprot_trainer::embed::SCHEMA_TAG,
        "fusionprot_version": env!("CARGO_PKG_VERSION"),
        "dataset": {
            "path": args.dataset.display().to_string(),
            "manifest_sha256": sha256_file(&dataset_manifest).ok(),
        },
        "model": loaded.provenance,
        "device": args.device.to_string(),
        "batch_size": args.batch_size,
        "per_residue": args.per_residue,
        "proteins": summary.proteins,
        "residues": summary.residues,
        "truncated_proteins": summary.truncated,
        "dim": summary.dim,
    });
    let manifest_path = PathBuf::from(format!("{}.manifest.json", args.out.display()));
    write_atomic(&manifest_path, &serde_json::to_vec_pretty(&manifest)?)?;
    let random = if loaded.random_parts.is_empty() {
        String::new()
    } else {
        format!(" (RANDOM weights: {})", loaded.random_parts.join(", "))
    };
    println!(
        "embedded {} proteins ({} residues, {} truncated to {}) with {}{random}: {} × {} float32 in {:.1} s → {}",
        summary.proteins,
        summary.residues,
        summary.truncated,
        model.config.esm.max_residues,
        spec.kind.name(),
        summary.proteins,
        summary.dim,
        summary.seconds,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn sha256_file(path: &std::path::Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path)?;
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), bytes)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
