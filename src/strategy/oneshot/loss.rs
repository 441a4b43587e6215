//! Cream's losses: soft cross-entropy to a teaching path's logits, and Cream's weighting of it
//! against the label loss. A leaf: the learner and the meta-network both use it.

use anyhow::Result;
use tch::{Kind, Tensor as T};

/// Soft cross-entropy of `student` logits to softmax(`teacher` logits), batch mean (T = 1).
pub fn soft_cross_entropy(student: &T, teacher: &T) -> Result<T> {
    let p = teacher.f_softmax(1, Kind::Float)?;
    let logq = student.f_log_softmax(1, Kind::Float)?;
    Ok(p.f_mul(&logq)?.f_sum_dim_intlist(1, false, Kind::Float)?.f_mean(Kind::Float)?.f_neg()?)
}

/// The weight m of top-1 matching (the reference's value without the meta-network).
pub const TOP1_M: f64 = 0.5;

/// Cream's loss: (m·KD + (2 − m)·CE) / 2.
pub fn cream_loss(kd: &T, ce: &T, m: f64) -> Result<T> {
    Ok(kd.f_mul_scalar(m)?.f_add(&ce.f_mul_scalar(2.0 - m)?)?.f_div_scalar(2.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kd_and_cream_loss_against_their_closed_forms() {
        // One row: teacher logits (0, ln 3) → p = (1/4, 3/4); student logits (0, 0) → log q = (−ln 2, −ln 2).
        // Soft CE = −Σ p log q = ln 2. Second row: equal logits → p = q = (1/2, 1/2), CE = ln 2.
        let t = T::from_slice(&[0.0f32, 3f32.ln(), 1.0, 1.0]).reshape([2, 2]);
        let s = T::from_slice(&[0.0f32, 0.0, 5.0, 5.0]).reshape([2, 2]);
        let kd = soft_cross_entropy(&s, &t).unwrap().double_value(&[]);
        assert!((kd - 2f64.ln()).abs() < 1e-6, "{kd}");
        // Asymmetric case: teacher p = (1, 0) (large gap), student logits (1, 0): −log(e/(e+1)).
        let t = T::from_slice(&[50.0f32, 0.0]).reshape([1, 2]);
        let s = T::from_slice(&[1.0f32, 0.0]).reshape([1, 2]);
        let kd = soft_cross_entropy(&s, &t).unwrap().double_value(&[]);
        let want = -(1f64.exp() / (1f64.exp() + 1.0)).ln();
        assert!((kd - want).abs() < 1e-6, "{kd} vs {want}");
        // (m·KD + (2−m)·CE)/2: m = 1 → mean; m = 0 → CE; m = 2 → KD.
        let (kd, ce) = (T::from(3.0f64), T::from(1.0f64));
        for (m, want) in [(1.0, 2.0), (0.0, 1.0), (2.0, 3.0), (0.5, 1.5)] {
            assert!((cream_loss(&kd, &ce, m).unwrap().double_value(&[]) - want).abs() < 1e-12, "m = {m}");
        }
    }
}
