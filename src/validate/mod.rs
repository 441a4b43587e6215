//! Runtimes other than libtorch: ONNX Runtime (ort) and tract. The only place they live.

pub mod accuracy;
pub mod budget;
pub mod compare;
pub mod latency;
pub mod model_file;
pub mod ort_rt;
pub mod tract_rt;

/// A dense f32 tensor as plain data: how results cross between tch, ort and tract.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    pub fn from_tch(t: &tch::Tensor) -> anyhow::Result<Array> {
        let t = t.f_to_device(tch::Device::Cpu)?.f_to_kind(tch::Kind::Float)?.f_contiguous()?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        let data = Vec::<f32>::try_from(&t.f_flatten(0, -1)?)?;
        Ok(Array { shape, data })
    }
    pub fn to_tch(&self) -> anyhow::Result<tch::Tensor> {
        let dims: Vec<i64> = self.shape.iter().map(|&d| d as i64).collect();
        Ok(tch::Tensor::f_from_slice(&self.data)?.f_reshape(&dims)?)
    }
    /// Index of the largest value in each row of a [N, K] array.
    pub fn argmax_rows(&self) -> Vec<usize> {
        let k = *self.shape.last().unwrap_or(&1);
        self.data
            .chunks(k.max(1))
            .map(|r| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0)
            .collect()
    }
}
