//! Fine-tuning (issue 12, being built): the optimizer first. tch keeps `nn::Optimizer`'s state in
//! C++ with no way to read or save it (tch-rs #360), so exact resume needs an optimizer of ours.
//!
//! - [`adamw`]: `torch.optim.AdamW` over a VarStore, parameter groups by name prefix, state saved
//!   and loaded as safetensors.

pub mod adamw;

pub use adamw::{AdamW, AdamWConfig, ParamGroup};
