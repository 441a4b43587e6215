//! dnas's one intermediate representation. ONNX import and the search-space child both produce
//! a [`Graph`]; the tch executor, the ONNX writer and the cost counters all consume it.

pub mod builder;
pub mod fact;
pub mod fold;
pub mod graph;
pub mod limits;
pub mod op;
pub mod tensor;

pub use fact::{fixed_input_shapes, Fact, Facts};
pub use graph::{Dim, Graph, Node, ValueInfo};
pub use op::{AutoPad, Comparison, ConvAttrs, ConvTransposeAttrs, Op, PadMode, PoolAttrs, Reduction, Unary, Variadic};
pub use tensor::{DType, Data, Tensor};

/// The default-domain opset dnas builds and writes unless told otherwise.
pub const DEFAULT_OPSET: i64 = 17;
/// The oldest and newest default-domain opsets dnas reads (each op family knows the changes in
/// between); a file outside the range is refused at import.
pub const MIN_OPSET: i64 = 7;
pub const MAX_OPSET: i64 = 21;
