//! Constant tensors held by the IR (initializers, `Constant` values, folded shapes).

use anyhow::{bail, Result};

/// Element types dnas understands. ONNX's numbering is kept so the mapping is explicit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DType {
    F32,
    F64,
    I64,
    I32,
    U8,
    I8,
    Bool,
}

impl DType {
    pub fn from_onnx(code: i32) -> Option<DType> {
        Some(match code {
            1 => DType::F32,
            11 => DType::F64,
            7 => DType::I64,
            6 => DType::I32,
            2 => DType::U8,
            3 => DType::I8,
            9 => DType::Bool,
            _ => return None,
        })
    }
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::F64 => 11,
            DType::I64 => 7,
            DType::I32 => 6,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::Bool => 9,
        }
    }
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
    pub fn size_of(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::U8 | DType::I8 | DType::Bool => 1,
        }
    }
}

/// Element storage. Every integer type is widened to i64 and every float to f32/f64, which is
/// lossless for the types above and keeps the arithmetic in one place.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

/// A dense constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dtype: DType,
    pub dims: Vec<usize>,
    pub data: Data,
}

/// JSON form: type and shape, plus the values when there are at most 64 (constants, shapes);
/// weights live in safetensors files, not JSON.
impl serde::Serialize for Tensor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Tensor", 3)?;
        st.serialize_field("dtype", &self.dtype)?;
        st.serialize_field("dims", &self.dims)?;
        if self.numel() <= 64 {
            match &self.data {
                Data::F32(v) => st.serialize_field("values", v)?,
                Data::F64(v) => st.serialize_field("values", v)?,
                Data::I64(v) => st.serialize_field("values", v)?,
            }
        } else {
            st.skip_field("values")?;
        }
        st.end()
    }
}

impl Tensor {
    pub fn f32(dims: Vec<usize>, v: Vec<f32>) -> Tensor {
        debug_assert_eq!(dims.iter().product::<usize>(), v.len());
        Tensor { dtype: DType::F32, dims, data: Data::F32(v) }
    }
    pub fn i64(dims: Vec<usize>, v: Vec<i64>) -> Tensor {
        debug_assert_eq!(dims.iter().product::<usize>(), v.len());
        Tensor { dtype: DType::I64, dims, data: Data::I64(v) }
    }
    /// A tensor of type `dtype` built from integer values (bool/int types).
    pub fn ints(dtype: DType, dims: Vec<usize>, v: Vec<i64>) -> Tensor {
        Tensor { dtype, dims, data: Data::I64(v) }
    }
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }
    /// Integer view (for shapes, axes, indices). Floats are refused.
    pub fn as_i64s(&self) -> Result<Vec<i64>> {
        match &self.data {
            Data::I64(v) => Ok(v.clone()),
            _ => bail!("expected an integer tensor, got {:?}", self.dtype),
        }
    }
    /// Float view (converts every type).
    pub fn to_f32s(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::F64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    /// Scalar value as f64 (tensor of one element).
    pub fn scalar_f64(&self) -> Result<f64> {
        if self.numel() != 1 {
            bail!("expected a scalar, got shape {:?}", self.dims);
        }
        Ok(match &self.data {
            Data::F32(v) => v[0] as f64,
            Data::F64(v) => v[0],
            Data::I64(v) => v[0] as f64,
        })
    }

    /// Little-endian raw bytes in this tensor's ONNX element type (for `raw_data`).
    pub fn to_raw_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.numel() * self.dtype.size_of());
        match (&self.data, self.dtype) {
            (Data::F32(v), _) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            (Data::F64(v), _) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            (Data::I64(v), DType::I64) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            (Data::I64(v), DType::I32) => v.iter().for_each(|&x| out.extend_from_slice(&(x as i32).to_le_bytes())),
            (Data::I64(v), DType::U8 | DType::Bool) => v.iter().for_each(|&x| out.push(x as u8)),
            (Data::I64(v), DType::I8) => v.iter().for_each(|&x| out.push(x as i8 as u8)),
            (Data::I64(_), t) => unreachable!("integer data stored for {t:?}"),
        }
        out
    }

    /// Decodes little-endian raw bytes of ONNX element type `dtype`.
    pub fn from_raw_bytes(dtype: DType, dims: Vec<usize>, raw: &[u8]) -> Result<Tensor> {
        let expected = super::limits::numel(&dims).and_then(|n| n.checked_mul(dtype.size_of()));
        if expected != Some(raw.len()) {
            let expected = expected.map_or("more than fit in memory".to_string(), |e| e.to_string());
            bail!("raw_data has {} bytes, expected {expected} for {:?} of shape {:?}", raw.len(), dtype, dims);
        }
        let data = match dtype {
            DType::F32 => Data::F32(raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
            DType::F64 => Data::F64(raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()),
            DType::I64 => Data::I64(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
            DType::I32 => Data::I64(raw.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64).collect()),
            DType::U8 | DType::Bool => Data::I64(raw.iter().map(|&b| b as i64).collect()),
            DType::I8 => Data::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
        };
        Ok(Tensor { dtype, dims, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_round_trip_every_dtype() {
        let cases = [
            Tensor::f32(vec![2, 2], vec![1.0, -2.5, 3.25, f32::MIN_POSITIVE]),
            Tensor { dtype: DType::F64, dims: vec![2], data: Data::F64(vec![1e300, -0.5]) },
            Tensor::i64(vec![3], vec![i64::MIN, 0, i64::MAX]),
            Tensor::ints(DType::I32, vec![2], vec![-7, 1 << 30]),
            Tensor::ints(DType::U8, vec![2], vec![0, 255]),
            Tensor::ints(DType::I8, vec![2], vec![-128, 127]),
            Tensor::ints(DType::Bool, vec![2], vec![0, 1]),
        ];
        for t in cases {
            let back = Tensor::from_raw_bytes(t.dtype, t.dims.clone(), &t.to_raw_bytes()).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn raw_bytes_of_wrong_length_are_refused() {
        let err = Tensor::from_raw_bytes(DType::F32, vec![3], &[0u8; 8]).unwrap_err();
        assert!(err.to_string().contains("expected 12"), "{err}");
    }
}
