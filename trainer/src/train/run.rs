//! Fine-tuning (`fusionprot train`): the reference's recipe (`core.Engine` with FusionProt's
//! settings, training.md §3.2) set up for the one loop ([`super::fit`]): the task's data on a
//! named split, the model and its head, AdamW with the reference's parameter groups, the plateau
//! scheduler on the validation metric, and the [`Supervised`] objective.

use indicatif::ProgressBar;
use tch::Device;

use super::adamw::{AdamW, AdamWConfig, ParamGroup};
use super::checkpoint::{self, State};
use super::config::TrainConfig;
use super::examples::load_task;
use super::fit::{Counts, LoopConfig, RunLog, RunOptions, Summary, Trainer, fit};
use super::plateau::Plateau;
use super::runner::{model_and_head, open_store};
use super::scaler::LossScaler;
use super::supervised::Supervised;
use crate::config::ModelKind;
use crate::error::ModelError;

fn groups(kind: ModelKind, cfg: &TrainConfig) -> Vec<ParamGroup> {
    let g = |name: &str, prefixes: &[&str], lr_ratio: f64| ParamGroup {
        name: name.to_owned(),
        prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        lr_ratio,
    };
    let ratio = cfg.optim.sequence_model_lr_ratio;
    let mut v = match kind {
        ModelKind::Fusionprot | ModelKind::EsmGearnet => vec![
            g("sequence_model", &["sequence_model."], ratio),
            g("structure_model", &["structure_model.", "mlp."], 1.0),
        ],
        ModelKind::Esm2 => vec![
            g("sequence_model", &["sequence_model."], ratio),
            g("head", &["mlp."], 1.0),
        ],
        ModelKind::Gearnet => vec![g(
            "structure_model",
            &["layers.", "batch_norms.", "mlp."],
            1.0,
        )],
    };
    if kind == ModelKind::Fusionprot && cfg.optim.train_fusion_parameters {
        v.push(g(
            "fusion",
            &[
                "structure_embed_linear.",
                "embedding_batch_norm.",
                "structure_token",
                "structure_linears.",
                "seq_linears.",
            ],
            1.0,
        ));
    }
    v
}

pub(crate) fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// The model kind and the task's data, refused when the task, the split or its train part is
/// not there.
fn task_data(cfg: &TrainConfig) -> Result<(ModelKind, super::TaskData), ModelError> {
    let kind = cfg.kind();
    let data = load_task(&cfg.data.dataset, cfg.data.task.name(), &cfg.data.split)?;
    if data.parts.get("train").is_none_or(Vec::is_empty) {
        return Err(ModelError::Input(format!(
            "split {:?} of {} has no train proteins",
            cfg.data.split,
            cfg.data.dataset.display()
        )));
    }
    Ok((kind, data))
}

/// Checks what [`train`] checks about its data before any work (model kind, dataset, task,
/// split, a non-empty train part, every graph table's parts against their tags), so a caller
/// can refuse a mistyped task or split, or a malformed table, before it creates a tracked run.
///
/// # Errors
/// As `train` would, for the same reasons.
pub fn preflight(cfg: &TrainConfig) -> Result<(), ModelError> {
    task_data(cfg)?;
    // The graphs' tables are read only once training starts: their parts are checked here, so a
    // part with other columns than its tag's is refused before the run folder is written.
    fusionprot_pipeline::dataset::read::check_graph_tables(&cfg.data.dataset)
        .map_err(ModelError::Read)
}

