//! The one-shot supernet on the shared training loop: SPOS (cross-entropy on one sampled path per
//! step) and Cream of the Crop (after the warm-up, every step also distils from a path of the
//! prioritized board: loss = (m·KD + (2−m)·CE)/2, KD = soft cross-entropy to the board path's
//! logits at T = 1, computed by the same supernet without gradients).
//!
//! The board is offered every sampled path after the warm-up, scored by its top-1 on the current
//! training batch (the reference code's rule), and travels in every checkpoint, so a resumed run
//! continues with the same board. With `--matching meta` each entry also keeps a slice of the
//! images it was admitted on and its softmax on them (checkpoint tensors `cream.board.<i>.*`), and
//! the meta-network (`cream.meta.*`, [`super::meta`]) picks the teaching path and its weight m.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor as T};

use super::board::{Admission, Board, Entry};
use super::loss::{cream_loss, soft_cross_entropy, TOP1_M};
use super::meta::{features, unrolled, MetaConfig, MetaMatcher, Slice, UnrollSlices};
use super::OneShotNet;
use crate::data::Batch;
use crate::space::point::Point;
use crate::train::classify::tensors;
use crate::train::Learner;

/// How the board path that teaches a step is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Matching {
    /// The best board path with m = ½ (the reference's fixed weight without the meta-network:
    /// ¼·KD + ¾·CE under Cream's (m·KD + (2 − m)·CE)/2).
    Top1,
    /// The meta-network's choice and m = sigmoid(−score) ([`super::meta`]).
    Meta,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreamConfig {
    /// Steps of plain training before the board is filled and distillation starts.
    pub warmup_steps: usize,
    pub board_size: usize,
    /// Top-1 margin over the worst board entry (0.05 = 5 points) for a path with more MACs.
    pub margin: f64,
    pub matching: Matching,
    /// Settings of the meta-network (`Matching::Meta` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaConfig>,
}

pub struct OneShotLearner {
    pub net: OneShotNet,
    pub input_chw: [usize; 3],
    pub label_smoothing: f64,
    /// `None` = SPOS.
    pub cream: Option<CreamConfig>,
    pub board: Board<Point>,
    /// Board entries in order of admission (step, top-1, MACs, key): the board's history.
    pub history: Vec<(usize, f64, u64, String)>,
    /// Steps whose loss had a KD term (the rest were plain CE).
    pub distilled_steps: usize,
    /// `Matching::Meta`: the meta layer and every board entry's slice (by key).
    pub matcher: Option<MetaMatcher>,
    pub slices: HashMap<String, Slice>,
    /// Meta updates (step, dL_val/dm, gradient norm before clipping) and, per distilled step, the
    /// m used and whether the teacher was the board's best — what the report draws.
    pub meta_log: MetaLog,
    /// Board slices read from a checkpoint, waiting for the board (`load_extra_state`).
    pending: HashMap<String, T>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaLog {
    pub updates: Vec<(usize, f64, f64)>,
    /// Sum of m over distilled steps, and how many of them were taught by a path other than the best.
    pub m_sum: f64,
    pub not_best: usize,
}

impl OneShotLearner {
    pub fn new(net: OneShotNet, input_chw: [usize; 3], label_smoothing: f64, cream: Option<CreamConfig>) -> OneShotLearner {
        let (size, margin) = cream.as_ref().map_or((1, 0.0), |c| (c.board_size, c.margin));
        let matcher = cream
            .as_ref()
            .filter(|c| c.matching == Matching::Meta)
            .map(|c| MetaMatcher::new(c.meta.clone().unwrap_or_else(|| MetaConfig::reference(0.1)), net.space.space.classes, net.device()));
        OneShotLearner {
            net,
            input_chw,
            label_smoothing,
            cream,
            board: Board::new(size, margin),
            history: Vec::new(),
            distilled_steps: 0,
            matcher,
            slices: HashMap::new(),
            meta_log: MetaLog::default(),
            pending: HashMap::new(),
        }
    }

