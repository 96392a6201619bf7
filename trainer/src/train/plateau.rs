//! `torch.optim.lr_scheduler.ReduceLROnPlateau` (PyTorch 2.11), stepped once per evaluation on the
//! validation metric. The reference steps it with `mode = "min"` on a metric it maximises
//! (f1_max; quirk §6.9), which turns it into a step decay: [`Mode::Min`] reproduces that by default,
//! [`Mode::Max`] is the fix, by name. Defaults as the reference sets them: factor 0.6, patience 5;
//! PyTorch's threshold 1e-4 (relative), cooldown 0, min_lr 0, eps 1e-8.

/// Which direction counts as better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Lower is better: the reference's setting (quirk §6.9), even for f1_max.
    #[default]
    Min,
    /// Higher is better.
    Max,
}

/// The scheduler's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlateauConfig {
    pub mode: Mode,
    pub factor: f64,
    pub patience: u32,
    pub threshold: f64,
    pub cooldown: u32,
    pub min_lr: f64,
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Min,
            factor: 0.6,
            patience: 5,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// The scheduler's state; it is saved with a checkpoint for exact resume.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plateau {
    pub cfg: PlateauConfig,
    pub best: f64,
    pub num_bad_epochs: u32,
    pub cooldown_counter: u32,
    pub last_epoch: u64,
}

impl Plateau {
    pub fn new(cfg: PlateauConfig) -> Self {
        Self {
            cfg,
            best: match cfg.mode {
                Mode::Min => f64::INFINITY,
                Mode::Max => f64::NEG_INFINITY,
            },
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
        }
    }

    fn is_better(&self, current: f64) -> bool {
        match self.cfg.mode {
            Mode::Min => current < self.best * (1.0 - self.cfg.threshold),
            Mode::Max => current > self.best * (self.cfg.threshold + 1.0),
        }
    }

    /// One step on `metric`: updates `lrs` (one per parameter group) in place when the metric has
    /// not improved for more than `patience` steps. Returns whether it reduced them.
    pub fn step(&mut self, metric: f64, lrs: &mut [f64]) -> bool {
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs <= self.cfg.patience {
            return false;
        }
        for lr in lrs.iter_mut() {
            let new = (*lr * self.cfg.factor).max(self.cfg.min_lr);
            if *lr - new > self.cfg.eps {
                *lr = new;
            }
        }
        self.cooldown_counter = self.cfg.cooldown;
        self.num_bad_epochs = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_min_on_a_rising_metric_cuts_every_six_evaluations() {
        // spec §3.4: the lr is cut at evaluations 7, 13, 19, … while f1_max keeps rising.
        let mut s = Plateau::new(PlateauConfig::default());
        let mut lrs = [2e-5 * 0.08, 2e-5];
        let mut cuts = Vec::new();
        for e in 1..=20 {
            if s.step(0.3 + 0.01 * f64::from(e), &mut lrs) {
                cuts.push(e);
            }
        }
        assert_eq!(cuts, [7, 13, 19]);
        assert!((lrs[1] - 2e-5 * 0.6f64.powi(3)).abs() < 1e-20);
        let mut s = Plateau::new(PlateauConfig {
            mode: Mode::Max,
            ..PlateauConfig::default()
        });
        let mut lrs = [1.0];
        assert!((1..=20).all(|e| !s.step(0.3 + 0.01 * f64::from(e), &mut lrs)));
    }
}
