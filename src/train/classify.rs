//! Image classification on the shared loop: cross-entropy with label smoothing over a
//! [`Trainable`] graph, optionally distilled from a frozen teacher — its logits (Hinton KD)
//! and/or its feature maps at the cut points ([`super::features`]) — and top-1 evaluation in tch.

use std::collections::HashMap;

use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor as T};

use super::features::FeatureKd;
use super::module::Trainable;
use super::trainer::Learner;
use crate::data::{Batch, Loader};
use crate::exec::Executor;

pub struct Classifier {
    pub module: Trainable,
    pub label_smoothing: f64,
    /// Knowledge distillation from a teacher's logits; `None` = plain cross-entropy.
    pub kd: Option<Distill>,
}

/// Distillation from a frozen teacher (same input as the student):
/// loss = (1 − α)·CE + α·T²·KL(p_teacher^T ‖ p_student^T) with p^T = softmax(logits / T) when
/// `logits` is set (CE alone otherwise), plus the feature term when `features` is set.
pub struct Distill {
    pub teacher: crate::exec::Executor,
    pub logits: Option<LogitKd>,
    pub features: Option<FeatureDistill>,
}

/// Hinton's soft targets.
#[derive(Clone, Copy, Debug)]
pub struct LogitKd {
    pub temperature: f64,
    pub alpha: f64,
}

/// A feature-level term: `kind.scale(weight) · Σ_pairs kind.loss(student value, teacher value)`.
pub struct FeatureDistill {
    pub kind: FeatureKd,
    pub weight: f64,
    /// (student value, teacher value) per cut point.
    pub pairs: Vec<(String, String)>,
}

impl Classifier {
    pub fn new(module: Trainable, label_smoothing: f64) -> Classifier {
        Classifier { module, label_smoothing, kd: None }
    }
}

/// Batch-mean KL(softmax(t/T) ‖ softmax(s/T)) · T².
pub fn kd_loss(student: &T, teacher: &T, temperature: f64) -> Result<T> {
    let ls = student.f_div_scalar(temperature)?.f_log_softmax(1, Kind::Float)?;
    let lt = teacher.f_div_scalar(temperature)?.f_log_softmax(1, Kind::Float)?;
    let kl = lt.f_exp()?.f_mul(&lt.f_sub(&ls)?)?.f_sum(Kind::Float)?;
    Ok(kl.f_mul_scalar(temperature * temperature / student.size()[0].max(1) as f64)?)
}

/// Batch → (x on the module's device, y).
pub fn tensors(batch: &Batch, chw: [usize; 3], device: tch::Device) -> Result<(T, T)> {
    let x = T::f_from_slice(&batch.x)?.f_reshape([batch.n as i64, chw[0] as i64, chw[1] as i64, chw[2] as i64])?.f_to_device(device)?;
    let y = T::f_from_slice(&batch.y)?.f_to_device(device)?;
    Ok((x, y))
}

impl Learner for Classifier {
    fn parameters(&self) -> Vec<(String, T, bool)> {
        self.module.parameters()
    }
    fn state(&self) -> Vec<(String, T)> {
        self.module.state()
    }
    fn load_state(&mut self, named: &HashMap<String, T>) -> Result<()> {
        self.module.load_state(named)
    }
    fn loss(&mut self, batch: &Batch, _step: usize) -> Result<T> {
        let chw = input_chw(&self.module);
        let (x, y) = tensors(batch, chw, self.module.device())?;
        let Some(kd) = &self.kd else {
            let logits = self.module.forward(&x, true)?;
            return Ok(logits.f_cross_entropy_loss::<T>(&y, None, tch::Reduction::Mean, -100, self.label_smoothing)?);
        };
        let pairs = kd.features.as_ref().map_or(&[][..], |f| &f.pairs[..]);
        let student_taps: Vec<&str> = pairs.iter().map(|(s, _)| s.as_str()).collect();
        let teacher_taps: Vec<&str> = pairs.iter().map(|(_, t)| t.as_str()).collect();
        let g = self.module.graph();
        let (input, output) =
            (io_name(g.data_inputs().next().map(|v| &v.name), "input")?, io_name(g.outputs.first().map(|v| &v.name), "output")?);
        let mut s_out = self.module.run(&[(&input, &x)], &student_taps, true)?;
        let logits = take(&mut s_out, &output, "student")?;
        let t_graph = kd.teacher.graph();
        let t_in = io_name(t_graph.data_inputs().next().map(|v| &v.name), "teacher input")?;
        let t_logits_name = io_name(t_graph.outputs.first().map(|v| &v.name), "teacher output")?;
        let mut t_out = {
            let _g = tch::no_grad_guard();
            kd.teacher.run(&[(&t_in, &x)], &teacher_taps)?
        };
        let ce = logits.f_cross_entropy_loss::<T>(&y, None, tch::Reduction::Mean, -100, self.label_smoothing)?;
        let mut loss = match &kd.logits {
            Some(l) => {
                let t_logits = take(&mut t_out, &t_logits_name, "teacher")?;
                let soft = kd_loss(&logits, &t_logits, l.temperature)?;
                ce.f_mul_scalar(1.0 - l.alpha)?.f_add(&soft.f_mul_scalar(l.alpha)?)?
            }
            None => ce,
        };
        if let Some(f) = &kd.features {
            for (s, t) in &f.pairs {
                let (sv, tv) = (take(&mut s_out, s, "student")?, take(&mut t_out, t, "teacher")?);
                let term = f.kind.loss(&sv, &tv).map_err(|e| anyhow::anyhow!("cut '{s}' ↔ teacher '{t}': {e}"))?;
                loss = loss.f_add(&term.f_mul_scalar(f.kind.scale(f.weight))?)?;
            }
        }
        Ok(loss)
    }
}

