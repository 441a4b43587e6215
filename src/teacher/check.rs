//! `dnas teacher check`: the same images through dnas's tch executor, ONNX Runtime and tract,
//! plus the IR round trip (read → write → read) through tch.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use tch::Device;

pub use super::input::{set_input_shape, InputConvention};
use crate::data::photos::{self, Preprocess};
use crate::exec::Executor;
use crate::onnx::{read_model, write_model, WriteOptions};
use crate::validate::compare::{diff, Diff};
use crate::validate::ort_rt::OrtModel;
use crate::validate::tract_rt::TractModel;
use crate::validate::Array;

#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub device: Device,
    pub preprocess: Preprocess,
    pub batch: usize,
    /// Tolerance on max relative error vs ORT.
    pub tol: f64,
    pub tract: bool,
    pub limit: Option<usize>,
    /// Only images whose file name starts with this.
    pub prefix: String,
    /// The model's input shape where it declares symbolic dimensions (N, C, H, W or N, H, W, C;
    /// the batch may stay symbolic: give any number, it is ignored unless the model fixes it).
    pub input_shape: Option<Vec<usize>>,
}

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub model: String,
    pub device: String,
    pub images: usize,
    pub labelled: usize,
    pub tch_vs_ort: Diff,
    pub tract_vs_ort: Option<Diff>,
    pub roundtrip_vs_tch: Diff,
    pub top1_agree_tch_ort: usize,
    pub top1_agree_tract_ort: Option<usize>,
    pub top1_correct_tch: usize,
    pub top1_correct_ort: usize,
    pub tol: f64,
    pub pass: bool,
}

/// [H, W] of the first data input where both are fixed.
fn spatial(g: &crate::ir::Graph, nhwc: bool) -> Option<[usize; 2]> {
    use crate::ir::Dim;
    let dims = g.data_inputs().next()?.shape.clone()?;
    let (h, w) = if nhwc { (dims.get(1)?, dims.get(2)?) } else { (dims.get(2)?, dims.get(3)?) };
    match (h, w) {
        (Dim::Fixed(h), Dim::Fixed(w)) => Some([*h, *w]),
        _ => None,
    }
}

/// The first `n` rows of `a` (the padding of a fixed batch dropped).
fn first_rows(a: Array, n: usize) -> Array {
    if a.shape.first().is_none_or(|&r| r <= n) {
        return a;
    }
    let per: usize = a.shape[1..].iter().product();
    let mut shape = a.shape.clone();
    shape[0] = n;
    Array { shape, data: a.data[..n * per].to_vec() }
}

fn worst(a: Diff, b: Diff) -> Diff {
    Diff { max_abs: a.max_abs.max(b.max_abs), max_rel: a.max_rel.max(b.max_rel) }
}

