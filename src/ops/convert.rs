//! Conversions between IR tensors and tch tensors (plain slices, no ndarray in between).

use anyhow::{bail, Result};
#[cfg(feature = "torch")]
use tch::{Device, Kind};

use crate::ir::{DType, Data, Tensor};

pub fn kind_of(d: DType) -> Kind {
    match d {
        DType::F32 => Kind::Float,
        DType::F64 => Kind::Double,
        DType::I64 => Kind::Int64,
        DType::I32 => Kind::Int,
        DType::U8 => Kind::Uint8,
        DType::I8 => Kind::Int8,
        DType::Bool => Kind::Bool,
    }
}

pub fn dtype_of(k: Kind) -> Result<DType> {
    Ok(match k {
        Kind::Float => DType::F32,
        Kind::Double => DType::F64,
        Kind::Int64 => DType::I64,
        Kind::Int => DType::I32,
        Kind::Uint8 => DType::U8,
        Kind::Int8 => DType::I8,
        Kind::Bool => DType::Bool,
        k => bail!("tensor kind {k:?} has no IR type"),
    })
}

/// IR tensor → tch tensor on `device` (integer tensors always stay on the CPU: they are shapes
/// and indices, read back by the executor).
pub fn to_tch(t: &Tensor, device: Device) -> Result<tch::Tensor> {
    let dims: Vec<i64> = t.dims.iter().map(|&d| d as i64).collect();
    let out = match &t.data {
        Data::F32(v) => tch::Tensor::f_from_slice(v)?.to_device(device),
        Data::F64(v) => tch::Tensor::f_from_slice(v)?.to_device(device),
        Data::I64(v) => tch::Tensor::f_from_slice(v)?.f_to_kind(kind_of(t.dtype))?,
    };
    Ok(out.f_reshape(&dims)?)
}

/// tch tensor → IR tensor (copied to the CPU).
pub fn from_tch(t: &tch::Tensor) -> Result<Tensor> {
    let dtype = dtype_of(t.kind())?;
    let dims: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.f_to_device(Device::Cpu)?.f_contiguous()?.f_flatten(0, -1)?;
    let data = match dtype {
        DType::F32 => Data::F32(Vec::<f32>::try_from(&flat)?),
        DType::F64 => Data::F64(Vec::<f64>::try_from(&flat)?),
        _ => Data::I64(Vec::<i64>::try_from(&flat.f_to_kind(Kind::Int64)?)?),
    };
    Ok(Tensor { dtype, dims, data })
}

/// Reads a small integer tensor (shape, axes, pads) into a Vec.
pub fn ints(t: &tch::Tensor) -> Result<Vec<i64>> {
    let flat = t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?;
    Ok(Vec::<i64>::try_from(&flat)?)
}

/// Reads a scalar as f64.
pub fn scalar(t: &tch::Tensor) -> Result<f64> {
    if t.numel() != 1 {
        bail!("expected a scalar, got shape {:?}", t.size());
    }
    Ok(t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?.f_flatten(0, -1)?.f_double_value(&[0])?)
}

/// Parses "cpu", "cuda", "cuda:N", and checks that the device is there: a CUDA device libtorch
/// cannot see is refused by name here, before anything is built on it.
pub fn parse_device(s: &str) -> Result<Device> {
    let d = match s {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Device::Cuda(n),
            _ => bail!("unknown device '{s}': use cpu, cuda or cuda:N"),
        },
    };
    if let Device::Cuda(i) = d {
        let n = tch::Cuda::device_count().max(0) as usize;
        if i >= n {
            let seen = if n == 0 {
                "libtorch sees no CUDA device on this machine (no GPU, no driver, or a CPU-only libtorch)".to_string()
            } else {
                format!("libtorch sees {n} CUDA device(s): cuda:0 to cuda:{}", n - 1)
            };
            bail!("device '{s}' is not available: {seen}; use --device cpu");
        }
    }
    Ok(d)
}

/// clap's check of a `--device` value: the same as [`parse_device`], at argument parsing, so a
/// missing device ends every command with exit 2 before it reads or builds anything.
pub fn device_arg(s: &str) -> std::result::Result<String, String> {
    parse_device(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}