fn io_name(name: Option<&String>, what: &str) -> Result<String> {
    name.cloned().ok_or_else(|| anyhow::anyhow!("the graph has no {what}"))
}

fn take(values: &mut HashMap<String, T>, name: &str, whose: &str) -> Result<T> {
    values.remove(name).ok_or_else(|| anyhow::anyhow!("the {whose} did not compute '{name}'"))
}

/// [C, H, W] of the module's declared input.
pub fn input_chw(m: &Trainable) -> [usize; 3] {
    let dims = m.graph().data_inputs().next().and_then(|v| v.shape.clone()).unwrap_or_default();
    let f = |i: usize| match dims.get(i) {
        Some(crate::ir::Dim::Fixed(d)) => *d,
        _ => 0,
    };
    [f(1), f(2), f(3)]
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EvalResult {
    pub top1: f64,
    pub loss: f64,
    pub correct: usize,
    pub total: usize,
}

/// Top-1 and mean cross-entropy in inference mode over every batch of `loader`.
pub fn evaluate(m: &Trainable, loader: &Loader) -> Result<EvalResult> {
    let _g = tch::no_grad_guard();
    let chw = input_chw(m);
    let (mut correct, mut total, mut loss) = (0usize, 0usize, 0.0);
    for batch in loader.epoch(0, 0) {
        if batch.n == 0 {
            continue;
        }
        let (x, y) = tensors(&batch, chw, m.device())?;
        let logits = m.forward(&x, false)?;
        loss += logits.f_cross_entropy_loss::<T>(&y, None, tch::Reduction::Sum, -100, 0.0)?.f_double_value(&[])?;
        correct += logits.f_argmax(1, false)?.f_eq_tensor(&y)?.f_sum(Kind::Int64)?.f_int64_value(&[])? as usize;
        total += batch.n;
    }
    Ok(EvalResult { top1: correct as f64 / total.max(1) as f64, loss: loss / total.max(1) as f64, correct, total })
}

/// The KD teacher as a frozen executor, checked against the child's input and classes.
pub fn load_teacher(path: &Path, input: [usize; 3], classes: usize, device: tch::Device) -> Result<Executor> {
    let what = || format!("teacher '{}'", path.display());
    let g = crate::teacher::layout::for_training(crate::onnx::read_file(path)?, &what())?;
    let shapes = crate::ir::fixed_input_shapes(&g, 1).with_context(what)?;
    let data_input = g.data_inputs().next().with_context(|| format!("teacher '{}' has no input", path.display()))?;
    let dims = shapes.get(&data_input.name).cloned().unwrap_or_default();
    if dims.len() != 4 || dims[1..] != input {
        bail!("teacher '{}' takes input {:?}, the architecture {:?} (N, C, H, W)", path.display(), dims, input);
    }
    let facts = crate::ops::infer::infer(&g, &shapes).with_context(what)?;
    let out = g.outputs.first().with_context(|| format!("teacher '{}' has no output", path.display()))?;
    let outputs = facts.get(&out.name).and_then(|f| f.shape.last().copied());
    if outputs != Some(classes) {
        bail!("teacher '{}' outputs {:?} classes, the architecture has {classes}", path.display(), outputs);
    }
    Executor::new(g, device).with_context(|| format!("teacher '{}'", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kd_loss_is_zero_for_equal_logits_and_matches_the_formula() {
        let s = T::from_slice(&[1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0]).reshape([2, 3]);
        let t = T::from_slice(&[0.5f32, 1.0, 2.0, 0.0, 1.0, -2.0]).reshape([2, 3]);
        assert!(kd_loss(&s, &s, 4.0).unwrap().double_value(&[]).abs() < 1e-7);
        // By hand: T² / N · Σ p_t (log p_t − log p_s), p = softmax(logits / T).
        let temp = 2.0;
        let (sv, tv): (Vec<f32>, Vec<f32>) = (Vec::try_from(&s.flatten(0, -1)).unwrap(), Vec::try_from(&t.flatten(0, -1)).unwrap());
        let mut want = 0.0f64;
        for r in 0..2 {
            let soft = |v: &[f32]| {
                let e: Vec<f64> = v.iter().map(|x| (*x as f64 / temp).exp()).collect();
                let z: f64 = e.iter().sum();
                e.into_iter().map(|x| x / z).collect::<Vec<_>>()
            };
            let (ps, pt) = (soft(&sv[r * 3..r * 3 + 3]), soft(&tv[r * 3..r * 3 + 3]));
            want += pt.iter().zip(&ps).map(|(a, b)| a * (a.ln() - b.ln())).sum::<f64>();
        }
        want *= temp * temp / 2.0;
        let got = kd_loss(&s, &t, temp).unwrap().double_value(&[]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert!(got > 0.0);
    }
}