/// Runs (or resumes) a fine-tuning run.
///
/// # Errors
/// Bad configuration or data (before any training: unknown task or split, no train proteins, a
/// checkpoint folder in the way without `resume`), weights that do not load, I/O.
#[allow(clippy::too_many_lines)]
pub fn train(
    cfg: &TrainConfig,
    opts: &RunOptions,
    log: &mut dyn RunLog,
    progress: &ProgressBar,
) -> Result<Summary, ModelError> {
    let input = ModelError::Input;
    let (kind, data) = task_data(cfg)?;
    let part = |name: &str| data.parts.get(name).cloned().unwrap_or_default();
    let (train_set, valid_set, test_set) = (part("train"), part("valid"), part("test"));
    let resume_from = checkpoint::resume_point(&opts.out, opts.resume)?;
    // Rank 0 alone writes the run folder (two ranks renaming one temporary file race).
    if resume_from.is_none() && opts.is_leader() {
        // The task's vocabulary in label-index order: `evaluate` on another dataset checks its
        // terms against these (the same count in another order scores nonsense).
        let record = serde_json::json!({
            "task": data.task,
            "labels": data.labels,
            "terms": data.terms,
        });
        let text = serde_json::to_string_pretty(&record).map_err(|e| input(e.to_string()))?;
        checkpoint::write_atomic(&opts.out.join(super::runner::TASK_FILE), text.as_bytes())?;
    }
    let store = open_store(&cfg.data.dataset, &data)?;

    tch::manual_seed(cfg.seed);
    let (mut model, head, init_params) = model_and_head(cfg, kind, &data, opts.device, true)?;
    let o = &cfg.optim;
    let mut opt = AdamW::new(
        &model.vs,
        groups(kind, cfg),
        AdamWConfig {
            lr: o.lr,
            beta1: o.betas[0],
            beta2: o.betas[1],
            eps: o.eps,
            weight_decay: o.weight_decay,
        },
    )?;
    let mut state = State {
        epoch: 0,
        step: 0,
        groups_done: 0,
        plateau: cfg
            .scheduler
            .enabled
            .then(|| Plateau::new(cfg.scheduler.plateau())),
        best: None,
        evaluations: Vec::new(),
        scaler: o.amp.then(LossScaler::default),
        ranks: 1,
    };
    if o.amp && opts.device == Device::Cpu {
        tracing::warn!("optim.amp on CPU: autocast is CUDA-only, so only the loss scaling runs");
    }
    if let Some(dir) = &resume_from {
        state = checkpoint::load(dir, &mut model, &mut opt)?;
        tracing::info!(checkpoint = %dir.display(), epoch = state.epoch, "resuming");
    } else {
        let mut params = Vec::new();
        flatten(
            "",
            &serde_json::to_value(cfg).unwrap_or_default(),
            &mut params,
        );
        params.push(("data.labels".into(), data.labels.to_string()));
        params.push(("data.train_examples".into(), train_set.len().to_string()));
        params.extend(init_params);
        if let Some(g) = opts.ranks() {
            params.push(("distributed.world_size".into(), g.world_size().to_string()));
            params.push(("distributed.backend".into(), g.backend().name().into()));
        }
        log.params(&params);
    }
    let counts = Counts {
        train: train_set.len(),
        valid: valid_set.len(),
        test: test_set.len(),
        labels: data.labels,
    };
    let mut objective = Supervised {
        data,
        head,
        store,
        train: train_set,
        valid: valid_set,
        test: test_set,
        max_residues: cfg.data.max_residues,
        micro_batch: o.micro_batch,
        prefetch: cfg.data.prefetch,
        evaluate_train: cfg.data.evaluate_train,
        bucket_by_length: cfg.data.bucket_by_length,
        device: opts.device,
        ranks: None,
    };
    let mut trainer = Trainer {
        model: &model,
        opt,
        scaler: None,
        lr: o.lr,
        micro_batch: o.micro_batch,
        dist: opts.dist.clone(),
        comm: Default::default(),
    };
    let loop_cfg = LoopConfig {
        seed: cfg.seed,
        micro_batch: o.micro_batch,
        gradient_interval: o.gradient_interval,
        epochs: o.epochs,
        eval_every: o.eval_every,
        prefetch: cfg.data.prefetch,
        keep: cfg.checkpoint.keep,
        lr: o.lr,
        amp: o.amp,
        evaluate_at_start: false,
        sync_batch_norm: cfg.distributed.batch_norm == super::config::BatchNormSync::Sync,
    };
    fit(
        &loop_cfg,
        &mut objective,
        &mut trainer,
        state,
        opts,
        log,
        progress,
        counts,
    )
}
