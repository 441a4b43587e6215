//! Batches decoded on worker threads ahead of the training loop.
//!
//! The order is a pure function of (seed, epoch): batch `b` of an epoch always holds the same
//! samples with the same augmentation, whatever the number of workers, so a run resumed at batch
//! `b` sees exactly what the uninterrupted run saw. Worker `w` decodes batches `w, w+W, …` into its
//! own bounded channel; the consumer reads the channels round-robin (no reordering needed), and
//! measures how long it waits — the "is training ever blocked on data" figure.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Dataset;
use crate::util::Rng;

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch: usize,
    pub shuffle: bool,
    pub augment: bool,
    pub drop_last: bool,
    pub seed: u64,
    /// Decoding threads (≥ 1).
    pub workers: usize,
    /// Batches each worker may decode ahead.
    pub prefetch: usize,
}

impl LoaderConfig {
    pub fn eval(batch: usize) -> LoaderConfig {
        LoaderConfig { batch, shuffle: false, augment: false, drop_last: false, seed: 0, workers: 2, prefetch: 2 }
    }
}

/// One batch: `x` is NCHW f32, `y` class indices. Samples that failed to decode are left out and
/// listed in `skipped` (with the error, which names the file).
pub struct Batch {
    pub index: usize,
    pub n: usize,
    pub x: Vec<f32>,
    pub y: Vec<i64>,
    pub skipped: Vec<String>,
}

pub struct Loader {
    data: Arc<dyn Dataset>,
    cfg: LoaderConfig,
}

impl Loader {
    pub fn new(data: Arc<dyn Dataset>, cfg: LoaderConfig) -> Loader {
        assert!(cfg.batch > 0 && cfg.workers > 0, "batch and workers must be ≥ 1");
        Loader { data, cfg }
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.data
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    pub fn batches_per_epoch(&self) -> usize {
        let n = self.data.len();
        if self.cfg.drop_last {
            n / self.cfg.batch
        } else {
            n.div_ceil(self.cfg.batch)
        }
    }

    /// The sample order of `epoch`.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.data.len()).collect();
        if self.cfg.shuffle {
            Rng::stream(self.cfg.seed, 0x5348_5546, epoch as u64).shuffle(&mut idx);
        }
        idx
    }

    /// Decodes one batch (used by the workers; public for tests and benchmarks).
    pub fn make_batch(&self, order: &[usize], epoch: usize, b: usize) -> Batch {
        make_batch(&*self.data, &self.cfg, order, epoch, b)
    }

    /// Iterates the batches of `epoch` from batch `start` on.
    pub fn epoch(&self, epoch: usize, start: usize) -> EpochIter {
        let order = Arc::new(self.order(epoch));
        let total = self.batches_per_epoch();
        let w = self.cfg.workers.min(total.saturating_sub(start)).max(1);
        let mut rx = Vec::new();
        let mut handles = Vec::new();
        for k in 0..w {
            let (tx, r) = sync_channel::<Batch>(self.cfg.prefetch.max(1));
            let (data, cfg, order) = (self.data.clone(), self.cfg.clone(), order.clone());
            handles.push(std::thread::spawn(move || {
                let mut b = start + k;
                while b < total {
                    if tx.send(make_batch(&*data, &cfg, &order, epoch, b)).is_err() {
                        return; // the consumer stopped early
                    }
                    b += w;
                }
            }));
            rx.push(r);
        }
        EpochIter { rx, handles, next: start, start, total, waited: Duration::ZERO }
    }
}

fn make_batch(data: &dyn Dataset, cfg: &LoaderConfig, order: &[usize], epoch: usize, b: usize) -> Batch {
    let lo = b * cfg.batch;
    let hi = (lo + cfg.batch).min(order.len());
    let per: usize = data.shape().iter().product();
    let mut x = Vec::with_capacity((hi - lo) * per);
    let mut y = Vec::with_capacity(hi - lo);
    let mut skipped = Vec::new();
    for &i in &order[lo..hi] {
        let mut rng = Rng::stream(cfg.seed, 0x4155_4700 + epoch as u64, i as u64);
        match data.load(i, if cfg.augment { Some(&mut rng) } else { None }) {
            Ok(v) if v.len() == per => {
                x.extend_from_slice(&v);
                y.push(data.label(i) as i64);
            }
            Ok(v) => skipped.push(format!("{}: decoded to {} values, expected {per}", data.describe(i), v.len())),
            Err(e) => skipped.push(format!("{e:#}")),
        }
    }
    Batch { index: b, n: y.len(), x, y, skipped }
}

pub struct EpochIter {
    rx: Vec<Receiver<Batch>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    start: usize,
    total: usize,
    waited: Duration,
}

impl EpochIter {
    /// Total time `next()` spent blocked waiting for a worker.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Iterator for EpochIter {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.total {
            return None;
        }
        let k = (self.next - self.start) % self.rx.len();
        let t = Instant::now();
        let b = self.rx[k].recv().ok()?;
        self.waited += t.elapsed();
        self.next += 1;
        Some(b)
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.rx.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
