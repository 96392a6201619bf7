//! `fusionprot export`: a run's checkpoint as the reference's state dict (safetensors), loadable
//! by FusionProt's own code with `load_state_dict(strict=True)`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run folder, RUN/checkpoints/epoch-NNNN, RUN/checkpoints/best, or such a folder's
    /// model.safetensors (the run's config.toml gives the model's kind and sizes).
    checkpoint: PathBuf,
    /// Where to write the state dict (safetensors); OUT.manifest.json is written beside it.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let e = fusionprot_trainer::train::export(&args.checkpoint, &args.out)
        .with_context(|| format!("exporting {}", args.checkpoint.display()))?;
    println!(
        "exported {} tensors under the reference's names to {} (from {}; {} head tensors left out)",
        e.tensors,
        args.out.display(),
        e.source.display(),
        e.dropped
    );
    println!("manifest: {}", e.manifest.display());
    println!(
        "load in PyTorch: model.load_state_dict(safetensors.torch.load_file({:?}), strict=True)",
        args.out.display().to_string()
    );
    Ok(ExitCode::SUCCESS)
}
