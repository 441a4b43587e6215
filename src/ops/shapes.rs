//! Shape helpers the families share: input access on facts, axes, broadcasting, the window
//! arithmetic of convolutions and pools, Reshape and Slice resolution.

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::ir::{AutoPad, ConvAttrs, Fact, PoolAttrs};

/// Required input #k.
pub fn req<'a>(ins: &[Option<&'a Fact>], k: usize) -> Result<&'a Fact> {
    ins.get(k).copied().flatten().ok_or_else(|| anyhow!("missing required input #{k}"))
}

pub fn const_ints(ins: &[Option<&Fact>], k: usize, what: &str) -> Result<Option<Vec<i64>>> {
    match ins.get(k).copied().flatten() {
        None => Ok(None),
        Some(f) => match &f.value {
            Some(v) => Ok(Some(v.as_i64s().with_context(|| format!("input '{what}'"))?)),
            None => bail!("input '{what}' must be constant (or computable from shapes) for dnas"),
        },
    }
}

/// Normalises a possibly negative axis for rank `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    ensure!(axis >= -r && axis < r.max(1), "axis {axis} is out of range for rank {rank}");
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// Resolves explicit or automatic padding to `[begin…, end…]` for the given spatial input size.
pub fn resolve_pads(
    auto_pad: AutoPad,
    pads: &[usize],
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
) -> Vec<usize> {
    let n = input.len();
    match auto_pad {
        AutoPad::NotSet => {
            if pads.is_empty() {
                vec![0; 2 * n]
            } else {
                pads.to_vec()
            }
        }
        AutoPad::Valid => vec![0; 2 * n],
        AutoPad::SameUpper | AutoPad::SameLower => {
            let mut out = vec![0; 2 * n];
            for i in 0..n {
                let (s, d) = (strides[i], dilations[i]);
                let out_len = input[i].div_ceil(s);
                let total = ((out_len - 1) * s + (kernel[i] - 1) * d + 1).saturating_sub(input[i]);
                let small = total / 2;
                let (b, e) = if auto_pad == AutoPad::SameUpper { (small, total - small) } else { (total - small, small) };
                out[i] = b;
                out[n + i] = e;
            }
            out
        }
    }
}

/// Spatial attributes with defaults filled in, for conv-like ops.
pub struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads: Vec<usize>,
}

impl Window {
    fn build(
        auto_pad: AutoPad,
        kernel: Vec<usize>,
        strides: &[usize],
        pads: &[usize],
        dilations: &[usize],
        input: &[usize],
    ) -> Result<Window> {
        let n = kernel.len();
        ensure!(input.len() == n, "input has {} spatial dims but the kernel has {}", input.len(), n);
        let strides = if strides.is_empty() { vec![1; n] } else { strides.to_vec() };
        let dilations = if dilations.is_empty() { vec![1; n] } else { dilations.to_vec() };
        ensure!(strides.len() == n, "strides {:?} do not match kernel rank {}", strides, n);
        ensure!(dilations.len() == n, "dilations {:?} do not match kernel rank {}", dilations, n);
        ensure!(pads.is_empty() || pads.len() == 2 * n, "pads {:?} must have {} entries", pads, 2 * n);
        ensure!(strides.iter().all(|&v| v > 0), "strides {:?} must be positive", strides);
        ensure!(dilations.iter().all(|&v| v > 0), "dilations {:?} must be positive", dilations);
        ensure!(kernel.iter().all(|&v| v > 0), "kernel_shape {:?} must be positive", kernel);
        ensure!(pads.iter().all(|&p| p <= 1 << 31), "pads {:?} are larger than any tensor dnas runs", pads);
        let pads = resolve_pads(auto_pad, pads, input, &kernel, &strides, &dilations);
        Ok(Window { kernel, strides, dilations, pads })
    }

    pub fn conv(a: &ConvAttrs, input: &[usize], weight: &[usize]) -> Result<Window> {
        let kernel = a.kernel_shape.clone().unwrap_or_else(|| weight[2..].to_vec());
        ensure!(kernel.as_slice() == &weight[2..], "kernel_shape {:?} does not match weight shape {:?}", kernel, weight);
        Window::build(a.auto_pad, kernel, &a.strides, &a.pads, &a.dilations, input)
    }

    pub fn pool(a: &PoolAttrs, input: &[usize]) -> Result<Window> {
        Window::build(a.auto_pad, a.kernel_shape.clone(), &a.strides, &a.pads, &a.dilations, input)
    }

