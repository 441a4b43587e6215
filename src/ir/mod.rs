//! dnas's one intermediate representation. ONNX import and the search-space child both produce
//! a [`Graph`]; the tch executor, the ONNX writer and the cost counters all consume it.

pub mod builder;
pub mod cost;
pub mod fold;
pub mod graph;
pub mod infer;
pub mod op;
pub mod tensor;

pub use graph::{Dim, Graph, Node, ValueInfo};
pub use infer::{fixed_input_shapes, infer_with, Fact, Facts};
pub use op::{AutoPad, ConvAttrs, Op, PadMode, PoolAttrs};
pub use tensor::{DType, Data, Tensor};
