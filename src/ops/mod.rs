//! The operators, one file per op family. Each family holds, for its ops, everything the passes
//! need: ONNX attribute parsing with its opset history and the exact inverse emission, shape
//! inference, tch evaluation (and in-place evaluation where it is safe), and cost. The closed
//! [`Op`] enum of `ir::op` stays the index: [`family`] maps every variant to the one family that
//! owns it, and [`FAMILIES`] lists the ONNX op types each family reads, so a new variant makes
//! the compiler point at the one match to extend.
//!
//! Layering: `ops` reads `ir` (the types), `onnx::proto` and `onnx::tensor` (the generated
//! messages and tensor (de)serialisation, leaves) and holds [`convert`] (IR ⇄ tch tensors and
//! devices, a leaf); the passes above it — `onnx::read`/`write`, [`infer`], [`cost`], the executor — call
//! into it, never the other way round.

pub mod activation;
pub mod attrs;
pub mod broadcast;
pub mod constant;
pub mod conv;
#[cfg(feature = "torch")]
pub mod convert;
pub mod cost;
pub mod elementwise;
pub mod infer;
pub mod linear;
pub mod logic;
pub mod normalization;
pub mod pad;
pub mod pool;
pub mod rearrange;
pub mod rectifier;
pub mod reduce;
pub mod resize;
pub mod shape;
pub mod shapes;
#[cfg(feature = "torch")]
mod torch;
pub mod unary;

#[cfg(test)]
pub(crate) mod conformance;

use std::collections::BTreeMap;

use anyhow::{bail, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use crate::ir::{Fact, Op, Tensor};
use crate::proto::{AttributeProto, NodeProto};
pub use attrs::{EmitCx, ParseCx};

/// What one op family provides. Every method receives only ops of its family ([`family`]).
pub trait Family: Sync {
    /// Its name, for messages.
    fn name(&self) -> &'static str;
    /// The default-domain ONNX op types it reads.
    fn op_types(&self) -> &'static [&'static str];
    /// ONNX node → canonical IR op (`cx` holds the attributes, the opset and the inputs, which
    /// may be rewritten to the canonical form).
    fn parse(&self, op_type: &str, cx: &mut ParseCx) -> Result<Op>;
    /// The exact inverse of `parse` for the target opset: attributes into `cx.out`, and the
    /// input list shortened where older opsets take constants as attributes.
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()>;
    /// Output facts from input facts (shapes; values are folded by the pass).
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>>;
    #[cfg(feature = "torch")]
    /// Evaluation with libtorch (fallible `f_*` calls only: a bad model errors, never panics).
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>>;
    #[cfg(feature = "torch")]
    /// Evaluation into input `pos`'s memory; `None` when this call cannot be done in place.
    fn eval_inplace(&self, _op: &Op, _ins: &[Option<T>], _pos: usize) -> Result<Option<T>> {
        Ok(None)
    }
    /// Multiply-accumulates for the inferred shapes (`shape(i)`: input i; `out_numel`: elements
    /// of the first output). Element-wise ops and pooling are free.
    fn macs(&self, _op: &Op, _shape: &dyn Fn(usize) -> Vec<usize>, _out_numel: u64) -> u64 {
        0
    }
    /// Inputs whose float initializers count as parameters.
    fn param_inputs(&self, _op: &Op) -> &'static [usize] {
        &[]
    }
}

/// Every family, in the order the reader tries them.
pub const FAMILIES: &[&dyn Family] = &[
    &conv::Conv,
    &normalization::Normalization,
    &activation::Activation,
    &rectifier::Rectifier,
    &unary::Math,
    &elementwise::Elementwise,
    &linear::Linear,
    &pool::Pool,
    &reduce::Reduce,
    &shape::Shape,
    &broadcast::Broadcast,
    &rearrange::Rearrange,
    &resize::Resize,
    &logic::Logic,
    &pad::Pad,
    &constant::Constant,
];

