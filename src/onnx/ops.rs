//! Per-op ONNX mapping: attribute parsing (import) and emission (export) side by side, so that
//! one is the exact inverse of the other. Opset differences are absorbed here: the IR keeps one
//! canonical form (see `ir::op`).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, ensure, Result};

use super::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto};
use super::read::tensor_from_proto;
use super::write::tensor_to_proto;
use crate::ir::{AutoPad, ConvAttrs, DType, Op, PadMode, PoolAttrs, Tensor};

/// Attribute access with "unknown attribute" detection.
struct Attrs<'a> {
    list: &'a [AttributeProto],
    used: Vec<&'a str>,
}

impl<'a> Attrs<'a> {
    fn get(&mut self, name: &'a str) -> Option<&'a AttributeProto> {
        self.used.push(name);
        self.list.iter().find(|a| a.name() == name)
    }
    fn int(&mut self, name: &'a str) -> Result<Option<i64>> {
        self.get(name).map(|a| expect(a, AttributeType::Int).map(|_| a.i())).transpose()
    }
    fn float(&mut self, name: &'a str) -> Result<Option<f32>> {
        self.get(name).map(|a| expect(a, AttributeType::Float).map(|_| a.f())).transpose()
    }
    fn ints(&mut self, name: &'a str) -> Result<Option<Vec<i64>>> {
        self.get(name).map(|a| expect(a, AttributeType::Ints).map(|_| a.ints.clone())).transpose()
    }
    fn usizes(&mut self, name: &'a str) -> Result<Vec<usize>> {
        self.ints(name)?
            .unwrap_or_default()
            .into_iter()
            .map(|v| usize::try_from(v).map_err(|_| anyhow!("attribute '{name}' has negative value {v}")))
            .collect()
    }
    fn string(&mut self, name: &'a str) -> Result<Option<String>> {
        self.get(name).map(|a| expect(a, AttributeType::String).map(|_| String::from_utf8_lossy(a.s()).into_owned())).transpose()
    }
    fn tensor(&mut self, name: &'a str) -> Result<Option<Tensor>> {
        self.get(name)
            .map(|a| {
                expect(a, AttributeType::Tensor)?;
                tensor_from_proto(a.t.as_ref().ok_or_else(|| anyhow!("attribute '{name}' has no tensor"))?)
            })
            .transpose()
    }
    /// Errors on any attribute that was never asked for.
    fn finish(&self) -> Result<()> {
        let unknown: Vec<&str> = self.list.iter().map(|a| a.name()).filter(|n| !self.used.contains(n)).collect();
        ensure!(unknown.is_empty(), "unknown attribute(s) {:?}", unknown);
        Ok(())
    }
}

fn expect(a: &AttributeProto, t: AttributeType) -> Result<()> {
    // Old producers leave `type` unset; accept that when the payload field is consistent.
    if a.r#type.is_some() && a.r#type() != t {
        bail!("attribute '{}' has type {:?}, expected {:?}", a.name(), a.r#type(), t);
    }
    Ok(())
}

fn auto_pad(a: &mut Attrs) -> Result<AutoPad> {
    Ok(match a.string("auto_pad")?.as_deref() {
        None | Some("NOTSET") | Some("") => AutoPad::NotSet,
        Some("SAME_UPPER") => AutoPad::SameUpper,
        Some("SAME_LOWER") => AutoPad::SameLower,
        Some("VALID") => AutoPad::Valid,
        Some(v) => bail!("attribute 'auto_pad' has unknown value '{v}'"),
    })
}

/// Parses a node into an IR op. `inputs` may be rewritten to the canonical form; new constant
/// inputs are added to `new_inits` (named after the node).
pub fn parse(node: &NodeProto, opset: i64, inputs: &mut Vec<String>, new_inits: &mut BTreeMap<String, Tensor>) -> Result<Op> {
    let mut a = Attrs { list: &node.attribute, used: vec![] };
    let domain = node.domain();
    if !(domain.is_empty() || domain == "ai.onnx") {
        return Ok(Op::Unknown { op_type: node.op_type().to_string(), domain: domain.to_string() });
    }
    let name = node.name();
    let mut const_input = |suffix: &str, t: Tensor, inputs: &mut Vec<String>, at: usize| {
        let n = format!("{name}.{suffix}");
        new_inits.insert(n.clone(), t);
        while inputs.len() < at {
            inputs.push(String::new());
        }
        inputs.insert(at, n);
    };
    let op = match node.op_type() {
        "Conv" => Op::Conv(ConvAttrs {
            kernel_shape: a.ints("kernel_shape")?.map(|v| v.iter().map(|&x| x as usize).collect()),
            strides: a.usizes("strides")?,
            pads: a.usizes("pads")?,
            dilations: a.usizes("dilations")?,
            group: a.int("group")?.unwrap_or(1).max(1) as usize,
            auto_pad: auto_pad(&mut a)?,
        }),
        "BatchNormalization" => {
            a.float("momentum")?;
            a.int("spatial")?;
            ensure!(a.int("training_mode")?.unwrap_or(0) == 0, "training_mode=1 is not supported (inference only)");
            ensure!(node.output.iter().skip(1).all(|o| o.is_empty()), "training outputs (running mean/var) are not supported");
            Op::BatchNormalization { epsilon: a.float("epsilon")?.unwrap_or(1e-5) }
        }
        "Relu" => Op::Relu,
        "Sigmoid" => Op::Sigmoid,
        "HardSwish" => Op::HardSwish,
        "HardSigmoid" => Op::HardSigmoid { alpha: a.float("alpha")?.unwrap_or(0.2), beta: a.float("beta")?.unwrap_or(0.5) },
        "Clip" => {
            if opset < 11 {
                let lo = a.float("min")?.unwrap_or(f32::MIN);
                let hi = a.float("max")?.unwrap_or(f32::MAX);
                const_input("min", Tensor::f32(vec![], vec![lo]), inputs, 1);
                const_input("max", Tensor::f32(vec![], vec![hi]), inputs, 2);
            }
            Op::Clip
        }
        "Add" => Op::Add,
        "Sub" => Op::Sub,
        "Mul" => Op::Mul,
        "Div" => Op::Div,
        "Gemm" => Op::Gemm {
            alpha: a.float("alpha")?.unwrap_or(1.0),
            beta: a.float("beta")?.unwrap_or(1.0),
            trans_a: a.int("transA")?.unwrap_or(0) != 0,
            trans_b: a.int("transB")?.unwrap_or(0) != 0,
        },
        "MatMul" => Op::MatMul,
        "GlobalAveragePool" => Op::GlobalAveragePool,
        op @ ("AveragePool" | "MaxPool") => {
            let is_max = op == "MaxPool";
            ensure!(node.output.iter().skip(1).all(|o| o.is_empty()), "MaxPool's Indices output is not supported");
            if is_max {
                ensure!(a.int("storage_order")?.unwrap_or(0) == 0, "storage_order=1 is not supported");
            }
            let p = PoolAttrs {
                kernel_shape: a.usizes("kernel_shape")?,
                strides: a.usizes("strides")?,
                pads: a.usizes("pads")?,
                dilations: a.usizes("dilations")?,
                ceil_mode: a.int("ceil_mode")?.unwrap_or(0) != 0,
                count_include_pad: !is_max && a.int("count_include_pad")?.unwrap_or(0) != 0,
                auto_pad: auto_pad(&mut a)?,
            };
            ensure!(!p.kernel_shape.is_empty(), "attribute 'kernel_shape' is required");
            if is_max {
                Op::MaxPool(p)
            } else {
                Op::AveragePool(p)
            }
        }
        "ReduceMean" => {
            let keepdims = a.int("keepdims")?.unwrap_or(1) != 0;
            let mut axes = a.ints("axes")?;
            if opset >= 18 {
                ensure!(a.int("noop_with_empty_axes")?.unwrap_or(0) == 0, "noop_with_empty_axes=1 is not supported");
                if inputs.len() > 1 && !inputs[1].is_empty() {
                    // Resolved by the reader once initializers are known (see read::resolve_reduce_axes).
                    axes = None;
                }
            }
            Op::ReduceMean { axes, keepdims }
        }
        "Flatten" => Op::Flatten { axis: a.int("axis")?.unwrap_or(1) },
        "Reshape" => Op::Reshape { allowzero: a.int("allowzero")?.unwrap_or(0) != 0 },
        op @ ("Squeeze" | "Unsqueeze") => {
            if opset < 13 {
                if let Some(axes) = a.ints("axes")? {
                    const_input("axes", Tensor::i64(vec![axes.len()], axes), inputs, 1);
                }
            }
            if op == "Squeeze" {
                Op::Squeeze
            } else {
                Op::Unsqueeze
            }
        }
        "Concat" => Op::Concat { axis: a.int("axis")?.ok_or_else(|| anyhow!("attribute 'axis' is required"))? },
        "Pad" => {
            let mode = match a.string("mode")?.as_deref() {
                None | Some("constant") => PadMode::Constant,
                Some("reflect") => PadMode::Reflect,
                Some("edge") => PadMode::Edge,
                Some(m) => bail!("pad mode '{m}' is not supported"),
            };
            if opset < 11 {
                let pads = a.ints("pads")?.ok_or_else(|| anyhow!("attribute 'pads' is required"))?;
                let value = a.float("value")?.unwrap_or(0.0);
                const_input("pads", Tensor::i64(vec![pads.len()], pads), inputs, 1);
                const_input("value", Tensor::f32(vec![], vec![value]), inputs, 2);
            }
            ensure!(inputs.len() < 4 || inputs[3].is_empty(), "Pad with an 'axes' input is not supported");
            Op::Pad { mode }
        }
        "Transpose" => Op::Transpose { perm: a.ints("perm")? },
        "Constant" => {
            let value = if let Some(t) = a.tensor("value")? {
                t
            } else if let Some(v) = a.float("value_float")? {
                Tensor::f32(vec![], vec![v])
            } else if let Some(v) = a.int("value_int")? {
                Tensor::i64(vec![], vec![v])
            } else if let Some(v) = a.ints("value_ints")? {
                Tensor::i64(vec![v.len()], v)
            } else if let Some(at) = a.get("value_floats") {
                Tensor::f32(vec![at.floats.len()], at.floats.clone())
            } else {
                bail!("Constant without a supported value attribute (value, value_float(s), value_int(s))")
            };
            Op::Constant { value }
        }
        "ConstantOfShape" => Op::ConstantOfShape { value: a.tensor("value")? },
        "Shape" => Op::Shape { start: a.int("start")?.unwrap_or(0), end: a.int("end")? },
        "Gather" => Op::Gather { axis: a.int("axis")?.unwrap_or(0) },
        "Identity" => Op::Identity,
        "Dropout" => {
            a.float("ratio")?;
            a.int("seed")?;
            a.int("is_test")?;
            ensure!(node.output.iter().skip(1).all(|o| o.is_empty()), "Dropout's mask output is not supported");
            Op::Dropout
        }
        "Softmax" => Op::Softmax { axis: a.int("axis")?.unwrap_or(if opset < 13 { 1 } else { -1 }), legacy: opset < 13 },
        "Cast" => {
            let to = a.int("to")?.ok_or_else(|| anyhow!("attribute 'to' is required"))?;
            a.int("saturate")?;
            Op::Cast { to: DType::from_onnx(to as i32).ok_or_else(|| anyhow!("Cast to unsupported element type {to}"))? }
        }
        "Slice" => {
            ensure!(opset >= 10, "Slice before opset 10 is not supported");
            Op::Slice
        }
        other => return Ok(Op::Unknown { op_type: other.to_string(), domain: domain.to_string() }),
    };
    a.finish()?;
    Ok(op)
}

fn attr(name: &str, t: AttributeType) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(t as i32), ..Default::default() }
}
fn a_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: Some(v), ..attr(name, AttributeType::Int) }
}
fn a_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { f: Some(v), ..attr(name, AttributeType::Float) }
}
fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { ints: v.to_vec(), ..attr(name, AttributeType::Ints) }
}
fn a_usizes(name: &str, v: &[usize]) -> AttributeProto {
    a_ints(name, &v.iter().map(|&x| x as i64).collect::<Vec<_>>())
}
fn a_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto { s: Some(v.as_bytes().to_vec()), ..attr(name, AttributeType::String) }
}
fn a_tensor(name: &str, t: &Tensor) -> AttributeProto {
    AttributeProto { t: Some(tensor_to_proto("", t)), ..attr(name, AttributeType::Tensor) }
}

