//! What `train` and `pretrain` share around a run folder: the launch flags, `RUN/launch.json`
//! (how the run was started, so `--resume` continues it the same way), the folder's guards (one
//! writer, writable) checked before anything starts, the tracked run behind the trainer's
//! [`RunLog`], Ctrl-C, and ending the tracked run with the outcome.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use fusionprot_tracker::client::Client;
use fusionprot_tracker::model::KeyValue;
use fusionprot_trainer::Device;
use fusionprot_trainer::train::folder::RunLock;
use fusionprot_trainer::train::{CheckpointRecord, RunLog, RunOptions, Summary};
use fusionprot_trainer::weights::load::DeviceChoice;

/// The flags of a training command that say how to run, not what.
#[derive(Debug, Args)]
pub struct LaunchFlags {
    /// Track the run: http://HOST:PORT (a `fusionprot serve`) or sqlite:///path/fusionprot.db.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    /// Bearer token of the tracker.
    #[arg(long, env = "FUSIONPROT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Experiment name in the tracker.
    #[arg(long, default_value = "fusionprot")]
    pub experiment: String,
    /// cpu, cuda or cuda:N (default cpu; `--resume` uses the run's own).
    #[arg(long)]
    pub device: Option<DeviceChoice>,
    /// libtorch threads (fixed, so CPU runs are bitwise reproducible; default: all cores;
    /// `--resume` uses the run's own, recorded in RUN_DIR/launch.json).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// With --resume: continue with another -j than the run was trained with (its remaining
    /// steps then differ in the last bits from an uninterrupted run's).
    #[arg(long)]
    pub allow_other_threads: bool,
    /// Data-parallel training without a launcher: run N local ranks (Gloo on CPU, NCCL with
    /// --device cuda), each with optim.micro_batch proteins per micro-batch. Under torchrun or
    /// srun the launcher's ranks are used instead (and N, if given, must match).
    #[arg(long)]
    pub world_size: Option<usize>,
}

/// How long a rank waits for the others (joining, and any collective) before it fails with an
/// error naming itself: `FUSIONPROT_DIST_TIMEOUT` seconds, default 600.
fn dist_timeout() -> anyhow::Result<std::time::Duration> {
    let secs = match std::env::var("FUSIONPROT_DIST_TIMEOUT") {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&s| s > 0)
            .with_context(|| {
                format!("FUSIONPROT_DIST_TIMEOUT={v:?}: give whole seconds above 0")
            })?,
        Err(_) => 600,
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// The run folder, its configuration and whether to resume: `--resume RUN`, or `--config FILE
/// --out DIR`. A launcher's restart of the whole job (torchrun `--max-restarts`, a requeued
/// Slurm job: the restart count is above 0) repeats the first command line, so once DIR holds
/// a checkpoint of the run the first attempt started, the restart resumes it from there instead
/// of refusing the folder (without one, it starts the run again).
///
/// # Errors
/// Neither form given.
pub(crate) fn target(
    resume: Option<&Path>,
    out: Option<&Path>,
    config: Option<&Path>,
) -> anyhow::Result<(PathBuf, PathBuf, bool)> {
    match (resume, out, config) {
        (Some(dir), _, _) => Ok((dir.to_path_buf(), dir.join("config.toml"), true)),
        (None, Some(out), Some(config)) => {
            let attempt = fusionprot_dist::Launch::from_env()?.attempt;
            if attempt > 0
                && out.join("config.toml").is_file()
                && fusionprot_trainer::train::checkpoint::newest(out).is_some()
            {
                tracing::info!(
                    attempt,
                    run = %out.display(),
                    "a restart of the job: resuming its run folder"
                );
                return Ok((out.to_path_buf(), out.join("config.toml"), true));
            }
            Ok((out.to_path_buf(), config.to_path_buf(), false))
        }
        _ => bail!("give --config FILE and --out DIR, or --resume RUN_DIR"),
    }
}

/// `--world-size N` without a launcher: runs N ranks of this same command and waits for them.
/// Returns false when this process is itself a rank (or alone) and should go on.
///
/// # Errors
/// A rank that failed (named), or a `--world-size` that contradicts the launcher's.
pub(crate) fn spawn_ranks_if_asked(flags: &LaunchFlags) -> anyhow::Result<bool> {
    let launch = fusionprot_dist::Launch::from_env()?;
    match (flags.world_size, launch.is_distributed()) {
        (Some(0), _) => bail!("--world-size must be at least 1"),
        (Some(n), true) if n != launch.world_size => bail!(
            "--world-size {n}, but {} started {} ranks",
            launch.launcher.name(),
            launch.world_size
        ),
        (Some(n), false) if n > 1 => {
            let exe = std::env::current_exe().context("locating this executable")?;
            let mut args: Vec<std::ffi::OsString> = Vec::new();
            let mut skip = false;
            for a in std::env::args_os().skip(1) {
                if skip {
                    skip = false;
                    continue;
                }
                let text = a.to_string_lossy();
                if text == "--world-size" {
                    skip = true;
                } else if !text.starts_with("--world-size=") {
                    args.push(a);
                }
            }
            // SIGINT / SIGTERM to this process are forwarded to the ranks (see run_local_ranks).
            let signal = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register_usize(
                    sig,
                    std::sync::Arc::clone(&signal),
                    sig as usize,
                )
                .context("installing the Ctrl-C handler")?;
            }
            match fusionprot_dist::spawn::run_local_ranks(
                &exe,
                &args,
                n,
                std::time::Duration::from_secs(60),
                &signal,
            )? {
                fusionprot_dist::spawn::Ended::Completed => Ok(true),
                // Rank 0 said where it stopped and how to resume.
                fusionprot_dist::spawn::Ended::Interrupted => Err(Interrupted.into()),
            }
        }
        _ => Ok(false),
    }
}

