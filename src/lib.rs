//! dnas: block-wise knowledge-distillation NAS for mobile CNNs, shipped as ONNX.
//!
//! Pipeline (see docs/ARCHITECTURE.md): `onnx` (read/write) ⇄ `ir` (graph, ops, shape
//! inference, cost) → `exec` (tch executor) → `teacher` (inspect, cuts) → `validate` (ORT, tract).

pub mod cli;
pub mod data;
pub mod exec;
pub mod ir;
pub mod mfkd;
pub mod nets;
pub mod oneshot;
pub mod onnx;
pub mod report;
pub mod search;
pub mod space;
pub mod study;
pub mod supernet;
pub mod teacher;
pub mod train;
pub mod util;
pub mod validate;
