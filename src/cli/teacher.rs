//! `dnas teacher …`, including `dnas teacher demo` (the real ImageNet teachers checked).

use std::path::{Path, PathBuf};

#[cfg(feature = "torch")]
use anyhow::bail;
use anyhow::{Context, Result};
#[cfg(feature = "torch")]
use clap::Args;
use clap::Subcommand;

use super::Outcome;
#[cfg(feature = "torch")]
use crate::data::photos::Preprocess;
#[cfg(feature = "torch")]
use crate::exec::parse_device;
use crate::onnx::read_file;
#[cfg(feature = "torch")]
use crate::teacher::check::{check, CheckOptions, CheckReport};
#[cfg(feature = "torch")]
use crate::teacher::convert::convert;
use crate::teacher::inspect::{inspect, Inspection};

#[derive(Subcommand)]
pub enum TeacherCommand {
    /// Op histogram, opset, params, MACs per layer and in total, candidate cut points.
    Inspect {
        model: PathBuf,
        /// Input shape, e.g. 1,3,224,224 (default: the declared shape at batch 1).
        #[arg(long, value_delimiter = ',')]
        input_shape: Option<Vec<usize>>,
        /// Override the automatic cuts with these tensor names (comma separated).
        #[arg(long, value_delimiter = ',')]
        cuts: Option<Vec<String>>,
        /// Print every layer, not only the totals and cuts.
        #[arg(long)]
        layers: bool,
        #[arg(long)]
        json: bool,
    },
    /// Same images through dnas's tch executor, ONNX Runtime and tract; IR round trip.
    #[cfg(feature = "torch")]
    Check(CheckArgs),
    /// Write the IR as JSON and the weights as safetensors.
    #[cfg(feature = "torch")]
    Convert {
        model: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The real ImageNet teachers installed by setup (EfficientNet-Lite0, MobileNetV2): imported,
    /// cut, and checked against ORT and tract on labelled photos.
    #[cfg(feature = "torch")]
    Demo(DemoArgs),
}

#[cfg(feature = "torch")]
#[derive(Args)]
pub struct CheckArgs {
    model: PathBuf,
    /// Folder of .jpg/.png images (label = last `_` field of the file name, if numeric).
    #[arg(long)]
    images: PathBuf,
    /// Only use images whose file name starts with this (e.g. imagenet_).
    #[arg(long, default_value = "")]
    prefix: String,
    #[command(flatten)]
    pre: PreArgs,
    #[arg(long, default_value = "cpu", value_parser = crate::exec::device_arg)]
    device: String,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Maximum relative error allowed against ONNX Runtime.
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// Skip tract.
    #[arg(long)]
    no_tract: bool,
    /// Input shape where the model leaves dimensions symbolic, e.g. 1,3,48,192 (the batch stays
    /// as the model declares it; a non-square input is fed resized images, not crops).
    #[arg(long, value_delimiter = ',')]
    input_shape: Option<Vec<usize>>,
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "torch")]
#[derive(Args, Clone)]
pub struct PreArgs {
    /// Resize the shorter side to this many pixels.
    #[arg(long, default_value_t = 256)]
    resize: u32,
    #[arg(long, default_value_t = 224)]
    crop: u32,
    /// Per-channel mean (RGB, on 0..1 pixels), comma-separated: `--mean 0.5,0.5,0.5`.
    #[arg(long, value_delimiter = ',', default_values_t = [0.485, 0.456, 0.406])]
    mean: Vec<f32>,
    /// Per-channel standard deviation (RGB), comma-separated: `--std 0.5,0.5,0.5`.
    #[arg(long, value_delimiter = ',', default_values_t = [0.229, 0.224, 0.225])]
    std: Vec<f32>,
}

