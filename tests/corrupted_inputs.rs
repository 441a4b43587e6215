//! Every kind of file a command reads — search space, architecture, budget, run-directory JSON,
//! checkpoint, safetensors weights, images — refused with exit 2 and the file (and field) named
//! when it is truncated, bit-flipped or inconsistent; and a command SIGKILLed while writing its
//! artifact leaves the previous one intact.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn dnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnas")).args(args).output().unwrap()
}

/// Asserts exit 2, no panic, and an error that names `file` and mentions every needle.
fn refused(what: &str, out: &Output, file: &Path, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: exit {:?}: {err}", out.status.code());
    assert!(!err.contains("panicked"), "{what}: {err}");
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(err.contains(name.as_ref()), "{what}: the error does not name {name}: {err}");
    for n in needles {
        assert!(err.contains(n), "{what}: the error does not mention '{n}': {err}");
    }
}

fn truncated(b: &[u8]) -> Vec<u8> {
    b[..b.len() / 2].to_vec()
}

/// `b` with one bit flipped in the first occurrence of `at` (at its `offset`-th byte).
fn flipped(b: &[u8], at: &str, offset: usize, bit: u8) -> Vec<u8> {
    let i = b.windows(at.len()).position(|w| w == at.as_bytes()).unwrap_or_else(|| panic!("'{at}' not in the file"));
    let mut out = b.to_vec();
    out[i + offset] ^= 1 << bit;
    out
}

fn json_edit(path: &Path, edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    serde_json::to_vec_pretty(&v).unwrap()
}

#[test]
fn search_space_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = models().join("spaces/fmnist_small.json");
    let good = std::fs::read(&src).unwrap();
    let teacher = models().join("fmnist_teacher.onnx");
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("truncated", truncated(&good), &["not valid JSON"]),
        // "layers" → "layerr": one bit.
        ("bit-flipped", flipped(&good, "\"layers\"", 6, 0), &["layerr"]),
        ("inconsistent", json_edit(&src, |v| v["blocks"][0]["cut"] = 9.into()), &["blocks[0].cut", "#9"]),
    ];
    for (what, bytes, needles) in cases {
        let file = dir.path().join(format!("space-{}.json", what.replace(' ', "-")));
        std::fs::write(&file, bytes).unwrap();
        let run = dir.path().join(format!("run-{what}"));
        let out = dnas(&[
            "train",
            "--run",
            run.to_str().unwrap(),
            "--teacher",
            teacher.to_str().unwrap(),
            "--space",
            file.to_str().unwrap(),
            "--max-steps",
            "1",
        ]);
        refused(&format!("space, {what}"), &out, &file, needles);
        assert!(!run.exists(), "space, {what}: a refused run left '{}' behind", run.display());
    }
}

#[test]
fn architecture_and_weights_files() {
    let dir = tempfile::tempdir().unwrap();
    let arch = models().join("archs/fmnist_searched.json");
    let weights = models().join("fmnist_searched.safetensors");
    let (good_arch, good_w) = (std::fs::read(&arch).unwrap(), std::fs::read(&weights).unwrap());
    let export = |a: &Path, w: &Path| {
        let o = dir.path().join("out.onnx");
        dnas(&["export", "--arch", a.to_str().unwrap(), "--weights", w.to_str().unwrap(), "-o", o.to_str().unwrap()])
    };
    // The architecture.
    let arch_cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("truncated", truncated(&good_arch), &["not valid JSON"]),
        // "stride" → "striee".
        ("bit-flipped", flipped(&good_arch, "\"stride\"", 5, 0), &["striee"]),
        ("inconsistent", json_edit(&arch, |v| v["blocks"][0]["out"] = 25.into()), &["fmnist_searched.safetensors", "[25]"]),
    ];
    for (what, bytes, needles) in arch_cases {
        let file = dir.path().join(format!("arch-{what}.json"));
        std::fs::write(&file, bytes).unwrap();
        refused(&format!("architecture, {what}"), &export(&file, &weights), &file, needles);
    }
    // The weights: the header is JSON after an 8-byte length.
    let n = u64::from_le_bytes(good_w[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&good_w[8..8 + n]).unwrap();
    const NAME: &str = "blocks.0.0.dw.conv.weight";
    let name = NAME;
    let shape: Vec<u64> = serde_json::from_value(header[name]["shape"].clone()).unwrap();
    header[name]["shape"] = serde_json::json!([shape[1], shape[0], shape[2], shape[3]]);
    let mut h = serde_json::to_vec(&header).unwrap();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let swapped = [&(h.len() as u64).to_le_bytes()[..], &h, &good_w[8 + n..]].concat();
    let w_cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("truncated", truncated(&good_w), &[]),
        // A bit of the first tensor name in the header.
        ("bit-flipped", flipped(&good_w, "blocks.0.0.dw.bn.bias", 0, 1), &["blocks.0.0.dw.bn.bias"]),
        ("wrong shape", swapped, &[NAME, "[96, 1, 5, 5]"]),
    ];
    for (what, bytes, needles) in w_cases {
        let file = dir.path().join(format!("weights-{}.safetensors", what.replace(' ', "-")));
        std::fs::write(&file, bytes).unwrap();
        refused(&format!("weights, {what}"), &export(&arch, &file), &file, needles);
    }
}

