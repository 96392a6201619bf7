//! Pre-training (`fusionprot pretrain`) set up for the one loop ([`super::fit`]): every protein
//! of the configured datasets, the model (ESM-2 frozen unless asked: no gradient to its weights,
//! none of them in the optimizer, while gradients flow through its activations to the fusion
//! token), the objective's head, Adam over everything else — FusionProt's own fusion parameters
//! included, unlike fine-tuning (spec §4, training.md §7.6) — and a checkpoint every `save_every`
//! epochs.

use indicatif::ProgressBar;

use super::adamw::{AdamW, AdamWConfig, ParamGroup};
use super::checkpoint::{self, State};
use super::contrast::MultiviewContrast;
use super::fit::{Counts, LoopConfig, RunLog, RunOptions, Summary, Trainer, fit};
use super::objective::Objective;
use super::pretrain_config::{ObjectiveKind, PretrainConfig, PretrainOptim};
use super::pretrain_data::Proteins;
use super::residue_type::{RESIDUE_TYPES, ResidueType};
use super::runner::build_model;
use super::scaler::LossScaler;
use super::task::MultiLabelHead;
use super::views::ViewRule;
use crate::error::ModelError;
use crate::model::Model;

/// The prefix of ESM-2's weights in every model that has them.
const SEQUENCE_MODEL: &str = "sequence_model.";

/// Checks what [`pretrain`] checks before any work (model kind, order, datasets with proteins,
/// every graph table's parts against their tags).
///
/// # Errors
/// As `pretrain` would.
pub fn pretrain_preflight(cfg: &PretrainConfig) -> Result<usize, ModelError> {
    let order = cfg.order();
    let proteins = Proteins::open(&cfg.data.datasets, order)?.examples.len();
    for dataset in &cfg.data.datasets {
        fusionprot_pipeline::dataset::read::check_graph_tables(dataset)
            .map_err(ModelError::Read)?;
    }
    Ok(proteins)
}

/// The pre-training optimizer over `model` (its head already added): ESM-2 frozen unless
/// `train_sequence_model` (no gradient to its weights, not in the optimizer), Adam — AdamW with
/// the configured weight decay, 0 by default, which is Adam exactly — over everything else,
/// FusionProt's fusion parameters included.
///
/// # Errors
/// libtorch failing to build the optimizer's state.
pub fn optimizer(
    model: &Model,
    p: &PretrainOptim,
    train_sequence_model: bool,
) -> Result<AdamW, ModelError> {
    AdamW::new(
        &model.vs,
        vec![trainable_group(model, train_sequence_model)],
        AdamWConfig {
            lr: p.lr,
            beta1: p.betas[0],
            beta2: p.betas[1],
            eps: p.eps,
            weight_decay: p.weight_decay,
        },
    )
}

/// Freezes ESM-2 (no gradient to its weights) unless `train`; returns the optimizer's one group:
/// every other top-level part of the var store (heads included).
fn trainable_group(model: &Model, train_sequence_model: bool) -> ParamGroup {
    let mut prefixes: Vec<String> = Vec::new();
    for (name, tensor) in model.vs.variables() {
        if name.starts_with(SEQUENCE_MODEL) && !train_sequence_model {
            let _ = tensor.set_requires_grad(false);
            continue;
        }
        let top = match name.split_once('.') {
            Some((top, _)) => format!("{top}."),
            None => name.clone(),
        };
        if !prefixes.contains(&top) {
            prefixes.push(top);
        }
    }
    prefixes.sort();
    ParamGroup {
        name: "pretrain".into(),
        prefixes,
        lr_ratio: 1.0,
    }
}

