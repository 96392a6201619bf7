//! Fine-tuning on EC / GO / MSP. tch keeps `nn::Optimizer`'s state in C++ with no way to read or
//! save it (tch-rs #360), so exact resume needs an optimizer of ours.
//!
//! - [`adamw`]: `torch.optim.AdamW` over a VarStore, parameter groups by name prefix, state saved
//!   and loaded as safetensors;
//! - [`plateau`]: `ReduceLROnPlateau`, with the reference's `mode = "min"` quirk by default;
//! - [`sampler`]: the reference's epoch order (`DistributedSampler`: `torch.randperm` seeded by the
//!   epoch), computed in Rust without touching libtorch's global generator;
//! - [`task`]: the EC / GO and MSP heads and the BCE loss;
//! - [`examples`]: a task's examples (labelled proteins, MSP pairs) on a named split;
//! - [`config`]: the run's TOML configuration, validated at load, with `--set` overrides;
//! - [`runner`]: model + head fed from the graph store: losses, evaluation, `evaluate_checkpoint`;
//! - [`checkpoint`]: checkpoints written atomically, pruned, loaded (their files' sha256 checked);
//! - [`folder`]: the run folder's lock (one writer) and its writability, checked before any work;
//! - [`scaler`]: dynamic loss scaling for mixed precision;
//! - [`objective`]: what an objective gives the loop (examples, a micro-batch's loss, an
//!   evaluation); [`supervised`]: fine-tuning on EC / GO / MSP;
//! - [`fit`]: the one loop — [`Trainer::step`], accumulation, evaluation cadence, checkpoints,
//!   exact resume, Ctrl-C, tracking;
//! - [`run`]: fine-tuning's set-up (`fusionprot train`); [`init`]: `model.init`, a run of ours
//!   as starting weights;
//! - pre-training (`fusionprot pretrain`): [`pretrain_config`], [`pretrain_data`] (the datasets'
//!   proteins and each epoch's order), [`views`] and [`contrast`] (Multiview Contrast),
//!   [`residue_type`] (residue-type prediction), [`pretrain`] (the set-up).

pub mod adamw;
pub mod checkpoint;
pub mod config;
pub mod contrast;
mod ddp;
pub mod examples;
pub mod export;
pub mod fit;
pub mod folder;
pub mod init;
pub mod log;
pub mod objective;
pub mod plateau;
pub mod pretrain;
pub mod pretrain_config;
pub mod pretrain_data;
pub mod residue_type;
pub mod run;
pub mod runner;
pub mod sampler;
pub mod scaler;
pub mod step;
pub mod supervised;
pub mod task;
pub mod views;

pub use adamw::{AdamW, AdamWConfig, ParamGroup};
pub use checkpoint::{Evaluation, State};
pub use config::TrainConfig;
pub use examples::{Example, TaskData, load_task};
pub use export::{Exported, export, reference_state_dict};
pub use fit::{
    CheckpointRecord, LoopConfig, NoLog, RunLog, RunOptions, StepReport, Summary, Trainer, fit,
};
pub use objective::{Draw, EvalOutcome, Loss, MicroBatch, Objective};
pub use plateau::{Mode, Plateau, PlateauConfig};
pub use pretrain::{pretrain, pretrain_preflight};
pub use pretrain_config::{ObjectiveKind, PretrainConfig};
pub use run::{preflight, train};
pub use runner::{Evaluated, evaluate_checkpoint, selection_metric};
pub use sampler::epoch_order;
pub use task::{Head, MspHead, MultiLabelHead, bce_loss};
