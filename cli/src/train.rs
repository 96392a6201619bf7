//! `fusionprot train`: fine-tune a model on an imported benchmark task, tracked.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use fusionprot_tracker::client::Client;
use fusionprot_tracker::model::KeyValue;
use fusionprot_trainer::load::parse_device;
use fusionprot_trainer::train::{
    CheckpointRecord, RunLog, RunOptions, Summary, TrainConfig, train,
};

use crate::progress;

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
    /// Track the run: http://HOST:PORT (a `fusionprot serve`) or sqlite:///path/fusionprot.db.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    tracking_uri: Option<String>,
    /// Bearer token of the tracker.
    #[arg(long, env = "FUSIONPROT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Experiment name in the tracker.
    #[arg(long, default_value = "fusionprot")]
    experiment: String,
    /// cpu, cuda or cuda:N (default cpu; `--resume` uses the run's own).
    #[arg(long)]
    device: Option<String>,
    /// Overrides the config's seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<i64>,
    /// Runs one after another, one per seed, each its own tracked run in `OUT/seed-N` with a shared
    /// `group` tag (mean ± sd over seeds, as papers report).
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    seeds: Option<Vec<i64>>,
    /// libtorch threads (fixed, so CPU runs are bitwise reproducible; default: all cores;
    /// `--resume` uses the run's own, recorded in RUN_DIR/launch.json).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// With --resume: continue with another -j than the run was trained with (its remaining
    /// steps then differ in the last bits from an uninterrupted run's).
    #[arg(long, requires = "resume")]
    allow_other_threads: bool,
}

/// How a run was launched, kept in `RUN_DIR/launch.json` so `--resume` continues it the same
/// way without the user repeating flags: where it is tracked (never the token), the thread
/// count (CPU results depend on it bitwise) and the device.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Launch {
    tracking_uri: Option<String>,
    experiment: String,
    threads: usize,
    device: String,
}

impl Launch {
    const FILE: &'static str = "launch.json";

    /// A fresh run's launch from the flags.
    fn fresh(args: &TrainArgs) -> Launch {
        Launch {
            tracking_uri: args.tracking_uri.clone(),
            experiment: args.experiment.clone(),
            threads: args
                .jobs
                .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
                .unwrap_or(1),
            device: args.device.clone().unwrap_or_else(|| "cpu".into()),
        }
    }

    /// A resumed run's launch: the recorded one, with the flags checked against it.
    fn resumed(args: &TrainArgs, out: &std::path::Path) -> anyhow::Result<Launch> {
        let path = out.join(Self::FILE);
        let recorded: Option<Launch> = match std::fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let Some(mut launch) = recorded else {
            // A run folder from before launch.json: the flags as given, and a loud word when
            // the run was tracked but no tracker is named.
            if args.tracking_uri.is_none() && out.join("run-id").is_file() {
                eprintln!(
                    "warning: {} was tracked (run-id), but its tracking URI is not recorded: give --tracking-uri to log the rest of the run there; it continues untracked",
                    out.display()
                );
            }
            return Ok(Launch::fresh(args));
        };
        match (&args.tracking_uri, &launch.tracking_uri) {
            (Some(given), Some(recorded)) if given != recorded => bail!(
                "{} is tracked at {recorded}; resume without --tracking-uri (or with that URI) to log the rest of the run there",
                out.display()
            ),
            (Some(given), None) => bail!(
                "{} was not tracked when it started; a resumed run cannot start tracking at {given} halfway (its first epochs would be missing)",
                out.display()
            ),
            _ => {}
        }
        if let Some(j) = args.jobs
            && j != launch.threads
        {
            if !args.allow_other_threads {
                bail!(
                    "{} was trained with -j {}; resuming with -j {j} changes its remaining steps in the last bits (not bitwise equal to an uninterrupted run). Resume without -j, or pass --allow-other-threads",
                    out.display(),
                    launch.threads
                );
            }
            launch.threads = j;
        }
        if let Some(d) = &args.device {
            launch.device.clone_from(d);
        }
        Ok(launch)
    }

