//! ImageFolder: `root/<class>/<image>.{jpg,jpeg,png}`, classes sorted by name. Only paths are kept;
//! each sample is decoded when the loader asks for it. Evaluation: resize the shorter side, centre
//! crop; training: random-resized-crop (scale 0.08–1, ratio 3/4–4/3) and horizontal flip.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use image::imageops::FilterType;
use image::DynamicImage;

use super::{Dataset, Normalize};
use crate::util::Rng;

pub struct Folder {
    files: Vec<(PathBuf, usize)>,
    classes: Vec<String>,
    channels: usize,
    size: u32,
    resize: u32,
    norm: Normalize,
}

fn is_image(p: &Path) -> bool {
    matches!(p.extension().and_then(|s| s.to_str()).map(str::to_ascii_lowercase).as_deref(), Some("jpg" | "jpeg" | "png"))
}

impl Folder {
    /// `channels` 1 (grey) or 3 (RGB); `size` the crop; `resize` the shorter side before the
    /// evaluation crop.
    pub fn open(root: &Path, channels: usize, size: u32, resize: u32, norm: Normalize) -> Result<Folder> {
        ensure!(channels == 1 || channels == 3, "channels must be 1 or 3, not {channels}");
        ensure!(size > 0 && resize >= size, "resize ({resize}) must be ≥ the crop size ({size}) > 0");
        let mut classes: Vec<String> = std::fs::read_dir(root)
            .with_context(|| format!("cannot read image folder '{}'", root.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .collect();
        classes.sort();
        if classes.is_empty() {
            bail!("'{}' has no class sub-folders (expected root/<class>/<image>.jpg)", root.display());
        }
        let mut files = Vec::new();
        for (k, c) in classes.iter().enumerate() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(c))
                .with_context(|| format!("cannot read '{}'", root.join(c).display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_image(p))
                .collect();
            v.sort();
            files.extend(v.into_iter().map(|p| (p, k)));
        }
        ensure!(!files.is_empty(), "no .jpg/.jpeg/.png files under '{}'", root.display());
        Ok(Folder { files, classes, channels, size, resize, norm })
    }

    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    fn decode(&self, i: usize) -> Result<DynamicImage> {
        let path = &self.files[i].0;
        super::image_file::decode(path)
    }

    fn to_chw(&self, img: &DynamicImage) -> Vec<f32> {
        let s = self.size as usize;
        let mut out = vec![0f32; self.channels * s * s];
        let px: Vec<u8> = if self.channels == 1 { img.to_luma8().into_raw() } else { img.to_rgb8().into_raw() };
        for y in 0..s {
            for x in 0..s {
                for c in 0..self.channels {
                    let v = px[(y * s + x) * self.channels + c] as f32 / 255.0;
                    out[c * s * s + y * s + x] = (v - self.norm.mean[c % self.norm.mean.len()]) / self.norm.std[c % self.norm.std.len()];
                }
            }
        }
        out
    }
}

impl Dataset for Folder {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn shape(&self) -> [usize; 3] {
        [self.channels, self.size as usize, self.size as usize]
    }
    fn num_classes(&self) -> usize {
        self.classes.len()
    }
    fn label(&self, i: usize) -> usize {
        self.files[i].1
    }
    fn load(&self, i: usize, aug: Option<&mut Rng>) -> Result<Vec<f32>> {
        let img = self.decode(i)?;
        let (w, h) = (img.width(), img.height());
        ensure!(w > 0 && h > 0, "'{}' is empty", self.files[i].0.display());
        let out = match aug {
            Some(rng) => {
                // Random-resized-crop: area fraction and aspect ratio (log-uniform), 10 tries, then centre.
                let area = (w * h) as f64;
                let mut rect = None;
                for _ in 0..10 {
                    let a = area * (0.08 + 0.92 * rng.uniform());
                    let r = ((3f64 / 4.0).ln() + rng.uniform() * ((4f64 / 3.0).ln() - (3f64 / 4.0).ln())).exp();
                    let (cw, ch) = ((a * r).sqrt().round() as u32, (a / r).sqrt().round() as u32);
                    if cw > 0 && ch > 0 && cw <= w && ch <= h {
                        rect = Some((rng.below((w - cw + 1) as usize) as u32, rng.below((h - ch + 1) as usize) as u32, cw, ch));
                        break;
                    }
                }
                let m = w.min(h);
                let (x, y, cw, ch) = rect.unwrap_or(((w - m) / 2, (h - m) / 2, m, m));
                let mut img = img.crop_imm(x, y, cw, ch).resize_exact(self.size, self.size, FilterType::Triangle);
                if rng.coin() {
                    img = img.fliph();
                }
                img
            }
            None => {
                let s = self.resize as f64 / w.min(h) as f64;
                let (nw, nh) = (((w as f64 * s).round() as u32).max(self.size), ((h as f64 * s).round() as u32).max(self.size));
                let img = img.resize_exact(nw, nh, FilterType::Triangle);
                img.crop_imm((nw - self.size) / 2, (nh - self.size) / 2, self.size, self.size)
            }
        };
        Ok(self.to_chw(&out))
    }
    fn describe(&self, i: usize) -> String {
        self.files[i].0.display().to_string()
    }
    fn preprocessing(&self) -> serde_json::Value {
        serde_json::json!({"layout": "NCHW", "channels": if self.channels == 1 { "grey" } else { "rgb" }, "scale": 1.0 / 255.0,
            "mean": self.norm.mean, "std": self.norm.std, "resize_shorter": self.resize, "center_crop": self.size})
    }
}
