//! `fusionprot train`: fine-tune a model on an imported benchmark task, tracked.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use fusionprot_trainer::train::{Summary, TrainConfig, train};

use crate::run_folder::{LaunchFlags, Session, dataset_hash, drive};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run's TOML configuration (trainer/configs/tiny-ec.toml documents every key).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The run folder (checkpoints, test predictions at best-valid, summary.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint (its config.toml is used).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["out", "config", "set"])]
    resume: Option<PathBuf>,
    /// Override one config key, e.g. `--set optim.lr=1e-4 --set data.split=family` (the value is
    /// TOML; a bare word is a string). Validated with the file, like any key.
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Overrides the config's seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<i64>,
    /// Runs one after another, one per seed, each its own tracked run in `OUT/seed-N` with a shared
    /// `group` tag (mean ± sd over seeds, as papers report).
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    seeds: Option<Vec<i64>>,
    #[command(flatten)]
    launch: LaunchFlags,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    if crate::run_folder::spawn_ranks_if_asked(&args.launch)? {
        return Ok(ExitCode::SUCCESS);
    }
    let (out, config_path, resume) = crate::run_folder::target(
        args.resume.as_deref(),
        args.out.as_deref(),
        args.config.as_deref(),
    )?;
    let Some(seeds) = &args.seeds else {
        run_one(args, &out, &config_path, resume, args.seed, None)?;
        return Ok(ExitCode::SUCCESS);
    };
    if seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    let group = out.display().to_string();
    let mut results = Vec::new();
    for &seed in seeds {
        let s = run_one(
            args,
            &out.join(format!("seed-{seed}")),
            &config_path,
            false,
            Some(seed),
            Some(&group),
        )?;
        let test = s.best().and_then(|b| b.test.get(&s.selection).copied());
        results.push((seed, test, s.selection.clone()));
    }
    let values: Vec<f64> = results.iter().filter_map(|r| r.1).collect();
    let selection = results.first().map(|r| r.2.clone()).unwrap_or_default();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    println!(
        "test {selection} at best valid over seeds {:?}: {mean:.4} ± {sd:.4} (n = {})",
        seeds,
        values.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// One run (fresh or resumed) in `out`.
fn run_one(
    args: &TrainArgs,
    out: &std::path::Path,
    config_path: &std::path::Path,
    resume: bool,
    seed: Option<i64>,
    group: Option<&str>,
) -> anyhow::Result<Summary> {
    let out = out.to_path_buf();
    if resume && !out.join("config.toml").is_file() {
        bail!(
            "--resume {}: not a run folder (no config.toml)",
            out.display()
        );
    }
    let mut cfg = if resume {
        TrainConfig::load(config_path)?
    } else {
        TrainConfig::load_with(config_path, &args.set)?
    };
    if let Some(seed) = seed {
        cfg.seed = seed;
    }
    cfg.absolutize(&std::env::current_dir().context("the current directory")?);
    // Nothing starts (no tracked run, no config written) unless the folder is writable, no
    // other process trains in it (the lock is held for the life of this one), and the task,
    // split and data are there.
    let session = Session::open(
        &out,
        resume,
        &args.launch,
        || {
            fusionprot_trainer::train::preflight(&cfg)
                .with_context(|| format!("training with {}", config_path.display()))?;
            crate::run_folder::check_init(cfg.model.init.as_deref(), resume)
        },
        || Ok(cfg.to_toml()?),
    )?;
    let mut tags = vec![
        ("task", cfg.data.task.name().to_owned()),
        ("model", cfg.model.kind.name().to_owned()),
        ("dataset", cfg.data.dataset.display().to_string()),
        ("split", cfg.data.split.clone()),
        ("seed", cfg.seed.to_string()),
    ];
    if let Some(hash) = dataset_hash(&cfg.data.dataset) {
        tags.push(("dataset.content_hash", hash));
    }
    if let Some(g) = group {
        tags.push(("group", g.to_owned()));
    }
    if let Some(init) = &cfg.model.init {
        tags.push(("fusionprot.init", init.display().to_string()));
    }
    let dataset_name = cfg
        .data
        .dataset
        .file_name()
        .map_or_else(|| "dataset".into(), |n| n.to_string_lossy().into_owned());
    let mut tracked = session.track(
        args.launch.token.clone(),
        &format!("{}-{}-seed{}", cfg.model.kind, cfg.data.task, cfg.seed),
        tags,
        vec![(
            dataset_name,
            cfg.data.dataset.clone(),
            cfg.data.split.clone(),
        )],
    )?;
    let s = drive(
        &session,
        &mut tracked,
        "train",
        &format!("training with {}", config_path.display()),
        |opts, log, bar| train(&cfg, opts, log, bar),
    )?;
    if !session.is_leader() {
        return Ok(s);
    }
    println!(
        "trained {} on {} ({} split {:?}): {} train / {} valid / {} test proteins, {} labels, {} epochs, {} steps{}",
        cfg.model.kind,
        cfg.data.task,
        cfg.data.dataset.display(),
        cfg.data.split,
        s.train_proteins,
        s.valid_proteins,
        s.test_proteins,
        s.labels,
        s.state.epoch,
        s.state.step,
        s.resumed_from_epoch
            .map(|e| format!(" (resumed after epoch {e})"))
            .unwrap_or_default()
    );
    let (a, b) = if s.selection == "auroc" {
        ("auroc", "auprc")
    } else {
        ("f1_max", "auprc@micro")
    };
    println!(
        "{:<8} {:>6} {:>12} {:>12} {:>12} {:>12}",
        "epoch",
        "step",
        format!("valid {}", short(a)),
        format!("valid {}", short(b)),
        format!("test {}", short(a)),
        format!("test {}", short(b))
    );
    for (i, e) in s.state.evaluations.iter().enumerate() {
        let g = |m: &std::collections::BTreeMap<String, f64>, k: &str| {
            m.get(k).copied().unwrap_or(f64::NAN)
        };
        println!(
            "{:<8} {:>6} {:>12.4} {:>12.4} {:>12.4} {:>12.4}{}",
            e.epoch,
            e.step,
            g(&e.valid, a),
            g(&e.valid, b),
            g(&e.test, a),
            g(&e.test, b),
            if Some(i) == s.state.best {
                "  best"
            } else {
                ""
            }
        );
    }
    if s.train_seconds > 0.0 {
        println!(
            "training steps: {:.1} s, {:.2} examples/s",
            s.train_seconds,
            s.train_examples_seen as f64 / s.train_seconds
        );
    }
    println!("run folder: {}", out.display());
    Ok(s)
}

fn short(metric: &str) -> &str {
    match metric {
        "f1_max" => "Fmax",
        "auprc@micro" | "auprc" => "AUPR",
        "auroc" => "AUROC",
        other => other,
    }
}
