//! tract: the pure-Rust embedded runtime.

use anyhow::{anyhow, Result};
use tract_onnx::prelude::*;

use super::Array;

pub struct TractModel {
    plan: Arc<TypedRunnableModel>,
}

impl TractModel {
    /// Loads ONNX bytes, fixes the input shape and optimises for it. Intermediate `value_info`
    /// and the outputs' declared shapes are dropped first: exporters leave symbolic or stale
    /// dimensions there, which tract would otherwise take as facts beside the concrete input.
    pub fn new(bytes: &[u8], input_shape: &[usize]) -> Result<TractModel> {
        let bytes = without_stale_shapes(bytes)?;
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(&bytes))
            .map_err(|e| anyhow!("tract cannot read the model: {e:#}"))?
            .with_input_fact(0, f32::fact(input_shape).into())
            .map_err(|e| anyhow!("tract input fact: {e:#}"))?;
        let plan = model.into_optimized().and_then(|m| m.into_runnable()).map_err(|e| anyhow!("tract cannot optimise the model: {e:#}"))?;
        Ok(TractModel { plan })
    }

    pub fn run(&self, x: &Array) -> Result<Vec<Array>> {
        let input = tract_onnx::prelude::Tensor::from_shape(&x.shape, &x.data).map_err(|e| anyhow!("tract input: {e:#}"))?;
        let outs = self.plan.run(tvec!(input.into())).map_err(|e| anyhow!("tract run failed: {e:#}"))?;
        outs.iter()
            .map(|t| {
                let view = t.to_plain_array_view::<f32>().map_err(|e| anyhow!("tract output: {e:#}"))?;
                Ok(Array { shape: view.shape().to_vec(), data: view.iter().copied().collect() })
            })
            .collect()
    }
}

/// The model with `graph.value_info` emptied and the outputs' shapes removed (types kept).
pub fn without_stale_shapes(bytes: &[u8]) -> Result<Vec<u8>> {
    use crate::proto::{type_proto, ModelProto};
    use prost::Message;
    let mut m = ModelProto::decode(bytes).map_err(|e| anyhow!("not a valid ONNX protobuf ({e})"))?;
    if let Some(g) = m.graph.as_mut() {
        g.value_info.clear();
        for o in &mut g.output {
            if let Some(type_proto::Value::TensorType(t)) = o.r#type.as_mut().and_then(|t| t.value.as_mut()) {
                t.shape = None;
            }
        }
    }
    Ok(m.encode_to_vec())
}