/// Runs the check over every photo in `dir`, streaming batches of `opts.batch` images.
pub fn check(model_path: &Path, dir: &Path, opts: &CheckOptions) -> Result<CheckReport> {
    let bytes = std::fs::read(model_path).with_context(|| format!("cannot read '{}'", model_path.display()))?;
    let mut graph = read_model(&bytes).with_context(|| format!("'{}'", model_path.display()))?;
    if let Some(shape) = &opts.input_shape {
        set_input_shape(&mut graph, shape).with_context(|| format!("'{}': --input-shape", model_path.display()))?;
    }
    let rewritten = write_model(&graph, &WriteOptions::default()).context("writing the IR back to ONNX")?;
    let reread = read_model(&rewritten).context("reading dnas's own ONNX back")?;
    let conv = InputConvention::of(&graph);
    let batch = conv.fixed_batch.unwrap_or(opts.batch.max(1));
    // The image size the model takes: its declared spatial dims where fixed, else the crop.
    let hw = spatial(&graph, conv.nhwc).unwrap_or([opts.preprocess.crop as usize; 2]);
    let exec = Executor::new(graph, opts.device)?;
    let exec_rt = Executor::new(reread, opts.device)?;
    let mut ort = OrtModel::new(&bytes, 0)?;
    let list = photos::list(dir, &opts.prefix)?;
    let list: Vec<_> = list.into_iter().take(opts.limit.unwrap_or(usize::MAX)).collect();
    let mut rep =
        CheckReport { model: model_path.display().to_string(), device: format!("{:?}", opts.device), tol: opts.tol, ..Default::default() };
    let mut tract: Option<(usize, TractModel)> = None;
    for chunk in list.chunks(batch) {
        let mut data = Vec::with_capacity(chunk.len() * 3 * hw[0] * hw[1]);
        let mut labels = Vec::new();
        for p in chunk {
            let square = hw == [opts.preprocess.crop as usize; 2];
            let img = if square {
                photos::load(&p.path, &opts.preprocess)
            } else {
                photos::load_resized(&p.path, &opts.preprocess, hw[0] as u32, hw[1] as u32)
            };
            // The photos of a check are few and chosen: one that does not decode is an error
            // (the training loaders skip and count broken files instead).
            data.extend(img?);
            labels.push(p.label);
        }
        if labels.is_empty() {
            continue;
        }
        let n = labels.len();
        let x = conv.feed(data, n, [3, hw[0], hw[1]]);
        let xt = x.to_tch()?;
        let y_tch = first_rows(Array::from_tch(&exec.forward(&xt)?)?, n);
        let y_rt = first_rows(Array::from_tch(&exec_rt.forward(&xt)?)?, n);
        let y_ort = first_rows(ort.run(&x)?.remove(0), n);
        let d = diff(&y_tch, &y_ort)
            .with_context(|| format!("tch output {:?} and ORT output {:?} differ in shape", y_tch.shape, y_ort.shape))?;
        rep.tch_vs_ort = worst(rep.tch_vs_ort, d);
        rep.roundtrip_vs_tch = worst(rep.roundtrip_vs_tch, diff(&y_rt, &y_tch).context("round-trip output shape differs")?);
        let (a_tch, a_ort) = (y_tch.argmax_rows(), y_ort.argmax_rows());
        if opts.tract {
            if tract.as_ref().is_none_or(|(rows, _)| *rows != x.shape[0]) {
                tract = Some((x.shape[0], TractModel::new(&bytes, &x.shape)?));
            }
            let y_tr = first_rows(tract.as_ref().unwrap().1.run(&x)?.remove(0), n);
            let d = diff(&y_tr, &y_ort).context("tract output shape differs")?;
            rep.tract_vs_ort = Some(rep.tract_vs_ort.map_or(d, |w| worst(w, d)));
            let agree = y_tr.argmax_rows().iter().zip(&a_ort).filter(|(a, b)| a == b).count();
            rep.top1_agree_tract_ort = Some(rep.top1_agree_tract_ort.unwrap_or(0) + agree);
        }
        for (i, label) in labels.iter().enumerate() {
            rep.images += 1;
            rep.top1_agree_tch_ort += (a_tch[i] == a_ort[i]) as usize;
            if let Some(l) = label {
                rep.labelled += 1;
                rep.top1_correct_tch += (a_tch[i] == *l) as usize;
                rep.top1_correct_ort += (a_ort[i] == *l) as usize;
            }
        }
    }
    anyhow::ensure!(rep.images > 0, "no image in '{}' could be decoded", dir.display());
    rep.pass = rep.tch_vs_ort.max_rel <= opts.tol
        && rep.top1_agree_tch_ort == rep.images
        && rep.roundtrip_vs_tch.max_rel <= 1e-6
        && rep.tract_vs_ort.is_none_or(|d| d.max_rel <= opts.tol)
        && rep.top1_agree_tract_ort.is_none_or(|a| a == rep.images);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhwc_feed_transposes_and_a_fixed_batch_is_padded_then_dropped() {
        let conv = InputConvention { fixed_batch: Some(3), nhwc: true };
        // Two images [C=2, H=1, W=2]: values name (image, channel, x).
        let data = vec![0.0, 1.0, 10.0, 11.0, 100.0, 101.0, 110.0, 111.0];
        let x = conv.feed(data, 2, [2, 1, 2]);
        assert_eq!(x.shape, vec![3, 1, 2, 2]);
        assert_eq!(x.data[..8], [0.0, 10.0, 1.0, 11.0, 100.0, 110.0, 101.0, 111.0]);
        assert_eq!(x.data[8..], x.data[4..8], "the padding repeats the last image");
        let y = first_rows(Array { shape: vec![3, 2], data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] }, 2);
        assert_eq!((y.shape, y.data), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
    }
}
