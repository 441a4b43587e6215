//! Resize (opsets 10–21) and Upsample (7–9, read as Resize) on the spatial axes of [N, C, H, W],
//! with the modes libtorch computes identically: nearest with `asymmetric` coordinates and
//! `floor` rounding (PyTorch's `nearest`, what exporters write for it), and linear with
//! `half_pixel` / `pytorch_half_pixel` (`align_corners=False`) or `align_corners`. Any other
//! mode is refused by name at import. The canonical inputs are the opset-13 ones:
//! X, roi (unused), scales, sizes.

use anyhow::{anyhow, bail, ensure, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{a_str, EmitCx, ParseCx};
use super::shapes::req;
#[cfg(feature = "torch")]
use super::torch::{dims, one, opt};
use super::{not_mine, Family};
use crate::ir::{Fact, Op, Tensor};

pub struct Resize;

/// Output [H, W] from `scales` (4 entries, N and C 1) or `sizes` (4 entries).
fn output_hw(x: &[usize], scales: Option<Vec<f64>>, sizes: Option<Vec<i64>>) -> Result<([usize; 2], Option<[f64; 2]>)> {
    ensure!(x.len() == 4, "Resize is supported on [N, C, H, W] inputs, got {:?}", x);
    if let Some(s) = sizes.filter(|s| !s.is_empty()) {
        ensure!(s.len() == 4 && s[0] as usize == x[0] && s[1] as usize == x[1], "sizes {s:?} must keep N and C of {x:?}");
        ensure!(s[2] > 0 && s[3] > 0, "sizes {s:?} must be positive");
        return Ok(([s[2] as usize, s[3] as usize], None));
    }
    let s = scales.filter(|s| !s.is_empty()).ok_or_else(|| anyhow!("Resize needs scales or sizes"))?;
    ensure!(s.len() == 4 && s[0] == 1.0 && s[1] == 1.0, "scales {s:?} must be [1, 1, sh, sw]");
    ensure!(s[2] > 0.0 && s[3] > 0.0, "scales {s:?} must be positive");
    Ok(([(x[2] as f64 * s[2]).floor() as usize, (x[3] as f64 * s[3]).floor() as usize], Some([s[2], s[3]])))
}

fn floats(t: &Tensor) -> Result<Vec<f64>> {
    match &t.data {
        crate::ir::Data::F32(v) => Ok(v.iter().map(|&x| x as f64).collect()),
        crate::ir::Data::F64(v) => Ok(v.clone()),
        crate::ir::Data::I64(_) => bail!("scales must be floats"),
    }
}

impl Family for Resize {
    fn name(&self) -> &'static str {
        "resize"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Resize", "Upsample"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        let mode = a.string("mode")?.unwrap_or_else(|| "nearest".into());
        let linear = match mode.as_str() {
            "nearest" => false,
            "linear" | "bilinear" => true,
            m => bail!("{op_type} mode '{m}' is not supported (nearest, linear)"),
        };
        if op_type == "Upsample" {
            ensure!(!linear, "Upsample mode 'linear' (asymmetric linear) has no libtorch kernel of the same meaning");
            if a.opset < 9 {
                let s = a.get("scales").map(|at| at.floats.clone()).ok_or_else(|| anyhow!("attribute 'scales' is required"))?;
                a.const_input("scales", Tensor::f32(vec![s.len()], s), 1);
            }
            // X, scales → X, roi, scales.
            a.inputs.insert(1, String::new());
            return Ok(Op::Resize { linear: false, coordinates: "asymmetric".into() });
        }
        if a.opset < 11 {
            // X, scales → X, roi, scales.
            a.inputs.insert(1, String::new());
        }
        let coordinates = if a.opset < 11 {
            "asymmetric".to_string()
        } else {
            a.string("coordinate_transformation_mode")?.unwrap_or_else(|| "half_pixel".into())
        };
        let nearest_mode = a.string("nearest_mode")?.unwrap_or_else(|| "round_prefer_floor".into());
        a.float("cubic_coeff_a")?;
        ensure!(a.int("exclude_outside")?.unwrap_or(0) == 0, "exclude_outside=1 is not supported");
        a.float("extrapolation_value")?;
        ensure!(a.string("keep_aspect_ratio_policy")?.is_none_or(|p| p == "stretch"), "keep_aspect_ratio_policy is not supported");
        ensure!(a.ints("axes")?.is_none(), "Resize with 'axes' is not supported");
        match (linear, coordinates.as_str()) {
            (false, "asymmetric") if a.opset < 11 || nearest_mode == "floor" => {}
            (false, c) => {
                bail!("nearest Resize with coordinates '{c}' and nearest_mode '{nearest_mode}' is not supported (asymmetric + floor)")
            }
            (true, "half_pixel" | "pytorch_half_pixel" | "align_corners") => {}
            (true, c) => bail!("linear Resize with coordinates '{c}' is not supported (half_pixel, pytorch_half_pixel, align_corners)"),
        }
        Ok(Op::Resize { linear, coordinates })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        let Op::Resize { linear, coordinates } = op else { return Err(not_mine(self, op)) };
        cx.push(a_str("mode", if *linear { "linear" } else { "nearest" }));
        if cx.opset < 11 {
            ensure!(!*linear && coordinates == "asymmetric", "Resize ({coordinates}) needs opset ≥ 11");
            ensure!(cx.inputs.get(3).is_none_or(|s| s.is_empty()), "Resize with sizes needs opset ≥ 11");
            cx.need(10)?;
            // X, roi, scales → X, scales.
            cx.ins = vec![cx.inputs[0].clone(), cx.inputs.get(2).cloned().unwrap_or_default()];
        } else {
            cx.push(a_str("coordinate_transformation_mode", coordinates));
            if !*linear {
                cx.push(a_str("nearest_mode", "floor"));
            }
        }
        Ok(())
    }
    fn infer(&self, _op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        let value = |k: usize| ins.get(k).copied().flatten().map(|f| f.value.clone().ok_or_else(|| anyhow!("input #{k} must be constant")));
        let scales = value(2).transpose()?.map(|t| floats(&t)).transpose()?;
        let sizes = value(3).transpose()?.map(|t| t.as_i64s()).transpose()?;
        let (hw, _) = output_hw(&f.shape, scales, sizes)?;
        Ok(vec![Fact::new(f.dtype, vec![f.shape[0], f.shape[1], hw[0], hw[1]])])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let Op::Resize { linear, coordinates } = op else { return Err(not_mine(self, op)) };
        let x = super::torch::req(ins, 0)?;
        let read = |k: usize| -> Result<Option<crate::ir::Tensor>> { opt(ins, k).map(super::convert::from_tch).transpose() };
        let scales = read(2)?.map(|t| floats(&t)).transpose()?;
        let sizes = read(3)?.map(|t| t.as_i64s()).transpose()?;
        let (hw, s) = output_hw(&dims(x), scales, sizes)?;
        let size = [hw[0] as i64, hw[1] as i64];
        let (sh, sw) = (s.map(|s| s[0]), s.map(|s| s[1]));
        one(if *linear {
            x.f_upsample_bilinear2d(size, coordinates == "align_corners", sh, sw)?
        } else {
            x.f_upsample_nearest2d(size, sh, sw)?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, runtimes_agree_with, shapes_agree, Input};
    use crate::ir::{Op, Tensor};

    #[test]
    fn upsample_reads_as_a_nearest_asymmetric_resize_and_linear_upsample_is_refused() {
        use crate::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto};
        let scales = AttributeProto {
            name: Some("scales".into()),
            r#type: Some(AttributeType::Floats as i32),
            floats: vec![1.0, 1.0, 2.0, 2.0],
            ..Default::default()
        };
        let mode = |m: &str| AttributeProto {
            name: Some("mode".into()),
            r#type: Some(AttributeType::String as i32),
            s: Some(m.as_bytes().to_vec()),
            ..Default::default()
        };
        let node = |attrs: Vec<AttributeProto>| NodeProto {
            input: vec!["x".into()],
            output: vec!["y".into()],
            name: Some("up".into()),
            op_type: Some("Upsample".into()),
            attribute: attrs,
            ..Default::default()
        };
        let (mut inputs, mut inits) = (vec!["x".to_string()], std::collections::BTreeMap::new());
        let op = super::super::parse(&node(vec![scales.clone(), mode("nearest")]), 7, &mut inputs, &mut inits).unwrap();
        assert_eq!(op, Op::Resize { linear: false, coordinates: "asymmetric".into() });
        assert_eq!(inputs, ["x", "", "up.scales"]);
        assert_eq!(inits["up.scales"], Tensor::f32(vec![4], vec![1.0, 1.0, 2.0, 2.0]));
        let (mut inputs, mut inits) = (vec!["x".to_string()], std::collections::BTreeMap::new());
        let err = super::super::parse(&node(vec![scales, mode("linear")]), 7, &mut inputs, &mut inits).unwrap_err();
        assert!(err.to_string().contains("asymmetric linear"), "{err}");
    }

    #[test]
    fn resize_agrees_with_ort_and_tract_in_the_modes_it_reads() {
        let scales = Tensor::f32(vec![4], vec![1.0, 1.0, 2.0, 1.5]);
        let sizes = Tensor::i64(vec![4], vec![2, 3, 7, 5]);
        let cases = [
            (Op::Resize { linear: false, coordinates: "asymmetric".into() }, 10),
            (Op::Resize { linear: true, coordinates: "half_pixel".into() }, 11),
            (Op::Resize { linear: true, coordinates: "pytorch_half_pixel".into() }, 11),
            (Op::Resize { linear: true, coordinates: "align_corners".into() }, 11),
        ];
        for (op, min) in cases {
            for opset in [min, 13, 17, 19] {
                roundtrip(&op, &["x", "", "sc"], &[("sc", scales.clone())], opset);
            }
            shapes_agree(&op, &[data(&[2, 3, 4, 6]), None, Some(Input::Const(scales.clone()))]);
            shapes_agree(&op, &[data(&[2, 3, 4, 6]), None, None, Some(Input::Const(sizes.clone()))]);
            for opset in [13, min] {
                let label = format!("{op:?} at opset {opset}");
                // tract 0.23 reads an opset-10 Resize differently from ONNX Runtime (max rel 1.8
                // measured on this case); tch and ORT agree there, and tract agrees from 11 on.
                runtimes_agree_with(&label, &op, &[("", None), ("sc", Some(scales.clone()))], &[2, 3, 4, 6], opset, opset >= 11);
            }
            let label = format!("{op:?} with sizes");
            runtimes_agree_with(&label, &op, &[("", None), ("", None), ("sz", Some(sizes.clone()))], &[2, 3, 4, 6], 13, true);
        }
    }
}