    /// Output spatial size.
    pub fn output(&self, input: &[usize], ceil_mode: bool) -> Result<Vec<usize>> {
        let n = input.len();
        (0..n)
            .map(|i| {
                let padded = input[i] + self.pads[i] + self.pads[n + i];
                let span = (self.kernel[i] - 1) * self.dilations[i] + 1;
                ensure!(
                    padded >= span,
                    "spatial axis {} of size {} (padded {}) is smaller than the kernel span {}",
                    i,
                    input[i],
                    padded,
                    span
                );
                let s = self.strides[i];
                let mut o = if ceil_mode { (padded - span).div_ceil(s) + 1 } else { (padded - span) / s + 1 };
                // PyTorch/ONNX rule: the last window must start inside the input or left padding.
                if ceil_mode && (o - 1) * s >= input[i] + self.pads[i] {
                    o -= 1;
                }
                Ok(o)
            })
            .collect()
    }
}

/// Numpy-style broadcast of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => bail!("shapes {:?} and {:?} cannot be broadcast", a, b),
        };
    }
    Ok(out)
}

/// Resolves an ONNX Reshape spec (0 = copy, -1 = infer) against an input shape.
pub fn reshape_target(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer_at = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            -1 => {
                ensure!(infer_at.is_none(), "shape {:?} has more than one -1", spec);
                infer_at = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*input.get(i).ok_or_else(|| anyhow!("shape {:?} copies axis {} of a rank-{} input", spec, i, input.len()))?)
            }
            s if s >= 0 => out.push(s as usize),
            _ => bail!("invalid dimension {s} in shape {:?}", spec),
        }
    }
    let cannot = || anyhow!("cannot reshape {:?} ({} elements) to {:?}", input, total, spec);
    let known = crate::ir::limits::numel(&out).ok_or_else(cannot)?;
    if let Some(i) = infer_at {
        ensure!(known > 0 && total.is_multiple_of(known), cannot());
        out[i] = total / known;
    }
    ensure!(crate::ir::limits::numel(&out) == Some(total), cannot());
    Ok(out)
}

/// The indices an ONNX Slice selects on an axis of size `dim` (any non-zero step).
pub fn slice_indices(dim: usize, start: i64, end: i64, step: i64) -> Result<Vec<usize>> {
    ensure!(step != 0, "Slice step must not be 0");
    let d = dim as i64;
    let (mut s, mut e) = (if start < 0 { start.saturating_add(d) } else { start }, if end < 0 { end.saturating_add(d) } else { end });
    let mut out = Vec::new();
    if step > 0 {
        s = s.clamp(0, d);
        e = e.clamp(0, d);
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i += step;
        }
    } else {
        s = s.clamp(0, d - 1);
        e = e.clamp(-1, d - 1);
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 224 input, k3 s2: TF pads 0 before and 1 after.
        assert_eq!(resolve_pads(AutoPad::SameUpper, &[], &[224], &[3], &[2], &[1]), vec![0, 1]);
        assert_eq!(resolve_pads(AutoPad::SameLower, &[], &[224], &[3], &[2], &[1]), vec![1, 0]);
        assert_eq!(resolve_pads(AutoPad::SameUpper, &[], &[7], &[5], &[1], &[1]), vec![2, 2]);
    }

    #[test]
    fn reshape_spec_resolves_zero_and_minus_one() {
        assert_eq!(reshape_target(&[8, 3, 4], &[0, -1], false).unwrap(), vec![8, 12]);
        assert!(reshape_target(&[8, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_target(&[2, 2], &[-1, -1], false).is_err());
    }

    #[test]
    fn ceil_mode_drops_a_window_starting_in_right_padding() {
        // Input 5, k2 s2, pads 1/1: ceil gives 4 windows, but the 4th would start at 6 ≥ 5 + 1.
        let w = Window { kernel: vec![2], strides: vec![2], dilations: vec![1], pads: vec![1, 1] };
        assert_eq!(w.output(&[5], true).unwrap(), vec![3]);
        assert_eq!(w.output(&[5], false).unwrap(), vec![3]);
        let w = Window { kernel: vec![3], strides: vec![2], dilations: vec![1], pads: vec![1, 1] };
        assert_eq!(w.output(&[6], true).unwrap(), vec![4]);
        assert_eq!(w.output(&[112], false).unwrap(), vec![56]);
    }

    #[test]
    fn slice_indices_follow_onnx_including_reverse() {
        assert_eq!(slice_indices(4, -1, i64::MIN + 1, -1).unwrap(), vec![3, 2, 1, 0]);
        assert_eq!(slice_indices(5, 1, 100, 2).unwrap(), vec![1, 3]);
        assert_eq!(slice_indices(5, 3, 1, 1).unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(broadcast(&[8, 1, 5], &[3, 1]).unwrap(), vec![8, 3, 5]);
        assert!(broadcast(&[2, 3], &[4]).is_err());
    }
}
