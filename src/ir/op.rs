//! The closed set of operators dnas understands, with typed, validated attributes.
//!
//! Attributes are parsed once on import (`onnx::ops`) into these types. Operators whose ONNX form
//! changed across opsets are stored in one canonical form (the opset-13 one: Squeeze/Unsqueeze
//! axes, Clip bounds, Pad pads and Slice bounds are *inputs*; ReduceMean axes an attribute), so
//! the executor, shape inference and cost counters see one form and the writer re-emits it for
//! the target opset. Every consumer matches exhaustively: a new variant makes the compiler list
//! every place that must handle it.

use super::tensor::{DType, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub enum AutoPad {
    #[default]
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

impl AutoPad {
    pub fn onnx_name(self) -> &'static str {
        match self {
            AutoPad::NotSet => "NOTSET",
            AutoPad::SameUpper => "SAME_UPPER",
            AutoPad::SameLower => "SAME_LOWER",
            AutoPad::Valid => "VALID",
        }
    }
}

/// Convolution attributes (2-D or 1-D; spatial rank is `strides.len()` once resolved).
#[derive(Clone, Debug, PartialEq, Default, serde::Serialize)]
pub struct ConvAttrs {
    /// Taken from the weight when absent.
    pub kernel_shape: Option<Vec<usize>>,
    /// Empty means "1 on every spatial axis".
    pub strides: Vec<usize>,
    /// `[begin_0, begin_1, …, end_0, end_1, …]`; empty means zeros. Ignored unless auto_pad is NotSet.
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub group: usize,
    pub auto_pad: AutoPad,
}

/// ConvTranspose attributes (explicit pads only; weight [C_in, C_out / group, k…]).
#[derive(Clone, Debug, PartialEq, Default, serde::Serialize)]
pub struct ConvTransposeAttrs {
    pub kernel_shape: Option<Vec<usize>>,
    pub strides: Vec<usize>,
    /// `[begin…, end…]`; empty means zeros.
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub output_padding: Vec<usize>,
    pub group: usize,
}

/// AveragePool / MaxPool attributes.
#[derive(Clone, Debug, PartialEq, Default, serde::Serialize)]
pub struct PoolAttrs {
    pub kernel_shape: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub ceil_mode: bool,
    /// AveragePool only.
    pub count_include_pad: bool,
    pub auto_pad: AutoPad,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

impl PadMode {
    pub fn onnx_name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
        }
    }
}

/// Element-wise math without attributes; the ONNX op type is the variant's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Unary {
    Tanh,
    Exp,
    Log,
    Sqrt,
    Neg,
    Abs,
    Reciprocal,
    Erf,
    Softplus,
    Mish,
}

impl Unary {
    pub const ALL: [Unary; 10] = [
        Unary::Tanh,
        Unary::Exp,
        Unary::Log,
        Unary::Sqrt,
        Unary::Neg,
        Unary::Abs,
        Unary::Reciprocal,
        Unary::Erf,
        Unary::Softplus,
        Unary::Mish,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Unary::Tanh => "Tanh",
            Unary::Exp => "Exp",
            Unary::Log => "Log",
            Unary::Sqrt => "Sqrt",
            Unary::Neg => "Neg",
            Unary::Abs => "Abs",
            Unary::Reciprocal => "Reciprocal",
            Unary::Erf => "Erf",
            Unary::Softplus => "Softplus",
            Unary::Mish => "Mish",
        }
    }
    pub fn parse(op_type: &str) -> Option<Unary> {
        Unary::ALL.into_iter().find(|u| u.name() == op_type)
    }
}

/// Reductions over axes other than the mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Reduction {
    Sum,
    Max,
    Min,
    L2,
}