#[test]
fn budget_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = models().join("budgets/fmnist_searched.json");
    // The reference path made absolute so that the copies can live elsewhere.
    let good = json_edit(&src, |v| v["reference"] = models().join("fmnist_teacher.onnx").to_str().unwrap().into());
    let model = models().join("fmnist_searched.onnx");
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("truncated", truncated(&good), &["not valid JSON"]),
        // "max_params" → "max_paramr".
        ("bit-flipped", flipped(&good, "\"max_params\"", 10, 0), &["max_paramr"]),
        ("inconsistent", json_edit(&src, |v| v["max_params"] = (-5).into()), &["max_params", "minimum"]),
        ("missing reference", json_edit(&src, |v| v["reference"] = "no-such-teacher.onnx".into()), &["no-such-teacher.onnx"]),
    ];
    for (what, bytes, needles) in cases {
        let file = dir.path().join(format!("budget-{}.json", what.replace(' ', "-")));
        std::fs::write(&file, &bytes).unwrap();
        let report = dir.path().join("r.json");
        let out = dnas(&[
            "validate",
            model.to_str().unwrap(),
            "--budget",
            file.to_str().unwrap(),
            "--no-accuracy",
            "--targets",
            "tract",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--report",
            report.to_str().unwrap(),
        ]);
        let needles_and_file: Vec<&str> = needles.to_vec();
        if what == "missing reference" {
            // The error names the reference the budget points at (and the budget file is named by the flag).
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(err.contains("no-such-teacher.onnx"), "{err}");
        } else {
            refused(&format!("budget, {what}"), &out, &file, &needles_and_file);
        }
        assert!(!report.exists(), "budget, {what}: a refused validation wrote a report");
    }
}

#[test]
fn run_directory_json() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    common::copy_dir(&models().join("study/fmnist_small"), &study);
    // A record of the truth plan: its first entry, seed 0.
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("plan-truth.json")).unwrap()).unwrap();
    let key = plan["entries"][0]["key"].as_str().unwrap().to_string();
    let record = std::fs::read_dir(study.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("record.json"))
        .find(|p| {
            let r: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            r["key"] == key.as_str() && r["seed"] == 0
        })
        .unwrap();
    let good = std::fs::read(&record).unwrap();
    let other_key = plan["entries"][1]["key"].as_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("truncated", truncated(&good), &["not valid JSON"]),
        // "test_top1": 0.8… → "test_top1": 0.8… with the '"' before it flipped to a control byte.
        ("bit-flipped", flipped(&good, "\"test_top1\"", 0, 5), &["not valid JSON"]),
        ("inconsistent", json_edit(&record, |v| v["key"] = other_key.clone().into()), &["expected"]),
    ];
    for (what, bytes, needles) in cases {
        std::fs::write(&record, bytes).unwrap();
        let html = dir.path().join("report.html");
        let out = dnas(&["report", "--study", study.to_str().unwrap(), "-o", html.to_str().unwrap()]);
        refused(&format!("run record, {what}"), &out, &record, needles);
        assert!(!html.exists(), "run record, {what}: a refused report was written");
    }
    std::fs::write(&record, &good).unwrap();
}

