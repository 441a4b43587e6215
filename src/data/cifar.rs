//! CIFAR-10 / CIFAR-100 binary files: records of label byte(s) + 3072 bytes (RGB planes 32×32).
//! CIFAR-10: `data_batch_{1..5}.bin` / `test_batch.bin`, one label byte. CIFAR-100: `train.bin` /
//! `test.bin`, coarse then fine label byte (the fine label is used).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use super::{crop_flip_normalize, Augment, Dataset, Normalize};
use crate::util::Rng;

const PIXELS: usize = 3 * 32 * 32;

pub struct Cifar {
    records: Vec<u8>,
    label_bytes: usize,
    count: usize,
    classes: usize,
    norm: Normalize,
    augment: Augment,
    files: Vec<(PathBuf, usize)>,
}

impl Cifar {
    /// `classes` is 10 or 100; `files` are read in order.
    pub fn open(files: &[PathBuf], classes: usize, norm: Normalize, augment: Augment) -> Result<Cifar> {
        ensure!(classes == 10 || classes == 100, "CIFAR has 10 or 100 classes, not {classes}");
        let label_bytes = if classes == 10 { 1 } else { 2 };
        let rec = label_bytes + PIXELS;
        let mut records = Vec::new();
        let mut index = Vec::new();
        for f in files {
            let b = std::fs::read(f).with_context(|| format!("cannot read '{}'", f.display()))?;
            ensure!(
                !b.is_empty() && b.len() % rec == 0,
                "'{}': {} bytes is not a whole number of {rec}-byte CIFAR-{classes} records",
                f.display(),
                b.len()
            );
            index.push((f.clone(), b.len() / rec));
            records.extend_from_slice(&b);
        }
        let count = records.len() / rec;
        for i in 0..count {
            let l = records[i * rec + label_bytes - 1] as usize;
            ensure!(l < classes, "{}: label {l} ≥ {classes}", describe(&index, i));
        }
        Ok(Cifar { records, label_bytes, count, classes, norm, augment, files: index })
    }

    /// The standard file names of the train or test split in `dir`.
    pub fn split_files(dir: &Path, classes: usize, train: bool) -> Vec<PathBuf> {
        match (classes, train) {
            (100, true) => vec![dir.join("train.bin")],
            (100, false) => vec![dir.join("test.bin")],
            (_, true) => (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect(),
            (_, false) => vec![dir.join("test_batch.bin")],
        }
    }
}

fn describe(files: &[(PathBuf, usize)], mut i: usize) -> String {
    for (f, n) in files {
        if i < *n {
            return format!("{}#{i}", f.display());
        }
        i -= n;
    }
    format!("record {i}")
}

impl Dataset for Cifar {
    fn len(&self) -> usize {
        self.count
    }
    fn shape(&self) -> [usize; 3] {
        [3, 32, 32]
    }
    fn num_classes(&self) -> usize {
        self.classes
    }
    fn label(&self, i: usize) -> usize {
        self.records[i * (self.label_bytes + PIXELS) + self.label_bytes - 1] as usize
    }
    fn load(&self, i: usize, aug: Option<&mut Rng>) -> Result<Vec<f32>> {
        ensure!(i < self.count, "sample {i} is out of range ({} samples)", self.count);
        let start = i * (self.label_bytes + PIXELS) + self.label_bytes;
        Ok(crop_flip_normalize(&self.records[start..start + PIXELS], [3, 32, 32], aug.map(|r| (self.augment, r)), &self.norm))
    }
    fn describe(&self, i: usize) -> String {
        describe(&self.files, i)
    }
    fn preprocessing(&self) -> serde_json::Value {
        serde_json::json!({"layout": "NCHW", "channels": "rgb", "scale": 1.0 / 255.0, "mean": self.norm.mean, "std": self.norm.std, "size": [32, 32]})
    }
}
