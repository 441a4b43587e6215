//! dnas: block-wise knowledge-distillation NAS for mobile CNNs, shipped as ONNX.
//!
//! Pipeline (see docs/ARCHITECTURE.md): `onnx` (read/write) ⇄ `ir` (graph, op enum, tensors,
//! facts) with `ops` (one file per op family: parse, emit, shape inference, tch evaluation,
//! cost; and the inference and cost passes) → `exec` (tch executor) → `teacher` (inspect, cuts)
//! → `validate` (ORT, tract).

pub mod cli;
pub mod data;
#[cfg(feature = "torch")]
pub mod exec;
pub mod ir;
#[cfg(feature = "torch")]
pub mod nets;
pub mod onnx;
pub mod ops;
#[cfg(feature = "torch")]
pub mod pipeline;
pub mod proto;
#[cfg(feature = "torch")]
pub mod report;
pub mod space;
#[cfg(feature = "torch")]
pub mod strategy;
#[cfg(feature = "torch")]
pub mod study;
#[cfg(feature = "torch")]
pub mod supernet;
pub mod teacher;
#[cfg(feature = "torch")]
pub mod train;
pub mod util;
pub mod validate;