/// strides, and either explicit pads or auto_pad (never both), shared by Conv and the pools.
fn emit_window(out: &mut Vec<AttributeProto>, strides: &[usize], pads: &[usize], auto_pad: AutoPad) {
    if !strides.is_empty() {
        out.push(a_usizes("strides", strides));
    }
    if auto_pad != AutoPad::NotSet {
        out.push(a_str("auto_pad", auto_pad.onnx_name()));
    } else if !pads.is_empty() {
        out.push(a_usizes("pads", pads));
    }
}

/// Emits the attributes of `op` for `opset`. `consts` gives constant inputs that older opsets
/// take as attributes; returns the attributes and the (possibly shortened) input list.
pub fn emit(op: &Op, opset: i64, inputs: &[String], consts: &dyn Fn(&str) -> Option<Tensor>) -> Result<(Vec<AttributeProto>, Vec<String>)> {
    let mut ins = inputs.to_vec();
    let mut out = Vec::new();
    let need = |min: i64| -> Result<()> {
        ensure!(opset >= min, "op {} needs opset ≥ {min}, writing opset {opset}", op.name());
        Ok(())
    };
    let const_ints = |k: usize| -> Result<Vec<i64>> {
        let name = inputs.get(k).filter(|n| !n.is_empty()).ok_or_else(|| anyhow!("missing input #{k}"))?;
        consts(name).ok_or_else(|| anyhow!("input '{name}' must be constant to be written as an attribute for opset {opset}"))?.as_i64s()
    };
    match op {
        Op::Conv(c) => {
            if let Some(k) = &c.kernel_shape {
                out.push(a_usizes("kernel_shape", k));
            }
            emit_window(&mut out, &c.strides, &c.pads, c.auto_pad);
            if !c.dilations.is_empty() {
                out.push(a_usizes("dilations", &c.dilations));
            }
            out.push(a_int("group", c.group.max(1) as i64));
        }
        Op::BatchNormalization { epsilon } => out.push(a_float("epsilon", *epsilon)),
        Op::Relu
        | Op::Sigmoid
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::MatMul
        | Op::GlobalAveragePool
        | Op::Identity
        | Op::Dropout => {}
        Op::HardSwish => need(14)?,
        Op::HardSigmoid { alpha, beta } => {
            out.push(a_float("alpha", *alpha));
            out.push(a_float("beta", *beta));
        }
        Op::Clip => {
            if opset < 11 {
                let scalar = |k: usize| -> Result<Option<f32>> {
                    match inputs.get(k).filter(|n| !n.is_empty()) {
                        None => Ok(None),
                        Some(n) => {
                            Ok(Some(consts(n).ok_or_else(|| anyhow!("Clip bound '{n}' must be constant for opset {opset}"))?.scalar_f64()?
                                as f32))
                        }
                    }
                };
                if let Some(v) = scalar(1)? {
                    out.push(a_float("min", v));
                }
                if let Some(v) = scalar(2)? {
                    out.push(a_float("max", v));
                }
                ins.truncate(1);
            }
        }
        Op::Gemm { alpha, beta, trans_a, trans_b } => {
            out.push(a_float("alpha", *alpha));
            out.push(a_float("beta", *beta));
            if *trans_a {
                out.push(a_int("transA", 1));
            }
            if *trans_b {
                out.push(a_int("transB", 1));
            }
        }
        Op::AveragePool(p) | Op::MaxPool(p) => {
            out.push(a_usizes("kernel_shape", &p.kernel_shape));
            emit_window(&mut out, &p.strides, &p.pads, p.auto_pad);
            if p.ceil_mode {
                out.push(a_int("ceil_mode", 1));
            }
            if matches!(op, Op::MaxPool(_)) {
                if !p.dilations.is_empty() {
                    out.push(a_usizes("dilations", &p.dilations));
                }
            } else {
                ensure!(p.dilations.iter().all(|&d| d == 1) || opset >= 19, "AveragePool dilations need opset ≥ 19");
                out.push(a_int("count_include_pad", p.count_include_pad as i64));
            }
        }
        Op::ReduceMean { axes, keepdims } => {
            out.push(a_int("keepdims", *keepdims as i64));
            ins.truncate(1);
            if let Some(axes) = axes {
                ensure!(opset < 18, "ReduceMean with axes for opset ≥ 18 needs an axes input; write opset ≤ 17");
                out.push(a_ints("axes", axes));
            }
        }
        Op::Flatten { axis } => out.push(a_int("axis", *axis)),
        Op::Reshape { allowzero } => {
            if *allowzero {
                need(14)?;
                out.push(a_int("allowzero", 1));
            }
        }
        Op::Squeeze | Op::Unsqueeze => {
            if opset < 13 {
                if inputs.len() > 1 && !inputs[1].is_empty() {
                    out.push(a_ints("axes", &const_ints(1)?));
                }
                ins.truncate(1);
            }
        }
        Op::Concat { axis } => out.push(a_int("axis", *axis)),
        Op::Pad { mode } => {
            out.push(a_str("mode", mode.onnx_name()));
            if opset < 11 {
                out.push(a_ints("pads", &const_ints(1)?));
                if inputs.len() > 2 && !inputs[2].is_empty() {
                    let v = consts(&inputs[2]).ok_or_else(|| anyhow!("Pad value must be constant for opset {opset}"))?;
                    out.push(a_float("value", v.scalar_f64()? as f32));
                }
                ins.truncate(1);
            }
        }
        Op::Transpose { perm } => {
            if let Some(p) = perm {
                out.push(a_ints("perm", p));
            }
        }
        Op::Constant { value } => out.push(a_tensor("value", value)),
        Op::ConstantOfShape { value } => {
            if let Some(v) = value {
                out.push(a_tensor("value", v));
            }
        }
        Op::Shape { start, end } => {
            if *start != 0 || end.is_some() {
                need(15)?;
                out.push(a_int("start", *start));
                if let Some(e) = end {
                    out.push(a_int("end", *e));
                }
            }
        }
        Op::Gather { axis } => out.push(a_int("axis", *axis)),
        Op::Softmax { axis, legacy } => {
            ensure!(
                !*legacy || opset < 13 || *axis == -1,
                "legacy (opset < 13) Softmax on axis {axis} cannot be written for opset {opset}"
            );
            out.push(a_int("axis", *axis));
        }
        Op::Cast { to } => out.push(a_int("to", to.onnx_code() as i64)),
        Op::Slice => need(10)?,
        Op::Unknown { op_type, .. } => bail!("op '{op_type}' is not supported by the writer"),
    }
    Ok((out, ins))
}
