//! dnas: block-wise knowledge-distillation NAS for mobile CNNs, shipped as ONNX.
//!
//! Pipeline (see docs/ARCHITECTURE.md): `onnx` (read/write) ⇄ `ir` (graph, op enum, tensors,
//! facts) with `ops` (one file per op family: parse, emit, shape inference, tch evaluation,
//! cost; and the inference and cost passes) → `exec` (tch executor) → `teacher` (inspect, cuts)
//! → `validate` (ORT, tract).

pub mod cli;
pub mod data;
pub mod exec;
pub mod ir;
pub mod mfkd;
pub mod nets;
pub mod oneshot;
pub mod onnx;
pub mod ops;
pub mod proto;
pub mod report;
pub mod search;
pub mod space;
pub mod study;
pub mod supernet;
pub mod teacher;
pub mod train;
pub mod util;
pub mod validate;