impl Reduction {
    pub const ALL: [Reduction; 4] = [Reduction::Sum, Reduction::Max, Reduction::Min, Reduction::L2];
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "ReduceSum",
            Reduction::Max => "ReduceMax",
            Reduction::Min => "ReduceMin",
            Reduction::L2 => "ReduceL2",
        }
    }
    pub fn parse(op_type: &str) -> Option<Reduction> {
        Reduction::ALL.into_iter().find(|r| r.name() == op_type)
    }
    /// The opset from which the axes are an input (ReduceSum 13, the others 18).
    pub fn axes_input_from(self) -> i64 {
        if self == Reduction::Sum {
            13
        } else {
            18
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Comparison {
    Equal,
    Greater,
    Less,
}

impl Comparison {
    pub const ALL: [Comparison; 3] = [Comparison::Equal, Comparison::Greater, Comparison::Less];
    pub fn name(self) -> &'static str {
        match self {
            Comparison::Equal => "Equal",
            Comparison::Greater => "Greater",
            Comparison::Less => "Less",
        }
    }
    pub fn parse(op_type: &str) -> Option<Comparison> {
        Comparison::ALL.into_iter().find(|c| c.name() == op_type)
    }
}

/// Variadic element-wise reductions over their inputs, with broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Variadic {
    Sum,
    Mean,
    Max,
    Min,
}

impl Variadic {
    pub const ALL: [Variadic; 4] = [Variadic::Sum, Variadic::Mean, Variadic::Max, Variadic::Min];
    pub fn name(self) -> &'static str {
        match self {
            Variadic::Sum => "Sum",
            Variadic::Mean => "Mean",
            Variadic::Max => "Max",
            Variadic::Min => "Min",
        }
    }
    pub fn parse(op_type: &str) -> Option<Variadic> {
        Variadic::ALL.into_iter().find(|v| v.name() == op_type)
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "op")]
pub enum Op {
    /// X, W, [B]
    Conv(ConvAttrs),
    /// X, W, [B]
    ConvTranspose(ConvTransposeAttrs),
    /// X, scale, bias, mean, var (inference form)
    BatchNormalization {
        epsilon: f32,
    },
    /// X, scale, B: per-sample, per-channel normalisation over the spatial axes.
    InstanceNormalization {
        epsilon: f32,
    },
    /// Local response normalisation across channels.
    Lrn {
        alpha: f32,
        beta: f32,
        bias: f32,
        size: usize,
    },
    /// `crd`: the CRD (pixel-shuffle) order; otherwise DCR.
    DepthToSpace {
        blocksize: usize,
        crd: bool,
    },
    SpaceToDepth {
        blocksize: usize,
    },
    /// X, roi (unused), [scales], [sizes] — the opset-13 form; Upsample (opsets 7–9) reads as
    /// a nearest, asymmetric Resize. Only the modes with a libtorch kernel of the same meaning.
    Resize {
        linear: bool,
        /// Coordinate transformation: `half_pixel`, `pytorch_half_pixel`, `align_corners` or
        /// `asymmetric`.
        coordinates: String,
    },
    Relu,
    Sigmoid,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    HardSwish,
    /// X, [min], [max]
    Clip,
    LeakyRelu {
        alpha: f32,
    },
    Elu {
        alpha: f32,
    },
    Selu {
        alpha: f32,
        gamma: f32,
    },
    /// `tanh`: the tanh approximation (ONNX `approximate="tanh"`).
    Gelu {
        tanh: bool,
    },
    /// X, slope (broadcast to X)
    PRelu,
    Unary(Unary),
    /// X, exponent (broadcasting)
    Pow,
    /// Inputs broadcast together.
    Variadic(Variadic),
    Add,
    Sub,
    Mul,
    Div,
    /// A, B, [C]
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
    MatMul,
    GlobalAveragePool,
    GlobalMaxPool,
    AveragePool(PoolAttrs),
    MaxPool(PoolAttrs),
    /// Axes `None` = all axes.
    ReduceMean {
        axes: Option<Vec<i64>>,
        keepdims: bool,
    },
    /// ReduceSum / ReduceMax / ReduceMin / ReduceL2 (axes as ReduceMean).
    Reduce {
        kind: Reduction,
        axes: Option<Vec<i64>>,
        keepdims: bool,
    },
    ArgMax {
        axis: i64,
        keepdims: bool,
    },
    /// Element-wise comparison with broadcasting → bool.
    Compare(Comparison),
    /// condition, X, Y (broadcasting)
    Where,
    /// data, shape (bidirectional broadcast)
    Expand,
    /// data, repeats
    Tile,
    Flatten {
        axis: i64,
    },
    /// data, shape
    Reshape {
        allowzero: bool,
    },
    /// data, [axes]
    Squeeze,
    /// data, axes
    Unsqueeze,
    Concat {
        axis: i64,
    },
    /// data, pads, [constant_value]
    Pad {
        mode: PadMode,
    },
    Transpose {
        perm: Option<Vec<i64>>,
    },
    Constant {
        value: Tensor,
    },
    /// shape
    ConstantOfShape {
        value: Option<Tensor>,
    },
    /// start, limit, delta (scalars) → [start, start + delta, …) below limit (opset ≥ 11)
    Range,
    Shape {
        start: i64,
        end: Option<i64>,
    },
    /// data, indices
    Gather {
        axis: i64,
    },
    Identity,
    /// Inference: identity on the first output.
    Dropout,
    /// `legacy`: opset < 13 semantics (input coerced to 2-D at `axis`).
    Softmax {
        axis: i64,
        legacy: bool,
    },
    /// As Softmax.
    LogSoftmax {
        axis: i64,
        legacy: bool,
    },
    /// One-hot of the first maximum along `axis`; `legacy` as Softmax.
    Hardmax {
        axis: i64,
        legacy: bool,
    },
    Cast {
        to: DType,
    },
    /// data, starts, ends, [axes], [steps]
    Slice,
    /// data, [split sizes] → `outputs` parts along `axis` (equal parts without sizes).
    Split {
        axis: i64,
        outputs: usize,
    },
    /// Loaded for inspection; refused by the executor and the writer.
    Unknown {
        op_type: String,
        domain: String,
    },
}

