//! Training: a trainable module over the IR, optimizers, schedules, checkpoints and the one loop
//! every stage uses (teacher, supernet blocks, child retraining).

pub mod checkpoint;
pub mod classify;
pub mod features;
pub mod module;
pub mod optim;
pub mod schedule;
pub mod trainer;

pub use module::Trainable;
pub use trainer::{fit, fit_with_store, CheckpointStore, FitSummary, Learner, TrainConfig};