/// How a run was launched, kept in `RUN_DIR/launch.json` so `--resume` continues it the same
/// way without the user repeating flags: where it is tracked (never the token), the thread
/// count (CPU results depend on it bitwise) and the device.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Launch {
    pub tracking_uri: Option<String>,
    pub experiment: String,
    pub threads: usize,
    pub device: DeviceChoice,
}

impl Launch {
    const FILE: &'static str = "launch.json";

    /// A fresh run's launch from the flags.
    fn fresh(args: &LaunchFlags) -> Launch {
        Launch {
            tracking_uri: args.tracking_uri.clone(),
            experiment: args.experiment.clone(),
            threads: args
                .jobs
                .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
                .unwrap_or(1),
            device: args.device.unwrap_or_default(),
        }
    }

    /// A resumed run's launch: the recorded one, with the flags checked against it.
    fn resumed(args: &LaunchFlags, out: &std::path::Path) -> anyhow::Result<Launch> {
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
        if let Some(d) = args.device {
            launch.device = d;
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

/// A run folder opened for a run: locked for the life of the process, its launch resolved. In a
/// data-parallel job rank 0 opens it (lock, config, launch.json, the tracked run) and the other
/// ranks follow once it has (`dist`), reading what it wrote and writing nothing.
pub(crate) struct Session {
    pub out: PathBuf,
    pub resume: bool,
    pub launch: Launch,
    pub device: Device,
    pub dist: Option<std::sync::Arc<fusionprot_dist::Group>>,
    _lock: Option<RunLock>,
}

impl Session {
    /// Opens `out` for a fresh run or `--resume`: writable, locked, the launch resolved (device
    /// checked, libtorch's threads set); then `preflight` (the data is there), and for a fresh run
    /// a folder without checkpoints, where the resolved configuration (`config_toml`) and
    /// `launch.json` are written. Nothing is written or tracked before all of that holds.
    ///
    /// # Errors
    /// What any of those checks finds.
    pub fn open(
        out: &Path,
        resume: bool,
        flags: &LaunchFlags,
        preflight: impl FnOnce() -> anyhow::Result<()>,
        config_toml: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<Session> {
        if flags.allow_other_threads && !resume {
            bail!("--allow-other-threads goes with --resume");
        }
        let ranks = fusionprot_dist::Launch::from_env()?;
        let dist = if ranks.is_distributed() {
            // The backend follows the device the run will use (the flag, else the run's own).
            let device = match flags.device {
                Some(d) => d,
                None if resume => Launch::resumed(flags, out)
                    .map(|l| l.device)
                    .unwrap_or_default(),
                None => DeviceChoice::Cpu,
            };
            // NCCL for CUDA, Gloo otherwise; FUSIONPROT_DIST_BACKEND=gloo forces Gloo (CUDA
            // tensors through host copies: several ranks on one GPU, which NCCL refuses).
            let backend = match std::env::var("FUSIONPROT_DIST_BACKEND").as_deref() {
                Ok("gloo") => fusionprot_dist::Backend::Gloo,
                Ok("nccl") => fusionprot_dist::Backend::Nccl,
                Ok(other) => bail!("FUSIONPROT_DIST_BACKEND={other:?}: use gloo or nccl"),
                Err(_) if device.is_cuda() => fusionprot_dist::Backend::Nccl,
                Err(_) => fusionprot_dist::Backend::Gloo,
            };
            let group = fusionprot_dist::Group::connect(&ranks, backend, dist_timeout()?)?;
            tracing::info!(
                rank = ranks.rank,
                world = ranks.world_size,
                launcher = ranks.launcher.name(),
                backend = backend.name(),
                "joined the process group"
            );
            Some(std::sync::Arc::new(group))
        } else {
            None
        };
        if let Some(group) = dist.as_ref().filter(|_| !ranks.is_leader()) {
            return Session::follow(out, resume, flags, &ranks, group);
        }
        let mut session = Session::open_alone(out, resume, flags, preflight, config_toml)?;
        if let Some(group) = dist {
            session.device = rank_device(session.device, &ranks);
            // The folder is ready: the other ranks may read it.
            group.barrier()?;
            session.dist = Some(group);
        }
        Ok(session)
    }

    /// A rank other than 0: waits for rank 0 to open the folder, then reads its launch.
    fn follow(
        out: &Path,
        resume: bool,
        flags: &LaunchFlags,
        ranks: &fusionprot_dist::Launch,
        group: &std::sync::Arc<fusionprot_dist::Group>,
    ) -> anyhow::Result<Session> {
        group
            .barrier()
            .context("waiting for rank 0 to open the run folder (see rank 0's error)")?;
        let mut launch = Launch::resumed(flags, out)?;
        if let Some(d) = flags.device {
            launch.device = d;
        }
        let device = rank_device(launch.device.open()?, ranks);
        fusionprot_trainer::runtime::set_threads(launch.threads);
        Ok(Session {
            out: out.to_owned(),
            resume,
            launch,
            device,
            dist: Some(std::sync::Arc::clone(group)),
            _lock: None,
        })
    }

    /// Whether this process writes the folder and the tracked run (rank 0, or alone).
    pub fn is_leader(&self) -> bool {
        self.dist.as_ref().is_none_or(|g| g.rank() == 0)
    }

    fn open_alone(
        out: &Path,
        resume: bool,
        flags: &LaunchFlags,
        preflight: impl FnOnce() -> anyhow::Result<()>,
        config_toml: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<Session> {
        // A folder this call creates is removed again when the run is refused before its
        // configuration is written (nothing of a user's is in it: only the lock).
        let created = !out.exists();
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let opened = (|| -> anyhow::Result<(RunLock, Launch, Device)> {
            fusionprot_trainer::train::folder::check_writable(out)?;
            let lock = fusionprot_trainer::train::folder::lock(out)?;
            let launch = if resume {
                Launch::resumed(flags, out)?
            } else {
                Launch::fresh(flags)
            };
            let device = launch.device.open()?;
            fusionprot_trainer::runtime::set_threads(launch.threads);
            preflight()?;
            if !resume {
                // The run folder keeps the configuration it was started with, for --resume.
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
                let tmp = out.join("config.toml.tmp");
                std::fs::write(&tmp, config_toml()?)
                    .and_then(|()| std::fs::rename(&tmp, out.join("config.toml")))
                    .with_context(|| format!("writing {}/config.toml", out.display()))?;
                launch.write(out)?;
            } else if launch.tracking_uri.is_some() && flags.tracking_uri.is_none() {
                eprintln!(
                    "resuming: tracking at {} as when the run started ({}/launch.json)",
                    launch.tracking_uri.as_deref().unwrap_or_default(),
                    out.display()
                );
            }
            Ok((lock, launch, device))
        })();
        let (lock, launch, device) = match opened {
            Ok(v) => v,
            Err(e) => {
                if created && !out.join("config.toml").exists() {
                    let _ = std::fs::remove_dir_all(out);
                }
                return Err(e);
            }
        };
        Ok(Session {
            out: out.to_owned(),
            resume,
            launch,
            device,
            dist: None,
            _lock: Some(lock),
        })
    }

    /// The tracked run, when the launch names a tracker: the run the folder recorded (resume), or
    /// a new one named `name` with `tags` (and the fusionprot version and commit), its id kept in
    /// `RUN/run-id`; `link` registers and links a dataset (name, path, context).
    ///
    /// # Errors
    /// An unusable tracking URI or local database.
    pub fn track(
        &self,
        token: Option<String>,
        name: &str,
        mut tags: Vec<(&str, String)>,
        links: Vec<(String, PathBuf, String)>,
    ) -> anyhow::Result<Option<Tracked>> {
        let Some(uri) = self
            .launch
            .tracking_uri
            .as_ref()
            .filter(|_| self.is_leader())
        else {
            return Ok(None);
        };
        let mut client = Client::connect(uri, token, self.out.join("tracking-spool.jsonl"))
            .with_context(|| format!("connecting to {uri}"))?;
        let run_file = self.out.join("run-id");
        if self.resume && run_file.is_file() {
            let run_id = std::fs::read_to_string(&run_file)?.trim().to_owned();
            return Ok(Some(Tracked { client, run_id }));
        }
        tags.push(("device", self.launch.device.to_string()));
        tags.push(("fusionprot.version", env!("CARGO_PKG_VERSION").to_owned()));
        if let Some(commit) = option_env!("FUSIONPROT_GIT_COMMIT") {
            tags.push(("fusionprot.git_commit", commit.to_owned()));
        }
        let tags: Vec<KeyValue> = tags
            .into_iter()
            .map(|(k, v)| KeyValue {
                key: k.to_owned(),
                value: v,
            })
            .collect();
        let id = client.create_run(&self.launch.experiment, name, &tags)?;
        std::fs::write(&run_file, &id)?;
        for (dataset_name, path, context) in links {
            if let Err(e) = client.link_dataset(&id, &dataset_name, &path, &context) {
                tracing::warn!(error = %e, dataset = %path.display(), "could not link the dataset to the run (its content hash is a tag)");
            }
        }
        Ok(Some(Tracked { client, run_id: id }))
    }
}

/// Ctrl-C (or SIGTERM) raises this flag; the loop stops after the current optimizer step, with
/// a checkpoint there.
///
/// # Errors
/// The handler cannot be installed.
pub(crate) fn stop_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))
            .context("installing the Ctrl-C handler")?;
    }
    Ok(stop)
}

/// Ends the tracked run with the outcome: KILLED (stopped, resumable), FINISHED or FAILED.
pub(crate) fn end<E>(tracked: &mut Option<Tracked>, result: &Result<Summary, E>) {
    if let Some(t) = tracked {
        let status = match result {
            Ok(s) if s.interrupted => "KILLED",
            Ok(_) => "FINISHED",
            Err(_) => "FAILED",
        };
        if let Err(e) = t.client.end_run(&t.run_id, status) {
            tracing::warn!(error = %e, "could not end the tracked run");
        }
    }
}

/// The tracker behind the trainer's [`RunLog`]: failures to log are warnings, never a lost run
/// (the client spools while the server is down).
pub(crate) struct Tracked {
    pub client: Client,
    pub run_id: String,
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

/// A run stopped by Ctrl-C (exit code 130 in `main`).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Under a launcher, `cuda` is `cuda:LOCAL_RANK`: one GPU per rank.
fn rank_device(device: Device, ranks: &fusionprot_dist::Launch) -> Device {
    match device {
        Device::Cuda(_) if ranks.is_distributed() => Device::Cuda(ranks.local_rank),
        other => other,
    }
}

/// The dataset's content hash as the tracker's registry computes it (joins runs to `datasets`).
pub(crate) fn dataset_hash(dataset: &std::path::Path) -> Option<String> {
    fusionprot_pipeline::dataset::manifest::Recorded::read(dataset)
        .ok()
        .map(|m| m.content_hash())
}

/// A fresh run's `model.init` names a checkpoint that exists and passes its checksums (checked
/// before the run folder is touched; a resumed run takes its weights from its own checkpoint).
///
/// # Errors
/// Nothing there, or a checkpoint whose checksums fail.
pub(crate) fn check_init(init: Option<&std::path::Path>, resume: bool) -> anyhow::Result<()> {
    if let (Some(init), false) = (init, resume) {
        fusionprot_trainer::train::init::resolve(init)?;
    }
    Ok(())
}

/// Runs `run` for the session's folder — Ctrl-C armed, progress shown, logged to the tracked run
/// when there is one, which is ended with the outcome — and turns an interruption into
/// [`Interrupted`] after saying how to resume with `fusionprot COMMAND --resume`.
///
/// # Errors
/// The run's error, with `context`; [`Interrupted`] when Ctrl-C stopped it.
pub(crate) fn drive(
    session: &Session,
    tracked: &mut Option<Tracked>,
    command: &str,
    context: &str,
    run: impl FnOnce(
        &RunOptions,
        &mut dyn RunLog,
        &indicatif::ProgressBar,
    ) -> Result<Summary, fusionprot_trainer::ModelError>,
) -> anyhow::Result<Summary> {
    let opts = RunOptions {
        out: session.out.clone(),
        device: session.device,
        resume: session.resume,
        stop: Some(stop_flag()?),
        dist: session.dist.clone(),
    };
    let bar = crate::progress::bar("batches");
    if !session.is_leader() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut no_log = fusionprot_trainer::train::NoLog;
    let log: &mut dyn RunLog = match tracked {
        Some(t) => t,
        None => &mut no_log,
    };
    let result = run(&opts, log, &bar);
    bar.finish_and_clear();
    end(tracked, &result);
    let s = result.context(context.to_owned())?;
    if s.interrupted {
        if !session.is_leader() {
            return Err(Interrupted.into());
        }
        eprintln!(
            "interrupted after step {} (epoch {}): checkpoint written; continue with `fusionprot {command} --resume {}`",
            s.state.step,
            s.state.epoch + 1,
            session.out.display()
        );
        return Err(Interrupted.into());
    }
    Ok(s)
}
