//! Datasets and the batch loader.
//!
//! Every format implements [`Dataset`]: random access to one decoded sample at a time, so nothing
//! holds a whole dataset's decoded images (IDX and CIFAR keep their raw `u8` file contents, as
//! small as the files; image folders keep only paths). [`loader::Loader`] decodes on worker threads
//! ahead of the training loop in a deterministic, seed-defined order.

pub mod cifar;
pub mod folder;
pub mod idx;
pub mod image_file;
pub mod loader;
pub mod photos;
pub mod source;
pub mod split;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::util::Rng;

pub use loader::{Batch, Loader};
pub use source::{open, DataSpec, Splits};
pub use split::Subset;

/// Per-channel normalisation applied after scaling pixels to [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Training-time augmentation of small images (IDX, CIFAR): random crop after zero padding,
/// horizontal flip. Image folders use random-resized-crop instead.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    pub pad: usize,
    pub flip: bool,
}

/// Random access to labelled images, decoded one at a time.
pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// (channels, height, width) of every decoded sample.
    fn shape(&self) -> [usize; 3];
    fn num_classes(&self) -> usize;
    /// The class of sample `i` (without decoding it).
    fn label(&self, i: usize) -> usize;
    /// Decodes sample `i` into CHW f32, normalised; `aug` is `Some` for training-time augmentation.
    /// Errors name the file (a corrupt image is skipped and counted by the loader).
    fn load(&self, i: usize, aug: Option<&mut Rng>) -> Result<Vec<f32>>;
    /// What sample `i` is, for messages (a path, or `file#index`).
    fn describe(&self, i: usize) -> String;
    /// The preprocessing a deployed model needs, recorded in exported ONNX metadata.
    fn preprocessing(&self) -> serde_json::Value;
}

/// Crops (after virtual zero padding by `pad`) and optionally flips a CHW u8 image into a
/// normalised f32 CHW buffer of the same size. The shared augmentation of IDX and CIFAR.
pub fn crop_flip_normalize(src: &[u8], shape: [usize; 3], aug: Option<(Augment, &mut Rng)>, norm: &Normalize) -> Vec<f32> {
    let [c, h, w] = shape;
    let (dy, dx, flip) = match aug {
        Some((a, rng)) => {
            let dy = rng.below(2 * a.pad + 1) as isize - a.pad as isize;
            let dx = rng.below(2 * a.pad + 1) as isize - a.pad as isize;
            (dy, dx, a.flip && rng.coin())
        }
        None => (0, 0, false),
    };
    let mut out = vec![0f32; c * h * w];
    for ch in 0..c {
        let (m, s) = (norm.mean[ch % norm.mean.len()], norm.std[ch % norm.std.len()]);
        let zero = (0.0 - m) / s;
        for y in 0..h {
            let sy = y as isize + dy;
            for x in 0..w {
                let xx = if flip { w - 1 - x } else { x };
                let sx = xx as isize + dx;
                out[ch * h * w + y * w + x] = if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                    zero
                } else {
                    (src[ch * h * w + sy as usize * w + sx as usize] as f32 / 255.0 - m) / s
                };
            }
        }
    }
    out
}