/// A tiny training run (IDX data the test writes) with a checkpoint: corrupting the checkpoint's
/// JSON or its tensors is refused at `--resume`, naming the file.
#[test]
fn checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::write_idx(&data, "train", 200, false);
    common::write_idx(&data, "t10k", 20, false);
    let arch = dir.path().join("arch.json");
    std::fs::write(
        &arch,
        r#"{"name": "tiny", "input": [1, 6, 5], "classes": 10, "stem": {"channels": 8, "kernel": 3, "stride": 1},
            "stages": [{"out": 8, "layers": 1, "stride": 1, "expand": 2, "kernel": 3}], "head": 16}"#,
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let train = |resume: bool| {
        let mut args = vec![
            "train-teacher".to_string(),
            "--arch".into(),
            arch.to_str().unwrap().into(),
            "-o".into(),
            out_dir.to_str().unwrap().into(),
            "--data".into(),
            format!("idx:{}", data.display()),
        ];
        args.extend(
            ["--held-out", "20", "--epochs", "1", "--batch", "16", "--ckpt-every", "3", "--threads", "1", "--json"].map(String::from),
        );
        if resume {
            args.push("--resume".into());
        }
        Command::new(env!("CARGO_BIN_EXE_dnas")).args(&args).output().unwrap()
    };
    let o = train(false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ckpt = out_dir.join("ckpt");
    let meta_path = ckpt.join("checkpoint.json");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let tensors = ckpt.join(meta["tensors"].as_str().unwrap());
    let (good_meta, good_t) = (std::fs::read(&meta_path).unwrap(), std::fs::read(&tensors).unwrap());
    // The untouched checkpoint resumes.
    let o = train(true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A wrong shape with a matching checksum: the swap is only caught by the tensor check.
    let n = u64::from_le_bytes(good_t[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&good_t[8..8 + n]).unwrap();
    let (name, shape) = header
        .as_object()
        .unwrap()
        .iter()
        .find_map(|(k, v)| {
            let s: Vec<u64> = serde_json::from_value(v.get("shape")?.clone()).ok()?;
            (k.starts_with("model.") && s.len() == 4 && s[0] != s[1]).then(|| (k.clone(), s))
        })
        .unwrap();
    header[&name]["shape"] = serde_json::json!([shape[1], shape[0], shape[2], shape[3]]);
    let mut h = serde_json::to_vec(&header).unwrap();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let swapped = [&(h.len() as u64).to_le_bytes()[..], &h, &good_t[8 + n..]].concat();
    let resealed = {
        let mut m: serde_json::Value = serde_json::from_slice(&good_meta).unwrap();
        m["sha256"] = dnas::util::sha256_hex(&swapped).into();
        serde_json::to_vec_pretty(&m).unwrap()
    };

    let mut last_byte_flipped = good_t.clone();
    *last_byte_flipped.last_mut().unwrap() ^= 1;
    // (what, the file the error must name, checkpoint.json bytes, tensor file bytes, needles)
    type Case<'a> = (&'a str, &'a Path, Vec<u8>, Vec<u8>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        ("truncated JSON", &meta_path, truncated(&good_meta), good_t.clone(), vec!["not a valid checkpoint"]),
        ("truncated tensors", &tensors, good_meta.clone(), truncated(&good_t), vec!["corrupted"]),
        ("bit-flipped tensors", &tensors, good_meta.clone(), last_byte_flipped, vec!["corrupted", "SHA-256"]),
        ("wrong shape", &tensors, resealed, swapped, vec![name.trim_start_matches("model.")]),
    ];
    for (what, named, meta_bytes, tensor_bytes, needles) in cases {
        std::fs::write(&meta_path, meta_bytes).unwrap();
        std::fs::write(&tensors, tensor_bytes).unwrap();
        refused(&format!("checkpoint, {what}"), &train(true), named, &needles);
    }
}

/// A 3-channel 16×16 classifier (conv → BN → classifier) for `teacher check`.
fn tiny_rgb_model() -> Vec<u8> {
    let mut b = dnas::ir::builder::Builder::new("tiny", "x", [3, 16, 16], 7);
    let h = b.conv_bn("stem", "x", 3, 8, 3, 2, 1, true);
    let y = b.classifier("head", &h, 8, 10);
    let g = b.finish(&[&y]);
    dnas::onnx::write_model(&g, &Default::default()).unwrap()
}

#[test]
fn image_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.onnx");
    std::fs::write(&model, tiny_rgb_model()).unwrap();
    let img = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 128]));
    let encode = |f: image::ImageFormat| {
        let mut c = std::io::Cursor::new(Vec::new());
        img.write_to(&mut c, f).unwrap();
        c.into_inner()
    };
    let (jpg, png) = (encode(image::ImageFormat::Jpeg), encode(image::ImageFormat::Png));
    let mut png_flipped = png.clone();
    let mid = png.len() / 2;
    png_flipped[mid] ^= 0x10;
    let cases: Vec<(&str, &str, Vec<u8>, &[&str])> = vec![
        ("truncated JPEG", "cut_3.jpg", truncated(&jpg), &["truncated"]),
        ("bit-flipped PNG", "flip_3.png", png_flipped, &["not a decodable image"]),
        ("empty file", "empty_3.jpg", vec![], &[]),
    ];
    for (what, name, bytes, needles) in cases {
        let images = dir.path().join(format!("images-{}", name.replace('.', "-")));
        std::fs::create_dir_all(&images).unwrap();
        std::fs::write(images.join("good_1.jpg"), &jpg).unwrap();
        std::fs::write(images.join(name), bytes).unwrap();
        let out = dnas(&[
            "teacher",
            "check",
            model.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "--resize",
            "16",
            "--crop",
            "16",
            "--no-tract",
        ]);
        refused(&format!("image, {what}"), &out, &images.join(name), needles);
    }
}

