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
    /// Per parameter: the state slots (momentum; Adam's m and v; RMSprop's square average and momentum).
    state: BTreeMap<String, Vec<T>>,
    /// Steps taken (Adam's bias correction).
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
    /// gradient are skipped (e.g. supernet paths not sampled this step).
    pub fn step(&mut self, params: &[(String, T, bool)], lr: f64, weight_decay: f64) -> Result<()> {
        let _g = tch::no_grad_guard();
        self.steps += 1;
        let t = self.steps as f64;
        let slots = self.slots();
        for (name, p, decay) in params {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let wd = if *decay { weight_decay } else { 0.0 };
            let st = self.state.entry(name.clone()).or_insert_with(|| (0..slots).map(|_| p.zeros_like()).collect());
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
                    if wd > 0.0 {
                        let _ = p.f_mul_scalar_(1.0 - lr * wd)?;
                    }
                    let _ = st[0].f_mul_scalar_(beta1)?.f_add_(&(&g * (1.0 - beta1)))?;
                    let _ = st[1].f_mul_scalar_(beta2)?.f_add_(&(&g * &g * (1.0 - beta2)))?;
                    let mhat = &st[0] / (1.0 - beta1.powf(t));
                    let vhat = &st[1] / (1.0 - beta2.powf(t));
                    let _ = p.f_sub_(&(mhat / (vhat.f_sqrt()? + eps) * lr))?;
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

    /// Named state tensors for a checkpoint (`{param}.{slot}`).
    pub fn state(&self) -> Vec<(String, T)> {
        self.state.iter().flat_map(|(k, v)| v.iter().enumerate().map(move |(i, t)| (format!("{k}.{i}"), t.shallow_clone()))).collect()
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
            self.state.insert(name.clone(), v);
        }
        Ok(())
    }
}
