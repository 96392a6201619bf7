//! `torch.optim.AdamW` (PyTorch 2.11, the single-tensor path it takes on CPU) written over a
//! VarStore's tensors, so its state can be saved with the weights and a run resumed exactly
//! (spec training.md §4.5).
//!
//! Per parameter, at its own step `t` (a parameter without a gradient is skipped, not decayed, as
//! PyTorch skips it; training.md §7.3):
//! `p ← p·(1 − lr·wd)`, `m ← lerp(m, g, 1 − β1)`, `v ← β2·v + (1 − β2)·g²`,
//! `p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)`; scalars in f64 as Python computes them.
//!
//! Parameters are assigned to the first group whose name prefix matches; parameters no group
//! matches are not optimised at all (the reference's quirk §6.1 leaves FusionProt's own fusion
//! parameters out of the optimizer).

use std::collections::BTreeMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::error::ModelError;

/// The optimizer's hyper-parameters (the reference: lr 2e-5, β 0.9 / 0.98, wd 0.01, eps 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 2e-5,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// A parameter group: the variables whose names start with one of `prefixes`, at `lr × lr_ratio`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamGroup {
    pub name: String,
    pub prefixes: Vec<String>,
    pub lr_ratio: f64,
}

#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    group: usize,
    step: i64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// AdamW over the variables of a VarStore.
#[derive(Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    groups: Vec<ParamGroup>,
    /// Current learning rate per group (schedulers set these).
    lrs: Vec<f64>,
    params: Vec<Param>,
    /// Variables no group holds (never updated).
    excluded: Vec<String>,
    /// Clears gradients the way `optimizer.zero_grad()` does in PyTorch ≥ 2.0 (to None).
    clearer: tch::nn::Optimizer,
}

impl AdamW {
    /// Sorts the VarStore's trainable variables by name into `groups` (first matching prefix).
    ///
    /// # Errors
    /// A group that holds no variable (a mistyped prefix), or libtorch failing to build the
    /// gradient clearer.
    pub fn new(
        vs: &VarStore,
        groups: Vec<ParamGroup>,
        cfg: AdamWConfig,
    ) -> Result<Self, ModelError> {
        let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        let mut params = Vec::new();
        let mut excluded = Vec::new();
        let mut counts = vec![0usize; groups.len()];
        for (name, tensor) in vars {
            if !tensor.requires_grad() {
                continue;
            }
            match groups
                .iter()
                .position(|g| g.prefixes.iter().any(|p| name.starts_with(p.as_str())))
            {
                Some(group) => {
                    counts[group] += 1;
                    params.push(Param {
                        exp_avg: tensor.zeros_like(),
                        exp_avg_sq: tensor.zeros_like(),
                        name,
                        tensor,
                        group,
                        step: 0,
                    });
                }
                None => excluded.push(name),
            }
        }
        if let Some(g) = counts.iter().position(|&c| c == 0) {
            return Err(ModelError::Input(format!(
                "optimizer group {:?} holds no parameter (prefixes {:?})",
                groups[g].name, groups[g].prefixes
            )));
        }
        let lrs = groups.iter().map(|g| cfg.lr * g.lr_ratio).collect();
        let clearer = tch::nn::OptimizerConfig::build(tch::nn::Sgd::default(), vs, 0.0)?;
        Ok(Self {
            cfg,
            groups,
            lrs,
            params,
            excluded,
            clearer,
        })
    }