#[cfg(feature = "torch")]
impl PreArgs {
    fn build(&self) -> Result<Preprocess> {
        let three = |v: &[f32], what: &str| -> Result<[f32; 3]> {
            v.try_into().map_err(|_| anyhow::anyhow!("--{what} needs 3 comma-separated values, got {}", v.len()))
        };
        if self.crop > self.resize {
            bail!("--crop {} is larger than --resize {}", self.crop, self.resize);
        }
        Ok(Preprocess { resize: self.resize, crop: self.crop, mean: three(&self.mean, "mean")?, std: three(&self.std, "std")? })
    }
}

pub fn run(cmd: TeacherCommand) -> Result<Outcome> {
    match cmd {
        TeacherCommand::Inspect { model, input_shape, cuts, layers, json } => {
            let g = read_file(&model)?;
            let r = inspect(&g, input_shape, cuts.as_deref()).with_context(|| format!("'{}'", model.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_inspection(&model, &r, layers);
            }
            Ok(Outcome::Ok)
        }
        #[cfg(feature = "torch")]
        TeacherCommand::Check(a) => {
            let rep = run_check(&a.model, &a.images, &a)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                print_check(&rep);
            }
            Ok(if rep.pass { Outcome::Ok } else { Outcome::CheckFailed })
        }
        #[cfg(feature = "torch")]
        TeacherCommand::Convert { model, output, json } => {
            let g = read_file(&model)?;
            convert(&g, &output).with_context(|| format!("'{}'", model.display()))?;
            if json {
                println!("{}", serde_json::json!({"graph": output.join("graph.json"), "weights": output.join("weights.safetensors")}));
            } else {
                println!("wrote {} and {}", output.join("graph.json").display(), output.join("weights.safetensors").display());
            }
            Ok(Outcome::Ok)
        }
        #[cfg(feature = "torch")]
        TeacherCommand::Demo(a) => demo(a),
    }
}

