//! How a model takes its image input: the batch it fixes, NCHW or NHWC, and fixing the
//! dimensions an exporter left symbolic.

use anyhow::{Context, Result};

use crate::validate::Array;

/// How the model takes its image input: the batch it fixes (if any) and whether it is NHWC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputConvention {
    pub fixed_batch: Option<usize>,
    pub nhwc: bool,
}

impl InputConvention {
    /// Read from the graph's first data input: a fixed first dimension is the batch the model
    /// must be fed; [N, H, W, C] with C ∈ {1, 3} (and H not) is NHWC.
    pub fn of(g: &crate::ir::Graph) -> InputConvention {
        use crate::ir::Dim;
        let dims = g.data_inputs().next().and_then(|i| i.shape.clone()).unwrap_or_default();
        let fixed = |k: usize| match dims.get(k) {
            Some(Dim::Fixed(v)) => Some(*v),
            _ => None,
        };
        let nhwc = dims.len() == 4 && matches!(fixed(3), Some(1 | 3)) && !matches!(fixed(1), Some(1 | 3));
        InputConvention { fixed_batch: fixed(0).filter(|&b| b > 0), nhwc }
    }

    /// NCHW images (`n` of them, [C, H, W] each) as the model's input: padded to the fixed batch
    /// by repeating the last image, transposed to NHWC where the model wants it.
    pub fn feed(&self, data: Vec<f32>, n: usize, chw: [usize; 3]) -> Array {
        let per = chw.iter().product::<usize>();
        let mut data = data;
        let rows = self.fixed_batch.map_or(n, |b| b.max(n));
        if rows > n && n > 0 {
            let last = data[(n - 1) * per..n * per].to_vec();
            for _ in n..rows {
                data.extend_from_slice(&last);
            }
        }
        let [c, h, w] = chw;
        if !self.nhwc {
            return Array { shape: vec![rows, c, h, w], data };
        }
        let mut out = vec![0.0; data.len()];
        for i in 0..rows {
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        out[i * per + (y * w + x) * c + ch] = data[i * per + (ch * h + y) * w + x];
                    }
                }
            }
        }
        Array { shape: vec![rows, h, w, c], data: out }
    }
}

/// Fixes the first data input's dimensions after the batch to `shape[1..]` (a fixed batch the
/// model declares is kept and must match).
pub fn set_input_shape(g: &mut crate::ir::Graph, shape: &[usize]) -> Result<()> {
    use crate::ir::Dim;
    let name = g.data_inputs().next().map(|i| i.name.clone()).context("the model has no data input")?;
    let input = g.inputs.iter_mut().find(|i| i.name == name).context("the model has no data input")?;
    let declared = input.shape.clone().unwrap_or_default();
    if !declared.is_empty() {
        anyhow::ensure!(
            declared.len() == shape.len(),
            "graph input '{name}' has rank {}, the given shape {shape:?} has {} numbers",
            declared.len(),
            shape.len()
        );
        for (k, (d, &s)) in declared.iter().zip(shape).enumerate().skip(1) {
            if let Dim::Fixed(v) = d {
                anyhow::ensure!(*v == s, "input '{name}' fixes axis {k} to {v}, not {s}");
            }
        }
    }
    anyhow::ensure!(!shape.is_empty(), "the given input shape is empty");
    let batch = declared.first().cloned().unwrap_or(Dim::Sym("N".into()));
    input.shape = Some(std::iter::once(batch).chain(shape[1..].iter().map(|&d| Dim::Fixed(d))).collect());
    Ok(())
}