    /// The groups, with each one's current learning rate and parameter count.
    pub fn groups(&self) -> Vec<(&str, f64, usize)> {
        self.groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let n = self.params.iter().filter(|p| p.group == i).count();
                (g.name.as_str(), self.lrs[i], n)
            })
            .collect()
    }

    /// Variables that are in no group and never updated.
    pub fn excluded(&self) -> &[String] {
        &self.excluded
    }

    pub fn set_lr(&mut self, group: usize, lr: f64) {
        self.lrs[group] = lr;
    }

    pub fn lr(&self, group: usize) -> f64 {
        self.lrs[group]
    }

    /// The parameters it updates, in name order (the same on every rank: the gradient
    /// all-reduce's order).
    pub fn trainable(&self) -> Vec<Tensor> {
        self.params
            .iter()
            .map(|p| p.tensor.shallow_clone())
            .collect()
    }

    /// Clears every trainable variable's gradient (to None, PyTorch ≥ 2.0's default).
    pub fn zero_grad(&mut self) {
        self.clearer.zero_grad();
    }

    /// Multiplies the gradient of every grouped parameter by `factor` (a loss scaler's unscale)
    /// and says whether they are all finite afterwards.
    pub fn unscale_grads(&mut self, factor: f64) -> bool {
        tch::no_grad(|| {
            let mut finite = true;
            for p in &self.params {
                let mut grad = p.tensor.grad();
                if !grad.defined() {
                    continue;
                }
                let _ = grad.g_mul_scalar_(factor);
                if finite && !bool::try_from(grad.isfinite().all()).unwrap_or(false) {
                    finite = false;
                }
            }
            finite
        })
    }

    /// One update of every grouped parameter that has a gradient.
    pub fn step(&mut self) {
        let c = self.cfg;
        tch::no_grad(|| {
            for p in &mut self.params {
                let grad = p.tensor.grad();
                if !grad.defined() {
                    continue;
                }
                let lr = self.lrs[p.group];
                p.step += 1;
                let t = p.step as f64;
                let _ = p.tensor.g_mul_scalar_(1.0 - lr * c.weight_decay);
                let _ = p.exp_avg.lerp_(&grad, 1.0 - c.beta1);
                let _ = p.exp_avg_sq.g_mul_scalar_(c.beta2);
                let _ = p.exp_avg_sq.g_add_(&(&grad * &grad * (1.0 - c.beta2)));
                let bias1 = 1.0 - c.beta1.powf(t);
                let bias2_sqrt = (1.0 - c.beta2.powf(t)).sqrt();
                let denom = (p.exp_avg_sq.sqrt() / bias2_sqrt) + c.eps;
                let update = (&p.exp_avg / &denom) * (-lr / bias1);
                let _ = p.tensor.g_add_(&update);
            }
        });
    }

    /// Writes the state (per parameter: step, exp_avg, exp_avg_sq; the group learning rates) as
    /// safetensors, through a temporary name and a rename.
    ///
    /// # Errors
    /// I/O and libtorch errors.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for p in &self.params {
            named.push((format!("step.{}", p.name), Tensor::from(p.step)));
            named.push((format!("exp_avg.{}", p.name), p.exp_avg.shallow_clone()));
            named.push((
                format!("exp_avg_sq.{}", p.name),
                p.exp_avg_sq.shallow_clone(),
            ));
        }
        for (g, lr) in self.groups.iter().zip(&self.lrs) {
            named.push((format!("lr.{}", g.name), Tensor::from(*lr)));
        }
        let tmp = path.with_extension("safetensors.tmp");
        Tensor::write_safetensors(&named, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a state [`AdamW::save`] wrote for the same parameters and groups.
    ///
    /// # Errors
    /// A missing or extra parameter, a shape that does not match, I/O.
    pub fn load(&mut self, path: &Path) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let mut stored: BTreeMap<String, Tensor> =
            Tensor::read_safetensors(path)?.into_iter().collect();
        let mut take = |key: String| stored.remove(&key).ok_or_else(|| bad(format!("no {key}")));
        let mut next = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let step = take(format!("step.{}", p.name))?;
            let m = take(format!("exp_avg.{}", p.name))?;
            let v = take(format!("exp_avg_sq.{}", p.name))?;
            if m.size() != p.tensor.size() || v.size() != p.tensor.size() {
                return Err(bad(format!(
                    "{}: state of shape {:?}, parameter {:?}",
                    p.name,
                    m.size(),
                    p.tensor.size()
                )));
            }
            next.push((step.int64_value(&[]), m, v));
        }
        let mut lrs = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            lrs.push(take(format!("lr.{}", g.name))?.double_value(&[]));
        }
        if let Some(extra) = stored.keys().next() {
            return Err(bad(format!("{extra} matches no parameter of this model")));
        }
        let device = self.params.first().map(|p| p.tensor.device());
        for (p, (step, m, v)) in self.params.iter_mut().zip(next) {
            p.step = step;
            p.exp_avg = m
                .to_kind(Kind::Float)
                .to_device(device.unwrap_or(tch::Device::Cpu));
            p.exp_avg_sq = v
                .to_kind(Kind::Float)
                .to_device(device.unwrap_or(tch::Device::Cpu));
        }
        self.lrs = lrs;
        Ok(())
    }
}