#[cfg(feature = "torch")]
fn run_check(model: &Path, images: &Path, a: &CheckArgs) -> Result<CheckReport> {
    let device = parse_device(&a.device)?;
    // libtorch runs float32 convolutions on TF32 tensor cores by default (Ampere and later):
    // ~1e-3 relative error, which would fail a 1e-4 parity check for the wrong reason. cuDNN and
    // cuBLAS read this variable when CUDA initialises, which has not happened yet here.
    if device.is_cuda() && std::env::var_os("NVIDIA_TF32_OVERRIDE").is_none() {
        std::env::set_var("NVIDIA_TF32_OVERRIDE", "0");
        eprintln!("note: TF32 off for the parity check (NVIDIA_TF32_OVERRIDE=0; set it yourself to choose)");
    }
    let opts = CheckOptions {
        device,
        preprocess: a.pre.build()?,
        batch: a.batch,
        tol: a.tol,
        tract: !a.no_tract,
        limit: None,
        prefix: a.prefix.clone(),
        input_shape: a.input_shape.clone(),
    };
    check(model, images, &opts)
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn print_inspection(path: &Path, r: &Inspection, layers: bool) {
    println!("model      {}", path.display());
    println!("opset      {}   nodes {}   input {:?}", r.opset, r.nodes, r.input_shape);
    println!("params     {} ({})", human(r.params), r.params);
    println!("MACs       {} ({}) at batch 1", human(r.macs), r.macs);
    println!("\nops:");
    for (op, n) in &r.op_histogram {
        println!("  {op:<20} {n:>5}");
    }
    if layers {
        println!("\n{:<40} {:<12} {:>10} {:>10}  output", "layer", "op", "params", "MACs");
        for l in &r.layers {
            println!("{:<40} {:<12} {:>10} {:>10}  {:?}", l.node, l.op, human(l.params), human(l.macs), l.output_shape);
        }
    }
    println!("\ncut points ({}):", r.cuts_source);
    println!("  {:<4} {:<48} {:>8} {:>7}  shape", "#", "tensor", "channels", "stride");
    for (i, c) in r.cuts.iter().enumerate() {
        println!("  {:<4} {:<48} {:>8} {:>7}  {:?}", i, c.tensor, c.channels, c.stride, c.shape);
    }
}

#[cfg(feature = "torch")]
fn print_check(r: &CheckReport) {
    println!("model {}  device {}  images {}", r.model, r.device, r.images);
    println!("{:<28} {:>12} {:>12} {:>12}", "comparison", "max abs", "max rel", "top-1 agree");
    println!(
        "{:<28} {:>12.3e} {:>12.3e} {:>9}/{}",
        "dnas tch vs ORT", r.tch_vs_ort.max_abs, r.tch_vs_ort.max_rel, r.top1_agree_tch_ort, r.images
    );
    if let (Some(d), Some(a)) = (r.tract_vs_ort, r.top1_agree_tract_ort) {
        println!("{:<28} {:>12.3e} {:>12.3e} {:>9}/{}", "tract vs ORT", d.max_abs, d.max_rel, a, r.images);
    }
    println!("{:<28} {:>12.3e} {:>12.3e}", "IR round trip vs tch", r.roundtrip_vs_tch.max_abs, r.roundtrip_vs_tch.max_rel);
    if r.labelled > 0 {
        println!("top-1 accuracy: tch {}/{}  ORT {}/{}", r.top1_correct_tch, r.labelled, r.top1_correct_ort, r.labelled);
    }
    println!("{} (tolerance {:.0e} relative)", if r.pass { "PASS" } else { "FAIL" }, r.tol);
}

#[cfg(feature = "torch")]
#[derive(Args)]
pub struct DemoArgs {
    /// Folder with the models exported by tools/export_teachers.py (default $DNAS_HOME/models).
    #[arg(long)]
    models: Option<PathBuf>,
    #[arg(long, default_value = "cpu", value_parser = crate::exec::device_arg)]
    device: String,
}

/// `dnas teacher demo`: stage 1 of the pipeline on the real ImageNet teachers — import, inspect, cut,
/// and check tch against ORT and tract on real labelled photos.
#[cfg(feature = "torch")]
fn demo(a: DemoArgs) -> Result<Outcome> {
    let home = std::env::var("DNAS_HOME")
        .map(PathBuf::from)
        .context("DNAS_HOME is not set: run through tools/dnas or source ~/.cache/dnas/env.sh")?;
    let models = a.models.unwrap_or_else(|| home.join("models"));
    let meta_path = models.join("teachers.json");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&meta_path).with_context(|| format!("cannot read '{}' (run tools/setup.sh)", meta_path.display()))?,
    )?;
    let photos = PathBuf::from(std::env::var("DNAS_PKGS").unwrap_or_default()).join("foolbox/foolbox/data");
    let mut ok = true;
    for name in ["efficientnet_lite0", "mobilenet_v2"] {
        let m = &meta[name];
        let model = models.join(format!("{name}.onnx"));
        let floats = |k: &str| {
            m[k].as_array().map(|v| v.iter().filter_map(|x| x.as_f64()).map(|x| x as f32).collect::<Vec<_>>()).unwrap_or_default()
        };
        println!("\n=== {name} ===");
        let g = read_file(&model)?;
        let r = inspect(&g, None, None)?;
        println!("params {}  MACs {}  cuts:", human(r.params), human(r.macs));
        for c in &r.cuts {
            println!("  {:<44} C={:<5} stride {}", c.tensor, c.channels, c.stride);
        }
        let args = CheckArgs {
            model: model.clone(),
            images: photos.clone(),
            prefix: "imagenet_".into(),
            pre: PreArgs { resize: 256, crop: 224, mean: floats("mean"), std: floats("std") },
            device: a.device.clone(),
            batch: 10,
            tol: 1e-4,
            no_tract: false,
            input_shape: None,
            json: false,
        };
        let rep = run_check(&model, &photos, &args)?;
        print_check(&rep);
        ok &= rep.pass;
    }
    Ok(if ok { Outcome::Ok } else { Outcome::CheckFailed })
}