    fn write(&self, out: &std::path::Path) -> anyhow::Result<()> {
        let tmp = out.join(format!("{}.tmp", Self::FILE));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .and_then(|()| std::fs::rename(&tmp, out.join(Self::FILE)))
            .with_context(|| format!("writing {}/{}", out.display(), Self::FILE))
    }
}

/// The tracker behind the trainer's [`RunLog`]: failures to log are warnings, never a lost run
/// (the client spools while the server is down).
struct Tracked {
    client: Client,
    run_id: String,
}

impl RunLog for Tracked {
    fn params(&mut self, params: &[(String, String)]) {
        let kv: Vec<KeyValue> = params
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        if let Err(e) = self.client.log_params(&self.run_id, &kv, &[]) {
            tracing::warn!(error = %e, "could not log params");
        }
    }

    fn metric(&mut self, key: &str, value: f64, step: i64) {
        // MLflow's metric names allow no `@`: TorchDrug's `auprc@micro` is logged as `auprc_micro`.
        let key = key.replace('@', "_");
        if let Err(e) = self.client.log_metric(&self.run_id, &key, value, step) {
            tracing::warn!(error = %e, key = %key, "could not log a metric");
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.client.flush() {
            tracing::warn!(error = %e, "could not send metrics; they stay in the client's spool");
        }
    }

    /// Into the tracker's `checkpoints` table: step, path, sha256 of the weights, the metrics of
    /// its evaluation, the best flag (spooled with the metrics while the server is down).
    fn checkpoint(&mut self, r: &CheckpointRecord) {
        let record = serde_json::json!({
            "run_id": self.run_id,
            "step": r.step,
            "path": r.path.display().to_string(),
            "sha256": r.sha256,
            "metrics": r.metrics,
            "is_best": r.best,
        });
        if let Err(e) = self.client.log_checkpoint(&record) {
            tracing::warn!(error = %e, "could not record the checkpoint");
        }
    }

    fn artifact(&mut self, path: &std::path::Path, artifact_path: &str) {
        if let Err(e) = self.client.log_artifact(&self.run_id, path, artifact_path) {
            tracing::warn!(error = %e, file = %path.display(), "could not log the artifact; it stays in the run folder");
        }
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let (out, config_path, resume) = match (&args.resume, &args.out, &args.config) {
        (Some(dir), _, _) => (dir.clone(), dir.join("config.toml"), true),
        (None, Some(out), Some(config)) => (out.clone(), config.clone(), false),
        _ => bail!("give --config FILE and --out DIR, or --resume RUN_DIR"),
    };
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

/// A run stopped by Ctrl-C (exit code 130 in `main`).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

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
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // Nothing starts (no tracked run, no config written) unless the folder is writable, no
    // other process trains in it (the lock is held for the life of this one), and the task,
    // split and data are there.
    fusionprot_trainer::train::folder::check_writable(&out)?;
    let _lock = fusionprot_trainer::train::folder::lock(&out)?;
    let launch = if resume {
        Launch::resumed(args, &out)?
    } else {
        Launch::fresh(args)
    };
    let device = parse_device(&launch.device)?;
    fusionprot_trainer::runtime::set_threads(launch.threads);
    fusionprot_trainer::train::preflight(&cfg)
        .with_context(|| format!("training with {}", config_path.display()))?;
    if !resume {
        // The run folder keeps the configuration it was started with, for --resume (the seed is
        // in the checkpoints' weights from then on).
        let has_checkpoints = std::fs::read_dir(out.join("checkpoints"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().starts_with("epoch-"))
            })
            .unwrap_or(false);
        if has_checkpoints {
            bail!(
                "{} already holds a run: pass --resume {} to continue it, or choose another --out",
                out.display(),
                out.display()
            );
        }
        // The resolved configuration: overrides applied, paths absolute, every default spelled out.
        let tmp = out.join("config.toml.tmp");
        std::fs::write(&tmp, cfg.to_toml()?)
            .and_then(|()| std::fs::rename(&tmp, out.join("config.toml")))
            .with_context(|| format!("writing {}/config.toml", out.display()))?;
        launch.write(&out)?;
    } else if launch.tracking_uri.is_some() && args.tracking_uri.is_none() {
        eprintln!(
            "resuming: tracking at {} as when the run started ({}/launch.json)",
            launch.tracking_uri.as_deref().unwrap_or_default(),
            out.display()
        );
    }
    let mut tracked = match &launch.tracking_uri {
        Some(uri) => {
            let mut client =
                Client::connect(uri, args.token.clone(), out.join("tracking-spool.jsonl"))
                    .with_context(|| format!("connecting to {uri}"))?;
            let run_file = out.join("run-id");
            let run_id = if resume && run_file.is_file() {
                std::fs::read_to_string(&run_file)?.trim().to_owned()
            } else {
                let mut tags = vec![
                    ("task", cfg.data.task.clone()),
                    ("model", cfg.model.kind.clone()),
                    ("dataset", cfg.data.dataset.display().to_string()),
                    ("split", cfg.data.split.clone()),
                    ("seed", cfg.seed.to_string()),
                    ("device", launch.device.clone()),
                    ("fusionprot.version", env!("CARGO_PKG_VERSION").to_owned()),
                ];
                if let Some(commit) = option_env!("FUSIONPROT_GIT_COMMIT") {
                    tags.push(("fusionprot.git_commit", commit.to_owned()));
                }
                if let Some(hash) = dataset_hash(&cfg.data.dataset) {
                    tags.push(("dataset.content_hash", hash));
                }
                if let Some(g) = group {
                    tags.push(("group", g.to_owned()));
                }
                let tags: Vec<KeyValue> = tags
                    .into_iter()
                    .map(|(k, v)| KeyValue {
                        key: k.to_owned(),
                        value: v,
                    })
                    .collect();
                let name = format!("{}-{}-seed{}", cfg.model.kind, cfg.data.task, cfg.seed);
                let id = client.create_run(&launch.experiment, &name, &tags)?;
                std::fs::write(&run_file, &id)?;
                let dataset_name = cfg
                    .data
                    .dataset
                    .file_name()
                    .map_or_else(|| "dataset".into(), |n| n.to_string_lossy().into_owned());
                if let Err(e) =
                    client.link_dataset(&id, &dataset_name, &cfg.data.dataset, &cfg.data.split)
                {
                    tracing::warn!(error = %e, "could not link the dataset to the run (its content hash is a tag)");
                }
                id
            };
            Some(Tracked { client, run_id })
        }
        None => None,
    };
    // Ctrl-C (or SIGTERM) stops after the current optimizer step, with a checkpoint there.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))
            .context("installing the Ctrl-C handler")?;
    }
    let opts = RunOptions {
        out: out.clone(),
        device,
        resume,
        stop: Some(stop),
    };
    let bar = progress::bar("batches");
    let mut no_log = fusionprot_trainer::train::NoLog;
    let log: &mut dyn RunLog = match &mut tracked {
        Some(t) => t,
        None => &mut no_log,
    };
    let result = train(&cfg, &opts, log, &bar);
    bar.finish_and_clear();
    if let Some(t) = &mut tracked {
        let status = match &result {
            Ok(s) if s.interrupted => "KILLED",
            Ok(_) => "FINISHED",
            Err(_) => "FAILED",
        };
        if let Err(e) = t.client.end_run(&t.run_id, status) {
            tracing::warn!(error = %e, "could not end the tracked run");
        }
    }
    let s = result.with_context(|| format!("training with {}", config_path.display()))?;
    if s.interrupted {
        eprintln!(
            "interrupted after step {} (epoch {}): checkpoint written; continue with `fusionprot train --resume {}`",
            s.state.step,
            s.state.epoch + 1,
            out.display()
        );
        return Err(Interrupted.into());
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

/// The dataset's content hash as the tracker's registry computes it (joins runs to `datasets`).
fn dataset_hash(dataset: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(dataset.join("manifest.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    fusionprot_tracker::registry::content_hash(&manifest)
        .ok()
        .map(|(h, _)| h)
}
