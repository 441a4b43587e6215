//! Optimizers with explicit, checkpointable state: SGD (momentum, Nesterov), AdamW (decoupled
//! weight decay) and RMSprop. Weight decay applies only to parameters flagged for it (conv and
//! linear weights), never to BatchNorm parameters or biases.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor as T;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimConfig {
    Sgd { momentum: f64, nesterov: bool },
    Adamw { beta1: f64, beta2: f64, eps: f64 },
    Rmsprop { alpha: f64, eps: f64, momentum: f64 },
}

impl OptimConfig {
    pub fn parse(name: &str) -> Result<OptimConfig> {
        Ok(match name {
            "sgd" => OptimConfig::Sgd { momentum: 0.9, nesterov: true },
            "adam" | "adamw" => OptimConfig::Adamw { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
            "rmsprop" => OptimConfig::Rmsprop { alpha: 0.9, eps: 1e-3, momentum: 0.9 },
            other => bail!("unknown optimizer '{other}' (sgd, adamw, rmsprop)"),
        })
    }
}

pub struct Optimizer {
    pub config: OptimConfig,
    /// Per parameter: its own update count (Adam's bias correction; a supernet op skipped on a
    /// step is not counted, as PyTorch) and the state slots (momentum; Adam's m and v; RMSprop's
    /// square average and momentum).
    state: BTreeMap<String, (i64, Vec<T>)>,
    /// Steps taken.
    pub steps: i64,
}

impl Optimizer {
    pub fn new(config: OptimConfig) -> Optimizer {
        Optimizer { config, state: BTreeMap::new(), steps: 0 }
    }

    fn slots(&self) -> usize {
        match self.config {
            OptimConfig::Sgd { .. } => 1,
            OptimConfig::Adamw { .. } | OptimConfig::Rmsprop { .. } => 2,
        }
    }

    /// One update of `params` (name, tensor, decay?) from their `.grad()`; parameters without a
    /// gradient, or with `active[i] == false`, are skipped (supernet ops not sampled this step:
    /// no update, no momentum drift — PyTorch's behaviour with gradients set to None).
    /// `scales[i]` multiplies the learning rate of parameter i. Empty `active`/`scales` = all
    /// active, scale 1.
    pub fn step(&mut self, params: &[(String, T, bool)], lr: f64, scales: &[f64], active: &[bool], weight_decay: f64) -> Result<()> {
        let _g = tch::no_grad_guard();
        self.steps += 1;
        let slots = self.slots();
        for (i, (name, p, decay)) in params.iter().enumerate() {
            let lr = lr * scales.get(i).copied().unwrap_or(1.0);
            let g = p.grad();
            if !g.defined() || !active.get(i).copied().unwrap_or(true) {
                continue;
            }
            let wd = if *decay { weight_decay } else { 0.0 };
            let (count, st) = self.state.entry(name.clone()).or_insert_with(|| (0, (0..slots).map(|_| p.zeros_like()).collect()));
            *count += 1;
            let t = *count as f64;
            let mut p = p.shallow_clone();
            match self.config {
                OptimConfig::Sgd { momentum, nesterov } => {
                    let g = if wd > 0.0 { &g + &p * wd } else { g };
                    let buf = &mut st[0];
                    let _ = buf.f_mul_scalar_(momentum)?.f_add_(&g)?;
                    let d = if nesterov { &g + &*buf * momentum } else { buf.shallow_clone() };
                    let _ = p.f_sub_(&(d * lr))?;
                }
                OptimConfig::Adamw { beta1, beta2, eps } => {
                    // PyTorch's single-tensor AdamW, in as few passes: m ← lerp(m, g, 1−β1),
                    // v ← lerp(v, g², 1−β2), p ← p − lr·m̂ / (√v̂ + ε).
                    if wd > 0.0 {
                        let _ = p.f_mul_scalar_(1.0 - lr * wd)?;
                    }
                    let _ = st[0].f_lerp_(&g, 1.0 - beta1)?;
                    let _ = st[1].f_lerp_(&g.f_square()?, 1.0 - beta2)?;
                    let step_size = lr / (1.0 - beta1.powf(t));
                    let bc2_sqrt = (1.0 - beta2.powf(t)).sqrt();
                    let mut denom = st[1].f_sqrt()?;
                    let _ = denom.f_mul_scalar_(-1.0 / (bc2_sqrt * step_size))?.f_add_scalar_(-eps / step_size)?;
                    let _ = p.f_addcdiv_(&st[0], &denom)?;
                }
                OptimConfig::Rmsprop { alpha, eps, momentum } => {
                    let g = if wd > 0.0 { &g + &p * wd } else { g };
                    let _ = st[0].f_mul_scalar_(alpha)?.f_add_(&(&g * &g * (1.0 - alpha)))?;
                    let d = &g / (st[0].f_sqrt()? + eps);
                    let _ = st[1].f_mul_scalar_(momentum)?.f_add_(&d)?;
                    let _ = p.f_sub_(&(&st[1] * lr))?;
                }
            }
        }
        Ok(())
    }

