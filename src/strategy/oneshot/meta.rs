//! Cream of the Crop's meta-network matching: which board path teaches the sampled path, and
//! how much weight its distillation gets.
//!
//! Each board entry keeps a slice of the training images it was admitted on and its own softmax
//! on them. For the sampled (student) path, the meta-network — one linear layer over the
//! flattened differences softmax(student) − stored softmax (`slice × classes` inputs) — scores
//! every entry; the highest score teaches, with m = sigmoid(−score) of *that* entry (the reference
//! code takes m from the loop's last entry: issue #78 of microsoft/Cream).
//!
//! Every `every` steps the meta-network learns by the one-step unrolled rule: a simulated SGD
//! step of the student on m·KD over slice 1, w' = w − η·m·∇KD(w), then the cross-entropy of w'
//! on slice 2. Since φ (the meta weights) enter w' only through the scalar m,
//!
//!   dL_val(w')/dφ = −η · ⟨∇L_val(w'), ∇KD(w)⟩ · ∂m/∂φ,
//!
//! exact with two first-order gradients (no Hessian-vector product). The gradient is clipped to
//! norm 1 and φ takes a plain SGD step of `lr` (reference: META_LR 1e-4, UPDATE_ITER 200).
//! Unlike the reference, the student's training loss treats m as a constant: the meta layer
//! learns only from the unrolled rule, and the student's gradient does not flow through m.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor as T};

use super::loss::soft_cross_entropy;
use super::OneShotNet;
use crate::space::point::Point;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaConfig {
    /// Images per slice (reference SLICE = 4): each board entry stores one; the unrolled update
    /// uses the first two slices of the batch.
    pub slice: usize,
    /// Steps between meta updates (reference UPDATE_ITER = 200).
    pub every: usize,
    /// The meta layer's learning rate (reference META_LR = 1e-4).
    pub lr: f64,
    /// η of the simulated student step (the reference uses the optimizer's current rate; dnas
    /// the base learning rate of the run).
    pub inner_lr: f64,
}

/// The meta layer φ = (weight `[1, slice·classes]`, bias `[1]`), zero at the start: every entry
/// scores 0, the best board path teaches with m = ½ — the reference's `top1` rule — until the
/// unrolled updates move it.
pub struct MetaMatcher {
    pub cfg: MetaConfig,
    pub weight: T,
    pub bias: T,
    /// Meta updates applied so far.
    pub updates: usize,
}

impl MetaMatcher {
    pub fn new(cfg: MetaConfig, classes: usize, device: tch::Device) -> MetaMatcher {
        let weight = T::zeros([1, (cfg.slice * classes) as i64], (Kind::Float, device)).set_requires_grad(true);
        let bias = T::zeros([1], (Kind::Float, device)).set_requires_grad(true);
        MetaMatcher { cfg, weight, bias, updates: 0 }
    }

    /// Scores of `features` (`[entries, slice·classes]`) → `[entries]`, with gradients to φ.
    pub fn scores(&self, features: &T) -> Result<T> {
        Ok(features.f_matmul(&self.weight.f_tr()?)?.f_add(&self.bias)?.f_squeeze_dim(1)?)
    }

    /// m = sigmoid(−score) of one feature row `[slice·classes]`, with gradients to φ.
    pub fn weight_of(&self, row: &T) -> Result<T> {
        Ok(self.scores(&row.f_unsqueeze(0)?)?.f_neg()?.f_sigmoid()?.f_squeeze()?)
    }

    /// The teaching entry (argmax of the scores; the first on ties) and its m.
    pub fn choose(&self, features: &T) -> Result<(usize, f64)> {
        let _g = tch::no_grad_guard();
        let s = Vec::<f32>::try_from(self.scores(features)?)?;
        let Some((idx, &best)) = s.iter().enumerate().fold(None, |acc: Option<(usize, &f32)>, (i, v)| match acc {
            Some((_, b)) if *v <= *b => acc,
            _ => Some((i, v)),
        }) else {
            bail!("no board entry to choose from");
        };
        Ok((idx, 1.0 / (1.0 + (best as f64).exp())))
    }

    /// ∂(c·m)/∂φ for the chosen row: the meta gradient when c = dL_val/dm.
    pub fn gradient(&self, row: &T, c: f64) -> Result<(T, T)> {
        let m = self.weight_of(row)?;
        let g = T::f_run_backward(&[m.f_mul_scalar(c)?], &[&self.weight, &self.bias], false, false)?;
        Ok((g[0].shallow_clone(), g[1].shallow_clone()))
    }

    /// One SGD step of φ on the meta gradient of `row`, clipped to norm 1; returns the norm.
    pub fn apply(&mut self, row: &T, c: f64) -> Result<f64> {
        let (gw, gb) = self.gradient(row, c)?;
        let norm =
            (gw.f_square()?.f_sum(Kind::Double)?.f_double_value(&[])? + gb.f_square()?.f_sum(Kind::Double)?.f_double_value(&[])?).sqrt();
        let scale = self.cfg.lr * if norm > 1.0 { 1.0 / norm } else { 1.0 };
        let _g = tch::no_grad_guard();
        let _ = self.weight.f_sub_(&gw.f_mul_scalar(scale)?)?;
        let _ = self.bias.f_sub_(&gb.f_mul_scalar(scale)?)?;
        self.updates += 1;
        Ok(norm)
    }
}

