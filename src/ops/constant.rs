//! Generators: Constant (value, value_float(s), value_int(s)), ConstantOfShape, Range.

use anyhow::{anyhow, bail, ensure, Result};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor as T};

use super::attrs::{a_tensor, EmitCx, ParseCx};
use super::shapes::const_ints;
#[cfg(feature = "torch")]
use super::torch::{ints, kind_of, one, to_tch};
use super::{not_mine, Family};
use crate::ir::{Data, Fact, Op, Tensor};

pub struct Constant;

impl Family for Constant {
    fn name(&self) -> &'static str {
        "constant"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Constant", "ConstantOfShape", "Range"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        if op_type == "Range" {
            return Ok(Op::Range);
        }
        if op_type == "ConstantOfShape" {
            let value = a.tensor("value")?;
            if let Some(v) = &value {
                ensure!(v.numel() == 1, "attribute 'value' must hold one element, holds {} (shape {:?})", v.numel(), v.dims);
            }
            return Ok(Op::ConstantOfShape { value });
        }
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
        Ok(Op::Constant { value })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::Constant { value } => cx.push(a_tensor("value", value)),
            Op::Range => cx.need(11)?,
            Op::ConstantOfShape { value } => {
                if let Some(v) = value {
                    cx.push(a_tensor("value", v));
                }
            }
            _ => return Err(not_mine(self, op)),
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        match op {
            Op::Constant { value } => Ok(vec![Fact::konst(value.clone())]),
            Op::Range => {
                // The length needs the values: constant (or folded) inputs only.
                let scalar = |k: usize, what: &str| -> Result<f64> {
                    let f = ins.get(k).copied().flatten().ok_or_else(|| anyhow!("missing input '{what}'"))?;
                    let v =
                        f.value.as_ref().ok_or_else(|| anyhow!("input '{what}' must be constant (or computable from shapes) for dnas"))?;
                    ensure!(v.numel() == 1, "input '{what}' must be a scalar, has shape {:?}", v.dims);
                    v.scalar_f64()
                };
                let (start, limit, delta) = (scalar(0, "start")?, scalar(1, "limit")?, scalar(2, "delta")?);
                ensure!(delta != 0.0, "Range delta must not be 0");
                let n = ((limit - start) / delta).ceil().max(0.0) as usize;
                Ok(vec![Fact::new(ins[0].map_or(crate::ir::DType::F32, |f| f.dtype), vec![n])])
            }
            Op::ConstantOfShape { value } => {
                let dims = const_ints(ins, 0, "input")?.ok_or_else(|| anyhow!("missing shape input"))?;
                ensure!(dims.iter().all(|&d| d >= 0), "negative dimension in {:?}", dims);
                let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
                let fill = value.clone().unwrap_or_else(|| Tensor::f32(vec![1], vec![0.0]));
                let n = crate::ir::limits::check_size("the output", &dims, fill.dtype.size_of())?;
                if n > super::infer::FOLD_LIMIT {
                    // An activation-sized constant: its value is made when the graph runs.
                    return Ok(vec![Fact::new(fill.dtype, dims)]);
                }
                let data = match &fill.data {
                    Data::F32(v) => Data::F32(vec![v[0]; n]),
                    Data::F64(v) => Data::F64(vec![v[0]; n]),
                    Data::I64(v) => Data::I64(vec![v[0]; n]),
                };
                Ok(vec![Fact::konst(Tensor { dtype: fill.dtype, dims, data })])
            }
            _ => Err(not_mine(self, op)),
        }
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        match op {
            Op::Constant { value } => one(to_tch(value, tch::Device::Cpu)?),
            Op::Range => {
                let start = super::torch::req(ins, 0)?;
                let (s, l, d) = (
                    super::torch::scalar(start)?,
                    super::torch::scalar(super::torch::req(ins, 1)?)?,
                    super::torch::scalar(super::torch::req(ins, 2)?)?,
                );
                ensure!(d != 0.0, "Range delta must not be 0");
                let n = ((l - s) / d).ceil().max(0.0) as i64;
                // start + i·delta for i < n (ONNX's definition; arange's end rounding differs).
                let i = T::f_arange(n, (tch::Kind::Double, tch::Device::Cpu))?;
                one(i.f_mul_scalar(d)?.f_add_scalar(s)?.f_to_kind(start.kind())?)
            }
            Op::ConstantOfShape { value } => {
                let shape = ints(super::torch::req(ins, 0)?)?;
                let (v, kind) = match value {
                    Some(t) => (t.scalar_f64()?, kind_of(t.dtype)),
                    None => (0.0, Kind::Float),
                };
                one(T::f_full(shape.as_slice(), v, (kind, tch::Device::Cpu))?)
            }
            _ => Err(not_mine(self, op)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{ints, roundtrip, shapes_agree};
    use crate::ir::{Op, Tensor};

    #[test]
    fn constants_round_trip_and_fold_to_what_runs() {
        let c = Op::Constant { value: Tensor::f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]) };
        let cos = Op::ConstantOfShape { value: Some(Tensor::i64(vec![1], vec![7])) };
        for opset in [9, 13, 17] {
            roundtrip(&c, &[], &[], opset);
            roundtrip(&cos, &["s"], &[], opset);
        }
        shapes_agree(&c, &[]);
        shapes_agree(&cos, &[ints(&[2, 3])]);
        shapes_agree(&Op::ConstantOfShape { value: None }, &[ints(&[4])]);
        // Range folds to its values: 1.0, 1.75, 2.5 (limit 3 excluded), and an empty range.
        let f = |v: f32| Some(super::super::conformance::Input::Const(Tensor::f32(vec![], vec![v])));
        shapes_agree(&Op::Range, &[f(1.0), f(3.0), f(0.75)]);
        shapes_agree(&Op::Range, &[f(3.0), f(1.0), f(0.5)]);
        shapes_agree(&Op::Range, &[ints(&[10]), ints(&[0]), ints(&[-3])]);
        for opset in [11, 13, 17] {
            roundtrip(&Op::Range, &["a", "b", "c"], &[], opset);
        }
        // Through the runtimes: y = float(Range(0, Shape(x)[1], 2)) + ReduceMean(x).
        use crate::ir::{DType, Node};
        let mut g = super::super::conformance::single_node(&Op::ReduceMean { axes: None, keepdims: false }, &[], &[2, 7], 13);
        g.nodes[0].outputs = vec!["m".into()];
        for (name, v) in [("zero", 0), ("two", 2), ("one", 1)] {
            g.initializers.insert(name.into(), Tensor::i64(vec![], vec![v]));
        }
        let node = |name: &str, op: Op, ins: &[&str]| Node {
            name: name.into(),
            op,
            inputs: ins.iter().map(|s| s.to_string()).collect(),
            outputs: vec![name.into()],
        };
        g.nodes.push(node("shape", Op::Shape { start: 0, end: None }, &["x"]));
        g.nodes.push(node("c", Op::Gather { axis: 0 }, &["shape", "one"]));
        g.nodes.push(node("r", Op::Range, &["zero", "c", "two"]));
        g.nodes.push(node("rf", Op::Cast { to: DType::F32 }, &["r"]));
        g.nodes.push(Node { name: "add".into(), op: Op::Add, inputs: vec!["rf".into(), "m".into()], outputs: vec!["y".into()] });
        super::super::conformance::graph_runtimes_agree("Range", g, &[2, 7], false, true);
    }
}