/// The family that owns `op`.
pub fn family(op: &Op) -> &'static dyn Family {
    match op {
        Op::Conv(_) | Op::ConvTranspose(_) => &conv::Conv,
        Op::BatchNormalization { .. } | Op::InstanceNormalization { .. } | Op::Lrn { .. } => &normalization::Normalization,
        Op::DepthToSpace { .. } | Op::SpaceToDepth { .. } => &rearrange::Rearrange,
        Op::Resize { .. } => &resize::Resize,
        Op::Relu
        | Op::Sigmoid
        | Op::HardSigmoid { .. }
        | Op::HardSwish
        | Op::Clip
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Hardmax { .. } => &activation::Activation,
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Variadic(_) => &elementwise::Elementwise,
        Op::LeakyRelu { .. } | Op::Elu { .. } | Op::Selu { .. } | Op::Gelu { .. } | Op::PRelu => &rectifier::Rectifier,
        Op::Unary(_) => &unary::Math,
        Op::Gemm { .. } | Op::MatMul => &linear::Linear,
        Op::GlobalAveragePool | Op::GlobalMaxPool | Op::AveragePool(_) | Op::MaxPool(_) => &pool::Pool,
        Op::ReduceMean { .. } | Op::Reduce { .. } | Op::ArgMax { .. } => &reduce::Reduce,
        Op::Compare(_) | Op::Where => &logic::Logic,
        Op::Expand | Op::Tile => &broadcast::Broadcast,
        Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Concat { .. }
        | Op::Transpose { .. }
        | Op::Shape { .. }
        | Op::Gather { .. }
        | Op::Identity
        | Op::Dropout
        | Op::Cast { .. }
        | Op::Slice
        | Op::Split { .. } => &shape::Shape,
        Op::Pad { .. } => &pad::Pad,
        Op::Constant { .. } | Op::ConstantOfShape { .. } | Op::Range => &constant::Constant,
        Op::Unknown { .. } => &Unknown,
    }
}

/// The error a family gives for an op that is not its own (a dispatch bug, never input).
pub(crate) fn not_mine(family: &dyn Family, op: &Op) -> anyhow::Error {
    anyhow::anyhow!("internal: op {} is not in family {}", op.name(), family.name())
}

/// Parses a node into an IR op. `inputs` may be rewritten to the canonical form; new constant
/// inputs are added to `new_inits` (named after the node). Ops no family reads (and other
/// domains) become [`Op::Unknown`], kept for inspection.
pub fn parse(node: &NodeProto, opset: i64, inputs: &mut Vec<String>, new_inits: &mut BTreeMap<String, Tensor>) -> Result<Op> {
    let domain = node.domain();
    let unknown = || Op::Unknown { op_type: node.op_type().to_string(), domain: domain.to_string() };
    if !(domain.is_empty() || domain == "ai.onnx") {
        return Ok(unknown());
    }
    let Some(f) = FAMILIES.iter().find(|f| f.op_types().contains(&node.op_type())) else { return Ok(unknown()) };
    let mut cx = ParseCx::new(node, opset, inputs, new_inits);
    let op = f.parse(node.op_type(), &mut cx)?;
    cx.finish()?;
    Ok(op)
}

/// Emits the attributes of `op` for `opset`. `consts` gives constant inputs that older opsets
/// take as attributes; returns the attributes and the (possibly shortened) input list.
pub fn emit(op: &Op, opset: i64, inputs: &[String], consts: &dyn Fn(&str) -> Option<Tensor>) -> Result<(Vec<AttributeProto>, Vec<String>)> {
    let mut cx = EmitCx::new(op, opset, inputs, consts);
    family(op).emit(op, &mut cx)?;
    Ok((cx.out, cx.ins))
}

/// Output facts of one node.
pub fn infer_op(op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
    family(op).infer(op, ins)
}

/// One node evaluated with libtorch.
#[cfg(feature = "torch")]
pub fn eval(op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
    family(op).eval(op, ins)
}

/// `op` evaluated into input `pos`'s memory (see the in-place plan in `exec::Plan`). `None`
/// when this call cannot be done in place, and the caller evaluates it normally.
#[cfg(feature = "torch")]
pub fn eval_inplace(op: &Op, ins: &[Option<T>], pos: usize) -> Result<Option<T>> {
    family(op).eval_inplace(op, ins, pos)
}

/// Ops read for inspection only: refused by inference, the executor and the writer.
pub struct Unknown;

impl Unknown {
    fn refuse(op: &Op) -> anyhow::Error {
        match op {
            Op::Unknown { op_type, domain } if !domain.is_empty() => anyhow::anyhow!("unsupported op '{domain}::{op_type}'"),
            _ => anyhow::anyhow!("unsupported op '{}'", op.name()),
        }
    }
}

impl Family for Unknown {
    fn name(&self) -> &'static str {
        "unknown"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &[]
    }
    fn parse(&self, op_type: &str, _cx: &mut ParseCx) -> Result<Op> {
        bail!("internal: no family reads '{op_type}'")
    }
    fn emit(&self, op: &Op, _cx: &mut EmitCx) -> Result<()> {
        bail!("op '{}' is not supported by the writer", op.name())
    }
    fn infer(&self, op: &Op, _ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        Err(Unknown::refuse(op))
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, _ins: &[Option<T>]) -> Result<Vec<T>> {
        Err(anyhow::anyhow!("unsupported op '{}'", op.name()))
    }
}
