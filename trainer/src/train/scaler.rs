//! Dynamic loss scaling for mixed precision (`optim.amp`), as `torch.amp.GradScaler` with its
//! defaults: the loss is multiplied by `scale` before backward, the gradients divided by it before
//! the step; a step whose gradients hold an inf or NaN is skipped and the scale halved; after
//! `growth_interval` good steps in a row the scale doubles. Powers of two only, so scaling and
//! unscaling are exact. The state is part of every checkpoint, so a resumed run scales the same.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    pub scale: f64,
    /// Good steps since the last change of scale.
    pub growth_tracker: u32,
    pub growth_interval: u32,
    /// Steps skipped for non-finite gradients.
    pub skipped: u64,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65_536.0,
            growth_tracker: 0,
            growth_interval: 2000,
            skipped: 0,
        }
    }
}

impl LossScaler {
    /// After the gradients were unscaled: whether to take the optimizer step, and the new scale.
    pub fn update(&mut self, finite: bool) -> bool {
        if finite {
            self.growth_tracker += 1;
            if self.growth_tracker >= self.growth_interval {
                self.scale *= 2.0;
                self.growth_tracker = 0;
            }
        } else {
            self.scale *= 0.5;
            self.growth_tracker = 0;
            self.skipped += 1;
        }
        finite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_and_skips_on_overflow_doubles_after_the_interval() {
        let mut s = LossScaler {
            growth_interval: 3,
            ..LossScaler::default()
        };
        assert!(!s.update(false));
        assert_eq!((s.scale, s.skipped), (32_768.0, 1));
        assert!(s.update(true) && s.update(true));
        assert_eq!(s.scale, 32_768.0);
        assert!(s.update(true));
        assert_eq!((s.scale, s.growth_tracker), (65_536.0, 0));
        s.update(true);
        s.update(false);
        assert_eq!((s.scale, s.growth_tracker), (32_768.0, 0));
    }
}
