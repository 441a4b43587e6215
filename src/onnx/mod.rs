//! ONNX ⇄ IR. `schemas/onnx.proto` is compiled by build.rs (protox + prost-build).

pub mod export;
pub mod lower;
pub mod read;
pub mod tensor;
pub mod validity;
pub mod write;

/// Messages generated from `schemas/onnx.proto`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use read::{read_file, read_model};
pub use write::{write_file, write_model, WriteOptions};

/// IR version and opset dnas writes unless told otherwise.
pub const DEFAULT_IR_VERSION: i64 = 8;
pub use crate::ir::DEFAULT_OPSET;
