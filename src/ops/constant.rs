//! Constant (value, value_float(s), value_int(s)) and ConstantOfShape.

use anyhow::{anyhow, bail, ensure, Result};
use tch::{Kind, Tensor as T};

use super::attrs::{a_tensor, EmitCx, ParseCx};
use super::shapes::const_ints;
use super::torch::{ints, kind_of, one, to_tch};
use super::{not_mine, Family};
use crate::ir::{Data, Fact, Op, Tensor};

pub struct Constant;

impl Family for Constant {
    fn name(&self) -> &'static str {
        "constant"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Constant", "ConstantOfShape"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        if op_type == "ConstantOfShape" {
            return Ok(Op::ConstantOfShape { value: a.tensor("value")? });
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
            Op::ConstantOfShape { value } => {
                let dims = const_ints(ins, 0, "input")?.ok_or_else(|| anyhow!("missing shape input"))?;
                ensure!(dims.iter().all(|&d| d >= 0), "negative dimension in {:?}", dims);
                let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
                let fill = value.clone().unwrap_or_else(|| Tensor::f32(vec![1], vec![0.0]));
                let n: usize = dims.iter().product();
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
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        match op {
            Op::Constant { value } => one(to_tch(value, tch::Device::Cpu)?),
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
    }
}
