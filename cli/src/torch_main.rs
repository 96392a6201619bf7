//! The `fusionprot-torch` binary: the commands that run tensors on libtorch (`train`,
//! `pretrain`, `embed`, `evaluate`, `export`, and doctor's libtorch part). Users type
//! `fusionprot train …`; `fusionprot` hands these commands to this binary by `exec`, so its usage
//! lines say `fusionprot`. Data-parallel ranks spawned by `--world-size` are this binary again.

mod common;
mod embed;
mod evaluate;
mod export;
mod pretrain;
mod progress;
mod report;
mod run_folder;
mod torch_doctor;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// FusionProt's libtorch commands (run through `fusionprot CMD`): train, pre-train, embed,
/// evaluate and export.
#[derive(Debug, Parser)]
#[command(name = "fusionprot", bin_name = "fusionprot", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The libtorch part of `fusionprot doctor`: libtorch's version, a forward on the CPU and on
    /// each CUDA device.
    Doctor(torch_doctor::TorchDoctorArgs),
    Embed(embed::EmbedArgs),
    /// Evaluate a fine-tuning checkpoint on one part of a named split; writes a predictions table.
    Evaluate(evaluate::EvaluateArgs),
    /// Write a run's checkpoint as the reference's state dict (FusionNetwork's names; the head
    /// left out), loadable by FusionProt's PyTorch code with strict=True.
    Export(export::ExportArgs),
    /// Fine-tune a model (FusionProt or a baseline) on a task of an imported benchmark: the
    /// reference's recipe, checkpoints with exact resume, every run tracked.
    Train(train::TrainArgs),
    /// Pre-train on prepared structures (AlphaFold DB proteomes): Multiview Contrast as
    /// FusionProt's published weights, or residue-type prediction; tracked, exact resume.
    Pretrain(pretrain::PretrainArgs),
}

fn main() -> ExitCode {
    common::init_logging();
    common::quiet_on_closed_stdout();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor(args) => torch_doctor::run(&args),
        Command::Embed(args) => embed::run(&args),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Pretrain(args) => pretrain::run(&args),
    };
    match result {
        Err(err) if err.is::<run_folder::Interrupted>() => {
            ExitCode::from(fusionprot_dist::spawn::INTERRUPTED_EXIT as u8)
        }
        result => common::exit_code(result),
    }
}
