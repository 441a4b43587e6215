//! ONNX ⇄ IR. `schemas/onnx.proto` is compiled by build.rs (protox + prost-build).

pub mod export;
pub mod lower;
pub mod read;
pub mod validity;
pub mod write;

/// The wire format lives in [`crate::proto`] (a leaf the op families share); these names stay
/// for callers of `onnx::proto` and `onnx::tensor`.
pub use crate::proto;
pub use crate::proto::tensor;

pub use read::{read_file, read_model};
pub use write::{write_file, write_model, WriteOptions};

/// IR version and opset dnas writes unless told otherwise.
pub const DEFAULT_IR_VERSION: i64 = 8;
pub use crate::ir::DEFAULT_OPSET;
