//! A folder of labelled photos (e.g. foolbox's `imagenet_07_609.jpg`: label = last `_` field),
//! decoded and preprocessed one at a time (resize shorter side, centre crop, normalise).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use serde::{Deserialize, Serialize};

/// ImageNet-style preprocessing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    pub resize: u32,
    pub crop: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess { resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
    }
}

/// One image file with its label, if the file name carries one.
#[derive(Clone, Debug)]
pub struct Photo {
    pub path: PathBuf,
    pub label: Option<usize>,
}

/// Lists the JPEG/PNG files of `dir` whose name starts with `prefix` (sorted by name).
/// Labels come from the last `_` field.
pub fn list(dir: &Path, prefix: &str) -> Result<Vec<Photo>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read image folder '{}'", dir.display()))?;
    for e in entries {
        let path = e?.path();
        let ext = path.extension().and_then(|s| s.to_str()).map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png")) {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if !stem.starts_with(prefix) {
            continue;
        }
        let label = stem.rsplit('_').next().and_then(|s| s.parse().ok());
        out.push(Photo { path, label });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    if out.is_empty() {
        bail!("no .jpg/.jpeg/.png files starting with '{}' in '{}'", prefix, dir.display());
    }
    Ok(out)
}

/// Decodes an image file as 8-bit RGB; errors name the file.
fn open_rgb(path: &Path) -> Result<image::RgbImage> {
    Ok(super::image_file::decode(path)?.to_rgb8())
}

/// An image resized to exactly `h`×`w` (no crop; for models whose input is not square),
/// normalised with `p`'s mean and std, as [3, h, w].
pub fn load_resized(path: &Path, p: &Preprocess, h: u32, w: u32) -> Result<Vec<f32>> {
    let img = open_rgb(path)?;
    let img = image::imageops::resize(&img, w, h, FilterType::Triangle);
    let (hu, wu) = (h as usize, w as usize);
    let mut out = vec![0f32; 3 * hu * wu];
    for y in 0..hu {
        for x in 0..wu {
            let px = img.get_pixel(x as u32, y as u32);
            for ch in 0..3 {
                out[ch * hu * wu + y * wu + x] = (px[ch] as f32 / 255.0 - p.mean[ch]) / p.std[ch];
            }
        }
    }
    Ok(out)
}

pub fn load(path: &Path, p: &Preprocess) -> Result<Vec<f32>> {
    let img = open_rgb(path)?;
    let (w, h) = img.dimensions();
    let s = p.resize as f64 / w.min(h) as f64;
    let (nw, nh) = (((w as f64 * s).round() as u32).max(p.crop), ((h as f64 * s).round() as u32).max(p.crop));
    let img = image::imageops::resize(&img, nw, nh, FilterType::Triangle);
    let (l, t) = ((nw - p.crop) / 2, (nh - p.crop) / 2);
    let c = p.crop as usize;
    let mut out = vec![0f32; 3 * c * c];
    for y in 0..c {
        for x in 0..c {
            let px = img.get_pixel(l + x as u32, t + y as u32);
            for ch in 0..3 {
                out[ch * c * c + y * c + x] = (px[ch] as f32 / 255.0 - p.mean[ch]) / p.std[ch];
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_file_name_and_corrupt_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 128]));
        img.save(dir.path().join("imagenet_00_243.png")).unwrap();
        std::fs::write(dir.path().join("broken_7.jpg"), b"not a jpeg").unwrap();
        let photos = list(dir.path(), "").unwrap();
        assert_eq!(list(dir.path(), "imagenet_").unwrap().len(), 1);
        assert_eq!(photos.len(), 2);
        let good = photos.iter().find(|p| p.label == Some(243)).unwrap();
        let p = Preprocess { resize: 20, crop: 16, ..Default::default() };
        assert_eq!(load(&good.path, &p).unwrap().len(), 3 * 16 * 16);
        let bad = photos.iter().find(|p| p.label == Some(7)).unwrap();
        let err = format!("{:#}", load(&bad.path, &p).unwrap_err());
        assert!(err.contains("broken_7.jpg"), "{err}");
    }
}