/// A board entry's slice: the images it was admitted on and its softmax on them.
pub struct Slice {
    pub x: T,
    pub probs: T,
}

/// Meta-network inputs for `student`: per entry, softmax(student on the entry's images) − the
/// entry's stored softmax, flattened → `[entries, slice·classes]`. One batched forward without
/// gradients in training mode (as the reference runs it); the path's BatchNorm statistics are put
/// back afterwards, so matching leaves no trace on the network.
pub fn features(net: &OneShotNet, student: &Point, slices: &[&Slice]) -> Result<T> {
    if slices.is_empty() {
        bail!("no board entry to match");
    }
    let saved = net.snapshot_buffers(student)?;
    let _g = tch::no_grad_guard();
    let x = T::f_cat(&slices.iter().map(|s| s.x.shallow_clone()).collect::<Vec<_>>(), 0)?;
    let probs = net.forward(student, &x, true)?.f_softmax(1, Kind::Float)?;
    OneShotNet::restore(&saved)?;
    let stored = T::f_cat(&slices.iter().map(|s| s.probs.shallow_clone()).collect::<Vec<_>>(), 0)?;
    Ok(probs.f_sub(&stored)?.f_reshape([slices.len() as i64, -1])?)
}

/// What one unrolled evaluation found.
pub struct Unrolled {
    /// L_val(w'): cross-entropy of the simulated student on slice 2.
    pub val_loss: f64,
    /// dL_val/dm = −η·⟨∇L_val(w'), ∇KD(w)⟩.
    pub dval_dm: f64,
}

/// The two slices of a batch the unrolled rule uses: images to distil on, and a labelled slice
/// to validate the simulated step on.
pub struct UnrollSlices {
    pub x1: T,
    pub x2: T,
    pub y2: T,
}

