//! Training: a trainable module over the IR, optimizers, schedules, checkpoints and the one loop
//! every stage uses (teacher, supernet blocks, child retraining).

pub mod checkpoint;
pub mod classify;
pub mod features;
pub mod job;
pub mod module;
pub mod optim;
pub mod schedule;
pub mod trainer;

pub use module::Trainable;
pub use trainer::{fit, fit_with_store, CheckpointStore, FitSummary, Learner, TrainConfig};

/// libtorch's intra-op threads (0 = every core).
pub fn set_threads(n: usize) {
    let n = if n == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { n };
    tch::set_num_threads(n as i32);
}
