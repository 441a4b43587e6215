//! Learning-rate schedules with linear warm-up: cosine to zero, step decay, exponential per epoch.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Decay {
    Cosine,
    /// × gamma every `every` epochs.
    Step {
        every: usize,
        gamma: f64,
    },
    /// × gamma per epoch (DNA: 0.9).
    Exp {
        gamma: f64,
    },
}

impl Decay {
    pub fn parse(s: &str) -> Result<Decay> {
        Ok(match s {
            "cosine" => Decay::Cosine,
            "step" => Decay::Step { every: 30, gamma: 0.1 },
            "exp" => Decay::Exp { gamma: 0.9 },
            other => bail!("unknown schedule '{other}' (cosine, step, exp)"),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub base_lr: f64,
    pub decay: Decay,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub steps_per_epoch: usize,
}

impl Schedule {
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let epoch = step / self.steps_per_epoch.max(1);
        match &self.decay {
            Decay::Cosine => {
                let span = (self.total_steps - self.warmup_steps).max(1) as f64;
                let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.base_lr * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            Decay::Step { every, gamma } => self.base_lr * gamma.powi((epoch / (*every).max(1)) as i32),
            Decay::Exp { gamma } => self.base_lr * gamma.powi(epoch as i32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_zero() {
        let s = Schedule { base_lr: 1.0, decay: Decay::Cosine, warmup_steps: 10, total_steps: 110, steps_per_epoch: 10 };
        assert!((s.lr(0) - 0.1).abs() < 1e-12 && (s.lr(9) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.5).abs() < 1e-9);
        assert!(s.lr(110) < 1e-12);
        let e = Schedule { decay: Decay::Exp { gamma: 0.9 }, warmup_steps: 0, ..s };
        assert!((e.lr(25) - 0.81).abs() < 1e-12);
    }
}
