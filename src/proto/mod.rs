//! The ONNX wire format, a leaf below `ops` and `onnx`: the messages generated from
//! `schemas/onnx.proto` (build.rs: protox + prost-build) and TensorProto ⇄ IR tensor
//! ([`tensor`]). The op families read attribute tensors through it; the reader and writer read
//! and write whole models with it.

pub mod tensor;

#[allow(clippy::all, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use generated::*;
