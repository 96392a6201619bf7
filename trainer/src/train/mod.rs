//! Fine-tuning (issue 12, being built): the optimizer first. tch keeps `nn::Optimizer`'s state in
//! C++ with no way to read or save it (tch-rs #360), so exact resume needs an optimizer of ours.
//!
//! - [`adamw`]: `torch.optim.AdamW` over a VarStore, parameter groups by name prefix, state saved
//!   and loaded as safetensors;
//! - [`plateau`]: `ReduceLROnPlateau`, with the reference's `mode = "min"` quirk by default;
//! - [`sampler`]: the reference's epoch order (`DistributedSampler`: `torch.randperm` seeded by the
//!   epoch), computed in Rust without touching libtorch's global generator;
//! - [`task`]: the EC / GO and MSP heads and the BCE loss;
//! - [`examples`]: a task's labels on a named split of an imported dataset;
//! - [`config`]: the run's TOML configuration, validated at load;
//! - [`run`]: the loop (EC / GO), evaluation, checkpoints and exact resume.

pub mod adamw;
pub mod config;
pub mod examples;
pub mod plateau;
pub mod run;
pub mod sampler;
pub mod task;

pub use adamw::{AdamW, AdamWConfig, ParamGroup};
pub use config::TrainConfig;
pub use examples::{TaskData, load_task};
pub use plateau::{Mode, Plateau, PlateauConfig};
pub use run::{
    Evaluated, Evaluation, NoLog, RunLog, RunOptions, State, Summary, evaluate_checkpoint, train,
};
pub use sampler::epoch_order;
pub use task::{MspHead, MultiLabelHead, bce_loss};