    /// The board path that teaches `path` and its m (`None` while the board is empty). With
    /// `Matching::Meta`, a meta update runs first when `step` is one of its steps.
    fn teacher(&mut self, path: &Point, x: &T, y: &T, step: usize) -> Result<Option<(Point, f64)>> {
        let Some(best) = self.board.best().cloned() else { return Ok(None) };
        let Some(matcher) = self.matcher.as_mut() else { return Ok(Some((best.path, TOP1_M))) };
        let slices = self
            .board
            .entries
            .iter()
            .map(|e| self.slices.get(&e.key).ok_or_else(|| anyhow!("board path {} has no slice", e.key)))
            .collect::<Result<Vec<_>>>()?;
        let feats = features(&self.net, path, &slices)?;
        let s = matcher.cfg.slice as i64;
        if step.is_multiple_of(matcher.cfg.every.max(1)) && x.size()[0] >= 2 * s {
            let (idx, m) = matcher.choose(&feats)?;
            let slices = UnrollSlices { x1: x.f_narrow(0, 0, s)?, x2: x.f_narrow(0, s, s)?, y2: y.f_narrow(0, s, s)? };
            let u = unrolled(&self.net, path, &self.board.entries[idx].path, m, matcher.cfg.inner_lr, &slices)?;
            let norm = matcher.apply(&feats.f_get(idx as i64)?, u.dval_dm)?;
            self.meta_log.updates.push((step, u.dval_dm, norm));
        }
        let (idx, m) = matcher.choose(&feats)?;
        self.meta_log.m_sum += m;
        self.meta_log.not_best += usize::from(idx != 0);
        Ok(Some((self.board.entries[idx].path.clone(), m)))
    }
}

impl MetaConfig {
    /// The reference's settings (slice 4, every 200 steps, meta lr 1e-4) with the run's learning rate.
    pub fn reference(inner_lr: f64) -> MetaConfig {
        MetaConfig { slice: 4, every: 200, lr: 1e-4, inner_lr }
    }
}

#[derive(Serialize, Deserialize)]
struct Extra {
    board: Board<Point>,
    history: Vec<(usize, f64, u64, String)>,
    distilled_steps: usize,
    #[serde(default)]
    meta_log: MetaLog,
    #[serde(default)]
    meta_updates: usize,
}

impl Learner for OneShotLearner {
    fn parameters(&self) -> Vec<(String, T, bool)> {
        self.net.parameters()
    }
    fn state(&self) -> Vec<(String, T)> {
        let mut v = self.net.state();
        if let Some(m) = &self.matcher {
            v.push(("cream.meta.weight".into(), m.weight.shallow_clone()));
            v.push(("cream.meta.bias".into(), m.bias.shallow_clone()));
            for (i, e) in self.board.entries.iter().enumerate() {
                if let Some(s) = self.slices.get(&e.key) {
                    v.push((format!("cream.board.{i}.x"), s.x.shallow_clone()));
                    v.push((format!("cream.board.{i}.probs"), s.probs.shallow_clone()));
                }
            }
        }
        v
    }
    fn load_state(&mut self, named: &HashMap<String, T>) -> Result<()> {
        self.net.load_state(named)?;
        if let Some(m) = &self.matcher {
            let _g = tch::no_grad_guard();
            for (name, dst) in [("cream.meta.weight", &m.weight), ("cream.meta.bias", &m.bias)] {
                if let Some(src) = named.get(name) {
                    dst.shallow_clone().f_copy_(src)?;
                }
            }
            self.pending =
                named.iter().filter(|(k, _)| k.starts_with("cream.board.")).map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
        }
        Ok(())
    }
    fn active(&self, step: usize) -> Vec<bool> {
        // A step whose path cannot be drawn trains nothing; `loss` then reports the error.
        match self.net.sample(step) {
            Ok(p) => self.net.active(&p),
            Err(_) => vec![false; self.net.parameters().len()],
        }
    }
    fn loss(&mut self, batch: &Batch, step: usize) -> Result<T> {
        let path = self.net.sample(step)?;
        let (x, y) = tensors(batch, self.input_chw, self.net.device())?;
        let distil = self.cream.as_ref().is_some_and(|c| step >= c.warmup_steps);
        // The teacher first: a meta update simulates a step in place (and undoes it), which must
        // happen before this step's graph is recorded.
        let teacher = if distil { self.teacher(&path, &x, &y, step)? } else { None };
        let logits = self.net.forward(&path, &x, true)?;
        let ce = logits.f_cross_entropy_loss::<T>(&y, None, tch::Reduction::Mean, -100, self.label_smoothing)?;
        if !distil {
            return Ok(ce);
        }
        // Offer the sampled path to the board, scored on this batch.
        let top1 = logits.detach().f_argmax(1, false)?.f_eq_tensor(&y)?.to_kind(Kind::Float).f_mean(Kind::Float)?.f_double_value(&[])?;
        let (_, macs) = self.net.cost(&path);
        let key = self.net.space.key(&path);
        let admitted = self.board.offer(Entry { top1, macs, key: key.clone(), path: path.clone(), step });
        if admitted != Admission::Rejected {
            if let Some(m) = &self.matcher {
                let s = (m.cfg.slice as i64).min(x.size()[0]);
                let probs = logits.detach().f_narrow(0, 0, s)?.f_softmax(1, Kind::Float)?;
                self.slices.insert(key.clone(), Slice { x: x.f_narrow(0, 0, s)?.f_contiguous()?, probs });
                let on: std::collections::HashSet<&String> = self.board.entries.iter().map(|e| &e.key).collect();
                self.slices.retain(|k, _| on.contains(k));
            }
            self.history.push((step, top1, macs, key));
        }
        let Some((t_path, m)) = teacher else { return Ok(ce) };
        let t_logits = {
            let _g = tch::no_grad_guard();
            self.net.forward(&t_path, &x, true)?.detach()
        };
        self.distilled_steps += 1;
        cream_loss(&soft_cross_entropy(&logits, &t_logits)?, &ce, m)
    }
    fn extra_state(&self) -> serde_json::Value {
        serde_json::to_value(Extra {
            board: self.board.clone(),
            history: self.history.clone(),
            distilled_steps: self.distilled_steps,
            meta_log: self.meta_log.clone(),
            meta_updates: self.matcher.as_ref().map_or(0, |m| m.updates),
        })
        .unwrap_or(serde_json::Value::Null)
    }
    fn load_extra_state(&mut self, state: &serde_json::Value) -> Result<()> {
        if state.is_null() {
            return Ok(());
        }
        let e: Extra = serde_json::from_value(state.clone()).map_err(|e| anyhow!("the checkpoint's board is unreadable: {e}"))?;
        self.board = e.board;
        self.history = e.history;
        self.distilled_steps = e.distilled_steps;
        self.meta_log = e.meta_log;
        if let Some(m) = self.matcher.as_mut() {
            m.updates = e.meta_updates;
            self.slices.clear();
            for (i, entry) in self.board.entries.iter().enumerate() {
                let (x, p) = (self.pending.remove(&format!("cream.board.{i}.x")), self.pending.remove(&format!("cream.board.{i}.probs")));
                match (x, p) {
                    (Some(x), Some(probs)) => {
                        self.slices.insert(entry.key.clone(), Slice { x, probs });
                    }
                    _ => return Err(anyhow!("the checkpoint's board path {i} ({}) has no slice tensors", entry.key)),
                }
            }
        }
        Ok(())
    }
}
