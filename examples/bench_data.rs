//! Data pipeline benchmark (not a test): loader throughput on 2 decoding threads for IDX
//! (Fashion-MNIST, augmentation on) and ImageFolder JPEG 224² (random-resized-crop + flip), each
//! against the rate its consumer needs, measured in the same run:
//!   IDX   vs one training step of the Fashion-MNIST teacher (models/archs/fmnist_teacher.json)
//!   JPEG  vs a forward pass of EfficientNet-Lite0 in the tch executor (a frozen 224² teacher)
//! A ratio > 1 means the loader is faster than the loop it feeds, so training never waits.
//! Also prints peak RSS. Run: tools/bench_data.sh

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use dnas::data::folder::Folder;
use dnas::data::loader::LoaderConfig;
use dnas::data::{open, DataSpec, Dataset, Loader, Normalize};
use dnas::nets::{build, NetSpec};
use dnas::train::classify::Classifier;
use dnas::train::{Learner, Trainable};

fn loader_rate(data: Arc<dyn Dataset>, batch: usize, batches: usize) -> Result<(f64, usize)> {
    let l = Loader::new(data, LoaderConfig { batch, shuffle: true, augment: true, drop_last: true, seed: 1, workers: 2, prefetch: 4 });
    let t = Instant::now();
    let mut n = 0;
    for b in l.epoch(0, 0).take(batches) {
        n += b.n;
    }
    Ok((n as f64 / t.elapsed().as_secs_f64(), n))
}

fn main() -> Result<()> {
    tch::set_num_threads(2);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!("threads: 2 decoding workers, 2 libtorch threads\n");

    // IDX: Fashion-MNIST train, batch 128.
    let splits = open(&DataSpec { source: "fmnist".into(), held_out: 5000, seed: 0, size: None, channels: None })?;
    let (idx_rate, n) = loader_rate(Arc::new(splits.train.clone()), 128, 200)?;
    let spec = NetSpec::load(&root.join("models/archs/fmnist_teacher.json"))?;
    let mut learner = Classifier::new(Trainable::new(build(&spec, 0)?, tch::Device::Cpu)?, 0.1);
    let l = Loader::new(
        Arc::new(splits.train.clone()),
        LoaderConfig { batch: 128, shuffle: true, augment: true, drop_last: true, seed: 1, workers: 2, prefetch: 4 },
    );
    let batches: Vec<_> = l.epoch(0, 0).take(8).collect();
    let mut step_images = 0;
    let mut t = Instant::now();
    for (i, b) in batches.iter().enumerate() {
        if i == 2 {
            t = Instant::now(); // two warm-up steps
            step_images = 0;
        }
        let loss = learner.loss(b, i)?;
        loss.f_backward()?;
        step_images += b.n;
    }
    let train_rate = step_images as f64 / t.elapsed().as_secs_f64();
    println!("IDX (Fashion-MNIST 28², crop+flip), {n} images");
    println!("  loader                 {idx_rate:>10.0} images/s");
    println!("  teacher training step  {train_rate:>10.0} images/s (forward+backward, batch 128)");
    println!("  loader / step          {:>10.1}×", idx_rate / train_rate);

    // ImageFolder: 256 JPEGs (the foolbox ImageNet photos, copied into 4 class folders).
    let photos = PathBuf::from(std::env::var("DNAS_PKGS").context("DNAS_PKGS is not set: run via tools/bench_data.sh")?)
        .join("foolbox/foolbox/data");
    let src: Vec<PathBuf> = std::fs::read_dir(&photos)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|s| s.to_str()).is_some_and(|s| s.starts_with("imagenet_") && s.ends_with(".jpg")))
        .collect();
    let dir = std::env::temp_dir().join(format!("dnas-bench-folder-{}", std::process::id()));
    for i in 0..256 {
        let class = dir.join(format!("c{}", i % 4));
        std::fs::create_dir_all(&class)?;
        std::fs::copy(&src[i % src.len()], class.join(format!("{i}.jpg")))?;
    }
    let folder = Folder::open(&dir, 3, 224, 256, Normalize { mean: vec![0.485, 0.456, 0.406], std: vec![0.229, 0.224, 0.225] })?;
    let (jpeg_rate, n) = loader_rate(Arc::new(folder), 32, 8)?;
    let _ = std::fs::remove_dir_all(&dir);
    let lite0 = dnas::onnx::read_file(&PathBuf::from(std::env::var("DNAS_HOME")?).join("models/efficientnet_lite0.onnx"))?;
    let exec = dnas::exec::Executor::new(lite0, tch::Device::Cpu)?;
    let x = tch::Tensor::randn([8, 3, 224, 224], (tch::Kind::Float, tch::Device::Cpu));
    let _ = exec.forward(&x)?;
    let t = Instant::now();
    for _ in 0..3 {
        let _ = exec.forward(&x)?;
    }
    let fwd_rate = 24.0 / t.elapsed().as_secs_f64();
    println!("\nImageFolder (JPEG → random-resized-crop 224² + flip), {n} images");
    println!("  loader                 {jpeg_rate:>10.0} images/s");
    println!("  Lite0 teacher forward  {fwd_rate:>10.0} images/s (tch executor, batch 8)");
    println!("  loader / forward       {:>10.1}×", jpeg_rate / fwd_rate);
    println!("\npeak RSS {:.0} MiB", dnas::util::peak_rss_mib());
    Ok(())
}
