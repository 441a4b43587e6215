//! ONNX Runtime through `ort` (load-dynamic: `libonnxruntime.so` from the onnxruntime wheel,
//! found through `ORT_DYLIB_PATH`, which tools/setup.sh writes into its env.sh).

use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use ort::{environment::Environment, session::Session, value::Tensor};

use super::Array;

static ENV: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// The process-wide ORT environment (loads the library on first use).
pub fn environment() -> Result<&'static Environment> {
    ENV.get_or_init(|| {
        let path = std::env::var("ORT_DYLIB_PATH")
            .map_err(|_| "ORT_DYLIB_PATH is not set: run tools/setup.sh and source ~/.cache/dnas/env.sh".to_string())?;
        if !std::path::Path::new(&path).exists() {
            return Err(format!("ORT_DYLIB_PATH points to '{path}', which does not exist"));
        }
        let builder = ort::init_from(&path).map_err(|e| format!("cannot load ONNX Runtime from '{path}': {e}"))?;
        builder.with_name("dnas").build().map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
    })
    .as_ref()
    .map_err(|e| anyhow!("{e}"))
}

/// A loaded ORT session (CPU provider) for a single-input model.
pub struct OrtModel {
    session: Session,
    input: String,
}

impl OrtModel {
    /// Builds a session from ONNX bytes with `threads` intra-op threads (0 = ORT's default).
    pub fn new(bytes: &[u8], threads: usize) -> Result<OrtModel> {
        let env = environment()?;
        let mut b = Session::builder(env).map_err(|e| anyhow!("ORT session builder: {e}"))?;
        if threads > 0 {
            b = b.with_intra_threads(threads).map_err(|e| anyhow!("ORT intra threads: {e}"))?;
        }
        let session = b.commit_from_memory(bytes).map_err(|e| anyhow!("ONNX Runtime refused the model: {e}"))?;
        let input = session.inputs().first().ok_or_else(|| anyhow!("the model has no input"))?.name().to_string();
        Ok(OrtModel { session, input })
    }

    /// Runs the model on one f32 input; returns every output in declaration order.
    pub fn run(&mut self, x: &Array) -> Result<Vec<Array>> {
        let shape: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
        let t = Tensor::from_array((shape, x.data.clone())).context("ORT input tensor")?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => t]).map_err(|e| anyhow!("ONNX Runtime run failed: {e}"))?;
        let mut out = Vec::new();
        for (name, v) in outputs.iter() {
            let (shape, data) = v.try_extract_tensor::<f32>().with_context(|| format!("ORT output '{name}'"))?;
            out.push(Array { shape: shape.iter().map(|&d| d as usize).collect(), data: data.to_vec() });
        }
        Ok(out)
    }
}