impl Op {
    /// The ONNX op_type.
    pub fn name(&self) -> &str {
        match self {
            Op::Conv(_) => "Conv",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::BatchNormalization { .. } => "BatchNormalization",
            Op::InstanceNormalization { .. } => "InstanceNormalization",
            Op::Lrn { .. } => "LRN",
            Op::DepthToSpace { .. } => "DepthToSpace",
            Op::SpaceToDepth { .. } => "SpaceToDepth",
            Op::Resize { .. } => "Resize",
            Op::Relu => "Relu",
            Op::Sigmoid => "Sigmoid",
            Op::HardSigmoid { .. } => "HardSigmoid",
            Op::HardSwish => "HardSwish",
            Op::Clip => "Clip",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::Elu { .. } => "Elu",
            Op::Selu { .. } => "Selu",
            Op::Gelu { .. } => "Gelu",
            Op::PRelu => "PRelu",
            Op::Unary(u) => u.name(),
            Op::Pow => "Pow",
            Op::Variadic(v) => v.name(),
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Div => "Div",
            Op::Gemm { .. } => "Gemm",
            Op::MatMul => "MatMul",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::GlobalMaxPool => "GlobalMaxPool",
            Op::Reduce { kind, .. } => kind.name(),
            Op::ArgMax { .. } => "ArgMax",
            Op::Compare(c) => c.name(),
            Op::Where => "Where",
            Op::Expand => "Expand",
            Op::Tile => "Tile",
            Op::AveragePool(_) => "AveragePool",
            Op::MaxPool(_) => "MaxPool",
            Op::ReduceMean { .. } => "ReduceMean",
            Op::Flatten { .. } => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Squeeze => "Squeeze",
            Op::Unsqueeze => "Unsqueeze",
            Op::Concat { .. } => "Concat",
            Op::Pad { .. } => "Pad",
            Op::Transpose { .. } => "Transpose",
            Op::Constant { .. } => "Constant",
            Op::ConstantOfShape { .. } => "ConstantOfShape",
            Op::Range => "Range",
            Op::Shape { .. } => "Shape",
            Op::Gather { .. } => "Gather",
            Op::Identity => "Identity",
            Op::Dropout => "Dropout",
            Op::Softmax { .. } => "Softmax",
            Op::LogSoftmax { .. } => "LogSoftmax",
            Op::Hardmax { .. } => "Hardmax",
            Op::Cast { .. } => "Cast",
            Op::Slice => "Slice",
            Op::Split { .. } => "Split",
            Op::Unknown { op_type, .. } => op_type,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Op::Unknown { .. })
    }
}
