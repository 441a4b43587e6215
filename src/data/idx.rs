//! IDX files (MNIST, Fashion-MNIST): `*-images-idx3-ubyte[.gz]` + `*-labels-idx1-ubyte[.gz]`.
//! The raw u8 pixels are kept (47 MB for 60k 28² images); samples are normalised on demand.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use super::{crop_flip_normalize, Augment, Dataset, Normalize};
use crate::util::Rng;

pub struct Idx {
    images: Vec<u8>,
    labels: Vec<u8>,
    shape: [usize; 3],
    classes: usize,
    norm: Normalize,
    augment: Augment,
    path: PathBuf,
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("'{}' is not a valid gzip file", path.display()))?;
        return Ok(out);
    }
    Ok(raw)
}

/// Parses an IDX file: returns (dims, payload).
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, usize)> {
    ensure!(bytes.len() >= 4 && bytes[0] == 0 && bytes[1] == 0, "'{}' is not an IDX file (bad magic)", path.display());
    ensure!(bytes[2] == 0x08, "'{}': IDX element type 0x{:02x} is not unsigned byte", path.display(), bytes[2]);
    let rank = bytes[3] as usize;
    ensure!(bytes.len() >= 4 + 4 * rank, "'{}' is truncated (header)", path.display());
    let dims: Vec<usize> = (0..rank).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let start = 4 + 4 * rank;
    let n: usize = dims.iter().product();
    ensure!(bytes.len() - start == n, "'{}': header says {} bytes of data, file has {}", path.display(), n, bytes.len() - start);
    Ok((dims, start))
}

/// Finds `{prefix}-{kind}-idx?-ubyte[.gz]` in `dir`.
pub fn find(dir: &Path, prefix: &str, kind: &str) -> Result<PathBuf> {
    for rank in ["3", "1"] {
        for ext in ["", ".gz"] {
            let p = dir.join(format!("{prefix}-{kind}-idx{rank}-ubyte{ext}"));
            if p.exists() {
                return Ok(p);
            }
        }
    }
    bail!("no '{prefix}-{kind}-idx?-ubyte[.gz]' file in '{}'", dir.display())
}

impl Idx {
    pub fn open(images: &Path, labels: &Path, norm: Normalize, augment: Augment) -> Result<Idx> {
        let ib = read_maybe_gz(images)?;
        let (idims, istart) = parse(images, &ib)?;
        ensure!(idims.len() == 3, "'{}': images must be rank 3 [N, H, W], got {:?}", images.display(), idims);
        let lb = read_maybe_gz(labels)?;
        let (ldims, lstart) = parse(labels, &lb)?;
        ensure!(ldims.len() == 1, "'{}': labels must be rank 1, got {:?}", labels.display(), ldims);
        ensure!(ldims[0] == idims[0], "'{}' has {} labels but '{}' has {} images", labels.display(), ldims[0], images.display(), idims[0]);
        let labels_v = lb[lstart..].to_vec();
        let classes = labels_v.iter().copied().max().map_or(0, |m| m as usize + 1);
        Ok(Idx {
            images: ib[istart..].to_vec(),
            labels: labels_v,
            shape: [1, idims[1], idims[2]],
            classes,
            norm,
            augment,
            path: images.to_path_buf(),
        })
    }
}

impl Dataset for Idx {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn shape(&self) -> [usize; 3] {
        self.shape
    }
    fn num_classes(&self) -> usize {
        self.classes.max(10)
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }
    fn load(&self, i: usize, aug: Option<&mut Rng>) -> Result<Vec<f32>> {
        let n = self.shape.iter().product::<usize>();
        ensure!(i < self.len(), "sample {i} is out of range ({} samples)", self.len());
        Ok(crop_flip_normalize(&self.images[i * n..(i + 1) * n], self.shape, aug.map(|r| (self.augment, r)), &self.norm))
    }
    fn describe(&self, i: usize) -> String {
        format!("{}#{i}", self.path.display())
    }
    fn preprocessing(&self) -> serde_json::Value {
        serde_json::json!({"layout": "NCHW", "channels": "grey", "scale": 1.0 / 255.0, "mean": self.norm.mean, "std": self.norm.std,
            "size": [self.shape[1], self.shape[2]]})
    }
}
