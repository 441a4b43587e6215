//! Turns a `--data` argument into train / held-out / test splits.
//!
//! Forms: `fmnist` (the embedded default: Fashion-MNIST from `$DNAS_FMNIST_DIR`, installed by
//! setup), `idx:DIR` (MNIST-style IDX files `train-*`/`t10k-*`), `cifar10:DIR`, `cifar100:DIR`
//! (binary versions), `folder:DIR` (ImageFolder with `DIR/train` and `DIR/test` or `DIR/val`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::cifar::Cifar;
use super::folder::Folder;
use super::idx::{self, Idx};
use super::split::{carve, Subset};
use super::{Augment, Dataset, Normalize};

/// Everything needed to reopen the same splits (recorded in run directories).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// The `--data` argument.
    pub source: String,
    /// Samples carved from train for held-out evaluation.
    pub held_out: usize,
    /// Seed of the held-out carve.
    pub seed: u64,
    /// ImageFolder only: crop size and channels (1 or 3).
    #[serde(default)]
    pub size: Option<u32>,
    #[serde(default)]
    pub channels: Option<usize>,
}

pub struct Splits {
    pub train: Subset,
    pub held_out: Subset,
    pub test: Subset,
}

/// Fashion-MNIST's folder: `$DNAS_FMNIST_DIR`, else Debian's install location.
pub fn fmnist_dir() -> PathBuf {
    std::env::var_os("DNAS_FMNIST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"))
}

fn idx_pair(dir: &Path, prefix: &str, norm: &Normalize, aug: Augment) -> Result<Arc<dyn Dataset>> {
    Ok(Arc::new(Idx::open(&idx::find(dir, prefix, "images")?, &idx::find(dir, prefix, "labels")?, norm.clone(), aug)?))
}

/// Opens the splits described by `spec`.
pub fn open(spec: &DataSpec) -> Result<Splits> {
    let (kind, arg) = match spec.source.split_once(':') {
        Some((k, a)) => (k, Some(a)),
        None => (spec.source.as_str(), None),
    };
    let dir = |what: &str| -> Result<PathBuf> {
        match arg {
            Some(a) if !a.is_empty() => Ok(PathBuf::from(a)),
            _ => bail!("--data {what}:DIR needs a directory"),
        }
    };
    let small_aug = Augment { pad: 2, flip: true };
    let (train, test): (Arc<dyn Dataset>, Arc<dyn Dataset>) = match kind {
        "fmnist" | "fashion-mnist" => {
            let d = match arg {
                Some(a) if !a.is_empty() => PathBuf::from(a),
                _ => fmnist_dir(),
            };
            let norm = Normalize { mean: vec![0.2860], std: vec![0.3530] };
            (idx_pair(&d, "train", &norm, small_aug)?, idx_pair(&d, "t10k", &norm, small_aug)?)
        }
        "idx" | "mnist" => {
            let d = dir("idx")?;
            let norm = Normalize { mean: vec![0.1307], std: vec![0.3081] };
            (idx_pair(&d, "train", &norm, small_aug)?, idx_pair(&d, "t10k", &norm, small_aug)?)
        }
        "cifar10" | "cifar100" => {
            let d = dir(kind)?;
            let classes = if kind == "cifar10" { 10 } else { 100 };
            let norm = Normalize { mean: vec![0.4914, 0.4822, 0.4465], std: vec![0.2470, 0.2435, 0.2616] };
            let aug = Augment { pad: 4, flip: true };
            (
                Arc::new(Cifar::open(&Cifar::split_files(&d, classes, true), classes, norm.clone(), aug)?),
                Arc::new(Cifar::open(&Cifar::split_files(&d, classes, false), classes, norm, aug)?),
            )
        }
        "folder" => {
            let d = dir("folder")?;
            let channels = spec.channels.unwrap_or(3);
            let size = spec.size.unwrap_or(224);
            let resize = (size as f64 / 0.875).round() as u32;
            let norm = if channels == 3 {
                Normalize { mean: vec![0.485, 0.456, 0.406], std: vec![0.229, 0.224, 0.225] }
            } else {
                Normalize { mean: vec![0.5], std: vec![0.5] }
            };
            let test_dir = if d.join("test").is_dir() { d.join("test") } else { d.join("val") };
            let train = Folder::open(&d.join("train"), channels, size, resize, norm.clone())?;
            let test = Folder::open(&test_dir, channels, size, resize, norm)?;
            if train.classes() != test.classes() {
                bail!("'{}' and '{}' have different class folders", d.join("train").display(), test_dir.display());
            }
            (Arc::new(train), Arc::new(test))
        }
        other => bail!("unknown --data '{other}': use fmnist, idx:DIR, cifar10:DIR, cifar100:DIR or folder:DIR"),
    };
    let (tr, held) = carve(train.len(), spec.held_out, spec.seed);
    Ok(Splits {
        train: Subset { base: train.clone(), indices: tr },
        held_out: Subset { base: train, indices: held },
        test: Subset::all(test),
    })
}
