//! `fusionprot pretrain`: Multiview Contrast (or residue-type prediction) on prepared datasets —
//! AlphaFold DB proteomes as the reference — tracked and resumable like a fine-tuning run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use fusionprot_trainer::train::{PretrainConfig, pretrain, pretrain_preflight};

use crate::run_folder::{LaunchFlags, Session, drive};

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// The run's TOML configuration (trainer/configs/mc-fusionprot.toml is the reference recipe;
    /// tiny-mc.toml documents every key).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The run folder (checkpoints, summary.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint (its config.toml is used).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["out", "config", "set"])]
    resume: Option<PathBuf>,
    /// Override one config key, e.g. `--set optim.epochs=5 --set objective.kind=residue-type`
    /// (the value is TOML; a bare word is a string). Validated with the file, like any key.
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(flatten)]
    launch: LaunchFlags,
}

pub fn run(args: &PretrainArgs) -> anyhow::Result<ExitCode> {
    if crate::run_folder::spawn_ranks_if_asked(&args.launch)? {
        return Ok(ExitCode::SUCCESS);
    }
    let (out, config_path, resume) = crate::run_folder::target(
        args.resume.as_deref(),
        args.out.as_deref(),
        args.config.as_deref(),
    )?;
    if resume && !out.join("config.toml").is_file() {
        bail!(
            "--resume {}: not a run folder (no config.toml)",
            out.display()
        );
    }
    let sets: &[String] = if resume { &[] } else { &args.set };
    let mut cfg = PretrainConfig::load_with(&config_path, sets)?;
    cfg.absolutize(&std::env::current_dir().context("the current directory")?);
    let mut proteins = 0;
    let session = Session::open(
        &out,
        resume,
        &args.launch,
        || {
            proteins = pretrain_preflight(&cfg)
                .with_context(|| format!("pre-training with {}", config_path.display()))?;
            crate::run_folder::check_init(cfg.model.init.as_deref(), resume)
        },
        || Ok(cfg.to_toml()?),
    )?;
    let objective = cfg.objective.kind.name();
    let datasets: Vec<String> = cfg
        .data
        .datasets
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let tags = vec![
        ("fusionprot.objective", objective.to_owned()),
        ("model", cfg.model.kind.name().to_owned()),
        ("dataset", datasets.join(",")),
        ("seed", cfg.seed.to_string()),
    ];
    let mut tracked = session.track(
        args.launch.token.clone(),
        &format!("{}-{objective}-seed{}", cfg.model.kind, cfg.seed),
        tags,
        // Every dataset linked, each under its own context (one dataset per context and run).
        cfg.data
            .datasets
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let context = if k == 0 {
                    "pretrain".to_owned()
                } else {
                    format!("pretrain-{}", k + 1)
                };
                (dataset_name(d), d.clone(), context)
            })
            .collect(),
    )?;
    let s = drive(
        &session,
        &mut tracked,
        "pretrain",
        &format!("pre-training with {}", config_path.display()),
        |opts, log, bar| pretrain(&cfg, opts, log, bar),
    )?;
    if !session.is_leader() {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "pre-trained {} with {objective} on {} proteins of {} dataset(s): {} epochs, {} steps{}",
        cfg.model.kind,
        s.train_proteins.max(proteins),
        cfg.data.datasets.len(),
        s.state.epoch,
        s.state.step,
        s.resumed_from_epoch
            .map(|e| format!(" (resumed after epoch {e})"))
            .unwrap_or_default()
    );
    if s.train_seconds > 0.0 {
        println!(
            "training steps: {:.1} s, {:.2} proteins/s",
            s.train_seconds,
            s.train_examples_seen as f64 / s.train_seconds
        );
    }
    println!(
        "run folder: {} (fine-tune from it with --set model.init={}/checkpoints/best)",
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn dataset_name(path: &std::path::Path) -> String {
    path.file_name()
        .map_or_else(|| "dataset".into(), |n| n.to_string_lossy().into_owned())
}