/// `dnas export` SIGKILLed at moments spread over its run: the output path holds either the
/// previous artifact or the complete new one, never a mix or a partial file.
#[test]
fn a_command_killed_while_writing_leaves_the_previous_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let arch = models().join("archs/fmnist_searched.json");
    let weights = models().join("fmnist_searched.safetensors");
    let export = |o: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dnas"));
        c.args(["export", "--arch", arch.to_str().unwrap(), "--weights", weights.to_str().unwrap(), "-o", o.to_str().unwrap()]);
        c
    };
    let fresh = dir.path().join("fresh.onnx");
    // Timed warm (the faster of two): a first run of a just-built binary loads libtorch from a
    // cold disk cache and would spread the kill times past the warm exports that follow.
    let took = (0..2)
        .map(|_| {
            let t0 = Instant::now();
            assert!(export(&fresh).output().unwrap().status.success());
            t0.elapsed()
        })
        .min()
        .unwrap();
    let new = std::fs::read(&fresh).unwrap();
    let previous = std::fs::read(models().join("fmnist_demo_full.onnx")).unwrap();
    assert_ne!(new, previous);
    let out = dir.path().join("model.onnx");
    let (mut killed, tries) = (0, 16);
    for k in 0..tries {
        std::fs::write(&out, &previous).unwrap();
        let mut child = export(&out).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(took.mul_f64(k as f64 / tries as f64 * 1.1) + Duration::from_millis(1));
        let _ = child.kill();
        let status = child.wait().unwrap();
        killed += usize::from(status.code().is_none());
        let now = std::fs::read(&out).unwrap();
        assert!(
            now == previous || now == new,
            "try {k}: '{}' is neither the previous nor the new artifact ({} bytes)",
            out.display(),
            now.len()
        );
    }
    assert!(killed >= tries / 2, "only {killed} of {tries} exports were killed before they finished");
}
