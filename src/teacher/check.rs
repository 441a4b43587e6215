//! `dnas teacher check`: the same images through dnas's tch executor, ONNX Runtime and tract,
//! plus the IR round trip (read → write → read) through tch.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use tch::Device;

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
}

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub model: String,
    pub device: String,
    pub images: usize,
    pub skipped: Vec<String>,
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

fn worst(a: Diff, b: Diff) -> Diff {
    Diff { max_abs: a.max_abs.max(b.max_abs), max_rel: a.max_rel.max(b.max_rel) }
}

/// Runs the check over every photo in `dir`, streaming batches of `opts.batch` images.
pub fn check(model_path: &Path, dir: &Path, opts: &CheckOptions) -> Result<CheckReport> {
    let bytes = std::fs::read(model_path).with_context(|| format!("cannot read '{}'", model_path.display()))?;
    let graph = read_model(&bytes).with_context(|| format!("'{}'", model_path.display()))?;
    let rewritten = write_model(&graph, &WriteOptions::default()).context("writing the IR back to ONNX")?;
    let reread = read_model(&rewritten).context("reading dnas's own ONNX back")?;
    let exec = Executor::new(graph, opts.device)?;
    let exec_rt = Executor::new(reread, opts.device)?;
    let mut ort = OrtModel::new(&bytes, 0)?;
    let list = photos::list(dir, &opts.prefix)?;
    let list: Vec<_> = list.into_iter().take(opts.limit.unwrap_or(usize::MAX)).collect();
    let c = opts.preprocess.crop as usize;
    let mut rep =
        CheckReport { model: model_path.display().to_string(), device: format!("{:?}", opts.device), tol: opts.tol, ..Default::default() };
    let mut tract: Option<(usize, TractModel)> = None;
    for chunk in list.chunks(opts.batch.max(1)) {
        let mut data = Vec::with_capacity(chunk.len() * 3 * c * c);
        let mut labels = Vec::new();
        for p in chunk {
            match photos::load(&p.path, &opts.preprocess) {
                Ok(v) => {
                    data.extend(v);
                    labels.push(p.label);
                }
                Err(e) => rep.skipped.push(format!("{e:#}")),
            }
        }
        if labels.is_empty() {
            continue;
        }
        let x = Array { shape: vec![labels.len(), 3, c, c], data };
        let xt = x.to_tch()?;
        let y_tch = Array::from_tch(&exec.forward(&xt)?)?;
        let y_rt = Array::from_tch(&exec_rt.forward(&xt)?)?;
        let y_ort = ort.run(&x)?.remove(0);
        let d = diff(&y_tch, &y_ort)
            .with_context(|| format!("tch output {:?} and ORT output {:?} differ in shape", y_tch.shape, y_ort.shape))?;
        rep.tch_vs_ort = worst(rep.tch_vs_ort, d);
        rep.roundtrip_vs_tch = worst(rep.roundtrip_vs_tch, diff(&y_rt, &y_tch).context("round-trip output shape differs")?);
        let (a_tch, a_ort) = (y_tch.argmax_rows(), y_ort.argmax_rows());
        if opts.tract {
            if tract.as_ref().is_none_or(|(n, _)| *n != labels.len()) {
                tract = Some((labels.len(), TractModel::new(&bytes, &x.shape)?));
            }
            let y_tr = tract.as_ref().unwrap().1.run(&x)?.remove(0);
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
