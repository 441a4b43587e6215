//! Numerical comparison of two outputs.

use serde::Serialize;

use super::Array;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    pub max_abs: f64,
    /// max |a−b| / max |b|: relative to the reference's scale (robust to values near zero).
    pub max_rel: f64,
}

/// Compares `a` to the reference `b`. Shapes must match (else `None`).
pub fn diff(a: &Array, b: &Array) -> Option<Diff> {
    if a.shape != b.shape {
        return None;
    }
    let max_abs = a.data.iter().zip(&b.data).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max);
    let scale = b.data.iter().map(|y| (*y as f64).abs()).fold(0.0, f64::max);
    Some(Diff { max_abs, max_rel: if scale > 0.0 { max_abs / scale } else { max_abs } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_error_is_scaled_by_the_reference() {
        let a = Array { shape: vec![2], data: vec![10.0, 1.01] };
        let b = Array { shape: vec![2], data: vec![10.0, 1.0] };
        let d = diff(&a, &b).unwrap();
        assert!((d.max_abs - 0.01).abs() < 1e-6 && (d.max_rel - 0.001).abs() < 1e-6, "{d:?}");
        assert!(diff(&a, &Array { shape: vec![1, 2], data: b.data.clone() }).is_none());
    }
}