    /// Named state tensors for a checkpoint (`{param}.{slot}`, `{param}.count`).
    pub fn state(&self) -> Vec<(String, T)> {
        self.state
            .iter()
            .flat_map(|(k, (n, v))| {
                v.iter()
                    .enumerate()
                    .map(move |(i, t)| (format!("{k}.{i}"), t.shallow_clone()))
                    .chain(std::iter::once((format!("{k}.count"), T::from(*n))))
            })
            .collect()
    }

    /// Restores the state saved by [`Optimizer::state`].
    pub fn load_state(&mut self, named: &HashMap<String, T>, params: &[(String, T, bool)], steps: i64) -> Result<()> {
        self.steps = steps;
        self.state.clear();
        let slots = self.slots();
        for (name, p, _) in params {
            if !named.contains_key(&format!("{name}.0")) {
                continue; // never updated yet
            }
            let mut v = Vec::new();
            for i in 0..slots {
                let t = named.get(&format!("{name}.{i}")).ok_or_else(|| anyhow!("optimizer state '{name}.{i}' missing"))?;
                let mut z = p.zeros_like().detach();
                z.f_copy_(t)?;
                v.push(z);
            }
            // Checkpoints from before per-parameter counts: every parameter was updated every step.
            let count = named.get(&format!("{name}.count")).map_or(Ok(steps), |t| t.f_int64_value(&[]))?;
            self.state.insert(name.clone(), (count, v));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AdamW against its textbook form, three steps, with decay, on two values; and a masked
    /// parameter stays put (no update, no count).
    #[test]
    fn adamw_matches_the_formula_and_respects_the_mask() {
        let p = T::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let q = T::from_slice(&[0.5f32]).set_requires_grad(true);
        let params = vec![("p".to_string(), p.shallow_clone(), true), ("q".to_string(), q.shallow_clone(), false)];
        let mut opt = Optimizer::new(OptimConfig::Adamw { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
        let (lr, wd) = (0.1, 0.01);
        let mut want = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=3 {
            let loss = (&p * &p).sum(tch::Kind::Float) * 3.0 + (&q * 2.0).sum(tch::Kind::Float);
            for (_, x, _) in &params {
                let mut g = x.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            }
            loss.backward();
            opt.step(&params, lr, &[], &[true, false], wd).unwrap();
            for i in 0..2 {
                let g = 6.0 * want[i];
                want[i] *= 1.0 - lr * wd;
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let (mh, vh) = (m[i] / (1.0 - 0.9f64.powi(t)), v[i] / (1.0 - 0.999f64.powi(t)));
                want[i] -= lr * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got: Vec<f32> = Vec::try_from(p.detach()).unwrap();
        for i in 0..2 {
            assert!((got[i] as f64 - want[i]).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        assert_eq!(Vec::<f32>::try_from(q.detach()).unwrap(), vec![0.5]);
        assert!(opt.state().iter().all(|(k, _)| k.starts_with("p.")));
    }
}