/// Runs (or resumes) a pre-training run.
///
/// # Errors
/// Bad configuration or data (before any training: no dataset, an empty one, an unknown model
/// kind), weights that do not fit, a checkpoint folder in the way without `resume`, I/O.
#[allow(clippy::too_many_lines)]
pub fn pretrain(
    cfg: &PretrainConfig,
    opts: &RunOptions,
    log: &mut dyn RunLog,
    progress: &ProgressBar,
) -> Result<Summary, ModelError> {
    let kind = cfg.kind();
    let order = cfg.order();
    let proteins = Proteins::open(&cfg.data.datasets, order)?;
    let resume_from = checkpoint::resume_point(&opts.out, opts.resume)?;

    tch::manual_seed(cfg.seed);
    let (mut model, init_params) = build_model(
        &cfg.model,
        kind,
        cfg.seed,
        opts.device,
        resume_from.is_none(),
    )?;
    let o = &cfg.objective;
    let dim = model.output_dim();
    let n = proteins.examples.len();
    let probe = proteins.probe(o.probe);
    let mut objective: Box<dyn Objective> = match o.kind {
        ObjectiveKind::MultiviewContrast => Box::new(MultiviewContrast {
            head: MultiLabelHead::new(&model.vs.root(), dim, dim, o.mlp_layers),
            proteins,
            rule: ViewRule {
                crop: o.crop_length,
                edge_mask_rate: o.edge_mask_rate,
                edge_mask: o.edge_mask,
            },
            tau: o.tau,
            device: opts.device,
            given: Default::default(),
            probe,
            seed: cfg.seed,
        }),
        ObjectiveKind::ResidueType => Box::new(ResidueType {
            head: MultiLabelHead::new(&model.vs.root(), dim, RESIDUE_TYPES, o.mlp_layers),
            proteins,
            mask_rate: o.mask_rate,
            truncate: o.truncate,
            device: opts.device,
            probe,
            seed: cfg.seed,
        }),
    };
    let p = &cfg.optim;
    let mut opt = optimizer(&model, p, o.train_sequence_model)?;
    let mut state = State {
        epoch: 0,
        step: 0,
        groups_done: 0,
        plateau: None,
        best: None,
        evaluations: Vec::new(),
        scaler: p.amp.then(LossScaler::default),
        ranks: 1,
    };
    if let Some(dir) = &resume_from {
        state = checkpoint::load(dir, &mut model, &mut opt)?;
        tracing::info!(checkpoint = %dir.display(), epoch = state.epoch, "resuming");
    } else {
        let mut params = Vec::new();
        super::run::flatten(
            "",
            &serde_json::to_value(cfg).unwrap_or_default(),
            &mut params,
        );
        params.push(("data.proteins".into(), n.to_string()));
        params.extend(init_params);
        if let Some(g) = opts.ranks() {
            params.push(("distributed.world_size".into(), g.world_size().to_string()));
            params.push(("distributed.backend".into(), g.backend().name().into()));
        }
        params.push((
            "model.trainable_parameters".into(),
            opt_size(&model, o.train_sequence_model).to_string(),
        ));
        log.params(&params);
    }
    let mut trainer = Trainer {
        model: &model,
        opt,
        scaler: None,
        lr: p.lr,
        micro_batch: p.micro_batch,
        dist: opts.dist.clone(),
        comm: Default::default(),
    };
    let loop_cfg = LoopConfig {
        seed: cfg.seed,
        micro_batch: p.micro_batch,
        gradient_interval: p.gradient_interval,
        epochs: p.epochs,
        eval_every: p.save_every,
        prefetch: cfg.data.prefetch,
        keep: cfg.checkpoint.keep,
        lr: p.lr,
        amp: p.amp,
        evaluate_at_start: true,
        sync_batch_norm: cfg.distributed.batch_norm == super::config::BatchNormSync::Sync,
    };
    fit(
        &loop_cfg,
        objective.as_mut(),
        &mut trainer,
        state,
        opts,
        log,
        progress,
        Counts {
            train: n,
            ..Counts::default()
        },
    )
}

/// Parameters the optimizer updates.
fn opt_size(model: &Model, train_sequence_model: bool) -> i64 {
    model
        .vs
        .variables()
        .iter()
        .filter(|(k, t)| {
            t.requires_grad() && (train_sequence_model || !k.starts_with(SEQUENCE_MODEL))
        })
        .map(|(_, t)| t.numel() as i64)
        .sum()
}
