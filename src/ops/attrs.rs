//! ONNX attributes in and out: [`ParseCx`] reads a node's attributes (refusing any that no
//! family asked for) and canonicalises inputs; [`EmitCx`] writes them back for a target opset.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, ensure, Result};

use crate::ir::{AutoPad, Op, Tensor};
use crate::proto::tensor::{tensor_from_proto, tensor_to_proto};
use crate::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto};

/// One node being parsed: its attributes (with "unknown attribute" detection), the model's
/// opset, and its inputs, which a family may rewrite to the canonical form.
pub struct ParseCx<'a> {
    pub node: &'a NodeProto,
    pub opset: i64,
    pub inputs: &'a mut Vec<String>,
    new_inits: &'a mut BTreeMap<String, Tensor>,
    used: Vec<&'a str>,
}

impl<'a> ParseCx<'a> {
    pub fn new(node: &'a NodeProto, opset: i64, inputs: &'a mut Vec<String>, new_inits: &'a mut BTreeMap<String, Tensor>) -> ParseCx<'a> {
        ParseCx { node, opset, inputs, new_inits, used: vec![] }
    }

    pub fn get(&mut self, name: &'a str) -> Option<&'a AttributeProto> {
        self.used.push(name);
        self.node.attribute.iter().find(|a| a.name() == name)
    }
    pub fn int(&mut self, name: &'a str) -> Result<Option<i64>> {
        self.get(name).map(|a| expect(a, AttributeType::Int).map(|_| a.i())).transpose()
    }
    pub fn float(&mut self, name: &'a str) -> Result<Option<f32>> {
        self.get(name).map(|a| expect(a, AttributeType::Float).map(|_| a.f())).transpose()
    }
    pub fn ints(&mut self, name: &'a str) -> Result<Option<Vec<i64>>> {
        self.get(name).map(|a| expect(a, AttributeType::Ints).map(|_| a.ints.clone())).transpose()
    }
    pub fn usizes(&mut self, name: &'a str) -> Result<Vec<usize>> {
        self.ints(name)?
            .unwrap_or_default()
            .into_iter()
            .map(|v| usize::try_from(v).map_err(|_| anyhow!("attribute '{name}' has negative value {v}")))
            .collect()
    }
    /// A non-negative ints attribute, `None` when absent.
    pub fn opt_usizes(&mut self, name: &'a str) -> Result<Option<Vec<usize>>> {
        Ok(if self.node.attribute.iter().any(|a| a.name() == name) { Some(self.usizes(name)?) } else { None })
    }
    pub fn string(&mut self, name: &'a str) -> Result<Option<String>> {
        self.get(name).map(|a| expect(a, AttributeType::String).map(|_| String::from_utf8_lossy(a.s()).into_owned())).transpose()
    }
    pub fn tensor(&mut self, name: &'a str) -> Result<Option<Tensor>> {
        self.get(name)
            .map(|a| {
                expect(a, AttributeType::Tensor)?;
                tensor_from_proto(a.t.as_ref().ok_or_else(|| anyhow!("attribute '{name}' has no tensor"))?)
            })
            .transpose()
    }
    pub fn auto_pad(&mut self) -> Result<AutoPad> {
        Ok(match self.string("auto_pad")?.as_deref() {
            None | Some("NOTSET") | Some("") => AutoPad::NotSet,
            Some("SAME_UPPER") => AutoPad::SameUpper,
            Some("SAME_LOWER") => AutoPad::SameLower,
            Some("VALID") => AutoPad::Valid,
            Some(v) => bail!("attribute 'auto_pad' has unknown value '{v}'"),
        })
    }
    /// Whether every output after the first is unused (empty name).
    pub fn only_first_output(&self) -> bool {
        self.node.output.iter().skip(1).all(|o| o.is_empty())
    }
    /// Turns an attribute of an older opset into constant input #`at` (named `<node>.<suffix>`).
    pub fn const_input(&mut self, suffix: &str, t: Tensor, at: usize) {
        let n = format!("{}.{suffix}", self.node.name());
        self.new_inits.insert(n.clone(), t);
        while self.inputs.len() < at {
            self.inputs.push(String::new());
        }
        self.inputs.insert(at, n);
    }
    /// Errors on any attribute that was never asked for.
    pub fn finish(&self) -> Result<()> {
        let unknown: Vec<&str> = self.node.attribute.iter().map(|a| a.name()).filter(|n| !self.used.contains(n)).collect();
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

/// One op being written: the target opset, its inputs (`ins`, which a family may shorten), the
/// constants older opsets take as attributes, and the attributes written (`out`).
pub struct EmitCx<'a> {
    op: &'a Op,
    pub opset: i64,
    pub inputs: &'a [String],
    pub consts: &'a dyn Fn(&str) -> Option<Tensor>,
    pub out: Vec<AttributeProto>,
    pub ins: Vec<String>,
}

impl<'a> EmitCx<'a> {
    pub fn new(op: &'a Op, opset: i64, inputs: &'a [String], consts: &'a dyn Fn(&str) -> Option<Tensor>) -> EmitCx<'a> {
        EmitCx { op, opset, inputs, consts, out: Vec::new(), ins: inputs.to_vec() }
    }
    /// Refuses a target opset older than `min`.
    pub fn need(&self, min: i64) -> Result<()> {
        ensure!(self.opset >= min, "op {} needs opset ≥ {min}, writing opset {}", self.op.name(), self.opset);
        Ok(())
    }
    /// Constant input #`k` as integers (to be written as an attribute).
    pub fn const_ints(&self, k: usize) -> Result<Vec<i64>> {
        let name = self.inputs.get(k).filter(|n| !n.is_empty()).ok_or_else(|| anyhow!("missing input #{k}"))?;
        (self.consts)(name)
            .ok_or_else(|| anyhow!("input '{name}' must be constant to be written as an attribute for opset {}", self.opset))?
            .as_i64s()
    }
    pub fn push(&mut self, a: AttributeProto) {
        self.out.push(a);
    }
}

fn attr(name: &str, t: AttributeType) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(t as i32), ..Default::default() }
}
pub fn a_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: Some(v), ..attr(name, AttributeType::Int) }
}
pub fn a_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { f: Some(v), ..attr(name, AttributeType::Float) }
}
pub fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { ints: v.to_vec(), ..attr(name, AttributeType::Ints) }
}
pub fn a_usizes(name: &str, v: &[usize]) -> AttributeProto {
    a_ints(name, &v.iter().map(|&x| x as i64).collect::<Vec<_>>())
}
pub fn a_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto { s: Some(v.as_bytes().to_vec()), ..attr(name, AttributeType::String) }
}
pub fn a_tensor(name: &str, t: &Tensor) -> AttributeProto {
    AttributeProto { t: Some(tensor_to_proto("", t)), ..attr(name, AttributeType::Tensor) }
}

/// strides, and either explicit pads or auto_pad (never both), shared by Conv and the pools.
pub fn emit_window(cx: &mut EmitCx, strides: &[usize], pads: &[usize], auto_pad: AutoPad) {
    if !strides.is_empty() {
        cx.push(a_usizes("strides", strides));
    }
    if auto_pad != AutoPad::NotSet {
        cx.push(a_str("auto_pad", auto_pad.onnx_name()));
    } else if !pads.is_empty() {
        cx.push(a_usizes("pads", pads));
    }
}
