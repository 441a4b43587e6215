//! Search (DNA steps 2–4) over a run directory: train the block supernets, rank every candidate,
//! select the architecture exactly under a budget.

pub mod block_checkpoints;
pub mod choose;
pub mod evaluate;
pub mod lut;
pub mod metric;
pub mod predict;
pub mod record;
pub mod run;
pub mod select;
pub mod train;