/// The one-step unrolled objective at weight `m`: the student's KD loss to `teacher` on `x1`,
/// a simulated SGD step w' = w − η·m·∇KD(w), cross-entropy of w' on (`x2`, `y2`). Every tensor
/// the two paths hold is restored before returning.
pub fn unrolled(net: &OneShotNet, student: &Point, teacher: &Point, m: f64, eta: f64, s: &UnrollSlices) -> Result<Unrolled> {
    let UnrollSlices { x1, x2, y2 } = s;
    let mut saved = net.snapshot(teacher)?;
    saved.extend(net.snapshot(student)?);
    let result = (|| -> Result<Unrolled> {
        let t_logits = {
            let _g = tch::no_grad_guard();
            net.forward(teacher, x1, true)?.f_detach()?
        };
        let params = net.path_parameters(student);
        let kd = soft_cross_entropy(&net.forward(student, x1, true)?, &t_logits)?;
        let g1 = T::f_run_backward(&[&kd], &params, false, false)?;
        {
            let _g = tch::no_grad_guard();
            for (p, g) in params.iter().zip(&g1) {
                if g.defined() {
                    let _ = p.shallow_clone().f_sub_(&g.f_mul_scalar(eta * m)?)?;
                }
            }
        }
        let ce = net.forward(student, x2, true)?.f_cross_entropy_loss::<T>(y2, None, tch::Reduction::Mean, -100, 0.0)?;
        let val_loss = ce.f_double_value(&[])?;
        let g2 = T::f_run_backward(&[&ce], &params, false, false)?;
        let mut dot = 0.0;
        for (a, b) in g1.iter().zip(&g2) {
            if a.defined() && b.defined() {
                dot += a.f_mul(b)?.f_sum(Kind::Double)?.f_double_value(&[])?;
            }
        }
        Ok(Unrolled { val_loss, dval_dm: -eta * dot })
    })();
    OneShotNet::restore(&saved)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::oneshot::{test_net, PathBudget};
    use crate::util::Rng;

    fn randn(shape: &[i64], rng: &mut Rng) -> T {
        let n: i64 = shape.iter().product();
        T::from_slice(&(0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>()).reshape(shape)
    }

    fn values(net: &OneShotNet) -> Vec<Vec<f32>> {
        net.state().into_iter().map(|(_, t)| Vec::<f32>::try_from(t.detach().flatten(0, -1).to_kind(Kind::Float)).unwrap()).collect()
    }

    #[test]
    fn the_unrolled_meta_gradient_equals_finite_differences() {
        let net = test_net(PathBudget::default());
        let (student, teacher) = (net.sample(0).unwrap(), net.sample(7).unwrap());
        assert_ne!(student, teacher);
        let mut rng = Rng::new(11);
        let (x1, x2) = (randn(&[4, 1, 8, 8], &mut rng), randn(&[4, 1, 8, 8], &mut rng));
        let y2 = T::from_slice(&[0i64, 1, 2, 1]);
        let cfg = MetaConfig { slice: 4, every: 1, lr: 1e-4, inner_lr: 0.5 };
        let matcher = MetaMatcher::new(cfg, 3, tch::Device::Cpu);
        {
            let _g = tch::no_grad_guard();
            let _ = matcher.weight.shallow_clone().f_copy_(&randn(&[1, 12], &mut rng).f_mul_scalar(0.5).unwrap());
            let _ = matcher.bias.shallow_clone().f_copy_(&T::from_slice(&[0.3f32]));
        }
        let slice = Slice { x: randn(&[4, 1, 8, 8], &mut rng), probs: randn(&[4, 3], &mut rng).softmax(1, Kind::Float) };
        let before = values(&net);
        let row = features(&net, &student, &[&slice]).unwrap().get(0);
        assert_eq!(values(&net), before, "matching features left a trace on the network");
        let m_of = |m: &MetaMatcher| m.weight_of(&row).unwrap().double_value(&[]);
        let slices = UnrollSlices { x1, x2, y2 };
        let f = |m: &MetaMatcher| unrolled(&net, &student, &teacher, m_of(m), 0.5, &slices).unwrap();
        let u = f(&matcher);
        assert_eq!(values(&net), before, "the simulated step was not undone");
        assert!(u.dval_dm.abs() > 1e-4, "a degenerate case: dL/dm = {}", u.dval_dm);
        let (gw, gb) = matcher.gradient(&row, u.dval_dm).unwrap();
        let (gw, gb) = (Vec::<f32>::try_from(gw.flatten(0, -1)).unwrap(), gb.double_value(&[0]));
        // Central differences of L_val(w'(φ)) in the bias and in the three largest-feature weights.
        let eps = 0.05;
        let fd = |set: &dyn Fn(&MetaMatcher, f64)| {
            let mut v = [0.0; 2];
            for (i, s) in [eps, -eps].into_iter().enumerate() {
                set(&matcher, s);
                v[i] = f(&matcher).val_loss;
                set(&matcher, -s);
            }
            (v[0] - v[1]) / (2.0 * eps)
        };
        let num_b = fd(&|m, d| {
            let _g = tch::no_grad_guard();
            let _ = m.bias.shallow_clone().f_add_scalar_(d);
        });
        assert!((num_b - gb).abs() <= 0.02 * gb.abs().max(1e-3), "bias: analytic {gb}, finite differences {num_b}");
        let feats = Vec::<f32>::try_from(row.detach()).unwrap();
        let mut order: Vec<usize> = (0..feats.len()).collect();
        order.sort_by(|&a, &b| feats[b].abs().total_cmp(&feats[a].abs()));
        for &j in &order[..3] {
            let num = fd(&|m, d| {
                let _g = tch::no_grad_guard();
                let w = m.weight.shallow_clone();
                let _ = w.get(0).get(j as i64).f_add_scalar_(d);
            });
            let a = gw[j] as f64;
            assert!((num - a).abs() <= 0.02 * a.abs().max(1e-3), "weight {j}: analytic {a}, finite differences {num}");
        }
        // A step moves φ against the gradient, by at most lr (norm clipped to 1).
        let mut m2 = MetaMatcher::new(matcher.cfg.clone(), 3, tch::Device::Cpu);
        let _ = m2.weight.shallow_clone().detach().f_copy_(&matcher.weight.detach());
        let _ = m2.bias.shallow_clone().detach().f_copy_(&matcher.bias.detach());
        let b0 = m2.bias.double_value(&[0]);
        let norm = m2.apply(&row, u.dval_dm).unwrap();
        let moved = m2.bias.double_value(&[0]) - b0;
        assert!(moved * gb < 0.0 && moved.abs() <= 1e-4 * (1.0 + 1e-6), "bias moved {moved} for gradient {gb} (norm {norm})");
        assert_eq!(m2.updates, 1);
    }

    #[test]
    fn the_highest_score_teaches_with_its_own_weight() {
        let m = MetaMatcher::new(MetaConfig { slice: 1, every: 1, lr: 1e-4, inner_lr: 0.1 }, 2, tch::Device::Cpu);
        // Zero weights: all scores 0, the first (best) entry teaches with m = 1/2.
        let feats = T::from_slice(&[0.1f32, -0.1, 0.3, -0.3, -0.2, 0.2]).reshape([3, 2]);
        assert_eq!(m.choose(&feats).unwrap(), (0, 0.5));
        {
            let _g = tch::no_grad_guard();
            let _ = m.weight.shallow_clone().f_copy_(&T::from_slice(&[2.0f32, 0.0]).reshape([1, 2]));
        }
        // Scores 0.2, 0.6, −0.4: entry 1 teaches with m = sigmoid(−0.6), not the last entry's.
        let (idx, w) = m.choose(&feats).unwrap();
        assert_eq!(idx, 1);
        assert!((w - 1.0 / (1.0 + 0.6f64.exp())).abs() < 1e-6, "{w}");
    }
}
