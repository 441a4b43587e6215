//! Runtimes other than libtorch: ONNX Runtime (ort) and tract. The only place they live.

pub mod accuracy;
pub mod budget;
pub mod compare;
pub mod gate;
pub mod latency;
pub mod model_file;
pub mod ort_rt;
pub mod time_pair;
pub mod tract_rt;

/// A dense f32 tensor as plain data: how results cross between tch, ort and tract.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    #[cfg(feature = "torch")]
    pub fn from_tch(t: &tch::Tensor) -> anyhow::Result<Array> {
        let t = t.f_to_device(tch::Device::Cpu)?.f_to_kind(tch::Kind::Float)?.f_contiguous()?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        let data = Vec::<f32>::try_from(&t.f_flatten(0, -1)?)?;
        Ok(Array { shape, data })
    }
    #[cfg(feature = "torch")]
    pub fn to_tch(&self) -> anyhow::Result<tch::Tensor> {
        let dims: Vec<i64> = self.shape.iter().map(|&d| d as i64).collect();
        Ok(tch::Tensor::f_from_slice(&self.data)?.f_reshape(&dims)?)
    }
    /// Length of one row of class scores: everything after the batch axis when at most one of
    /// those axes is longer than 1 (`[N, C]`, Caffe-style `[N, C, 1, 1]`, `[N, 1, C]`), else the
    /// last axis.
    pub fn class_row_len(&self) -> usize {
        let rest = self.shape.get(1..).unwrap_or(&[]);
        if rest.iter().filter(|&&d| d > 1).count() <= 1 {
            rest.iter().product::<usize>().max(1)
        } else {
            *self.shape.last().unwrap_or(&1)
        }
    }

    /// Index of the largest class score of each image (rows of [`Array::class_row_len`]).
    pub fn argmax_rows(&self) -> Vec<usize> {
        let k = self.class_row_len();
        self.data
            .chunks(k.max(1))
            .map(|r| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Array;

    #[test]
    fn top1_is_taken_over_the_class_axis_whatever_trailing_singletons() {
        // Two images, three classes, Caffe-style [N, C, 1, 1]: one row per image, not N·C rows.
        let caffe = Array { shape: vec![2, 3, 1, 1], data: vec![0.1, 0.7, 0.2, 0.9, 0.05, 0.05] };
        assert_eq!(caffe.class_row_len(), 3);
        assert_eq!(caffe.argmax_rows(), vec![1, 0]);
        let flat = Array { shape: vec![2, 3], data: caffe.data.clone() };
        assert_eq!(flat.argmax_rows(), caffe.argmax_rows());
        let middle = Array { shape: vec![2, 1, 3], data: caffe.data.clone() };
        assert_eq!(middle.argmax_rows(), vec![1, 0]);
        // A map output (several axes > 1) keeps the last axis as the class axis.
        let map = Array { shape: vec![1, 2, 3], data: caffe.data.clone() };
        assert_eq!(map.argmax_rows(), vec![1, 0]);
    }
}
