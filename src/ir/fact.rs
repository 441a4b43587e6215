//! What shape inference knows about one value ([`Fact`]), and the fixed input shapes it starts
//! from. The pass itself is `ops::infer`.

use std::collections::HashMap;

use anyhow::{anyhow, Result};

use super::graph::{Dim, Graph};
use super::tensor::{DType, Tensor};

/// What is known about one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Known value (constant or folded).
    pub value: Option<Tensor>,
}

impl Fact {
    pub fn new(dtype: DType, shape: Vec<usize>) -> Fact {
        Fact { dtype, shape, value: None }
    }
    pub fn konst(t: Tensor) -> Fact {
        Fact { dtype: t.dtype, shape: t.dims.clone(), value: Some(t) }
    }
    /// The element count (`usize::MAX` when it overflows: inference refuses such a fact).
    pub fn numel(&self) -> usize {
        super::limits::numel(&self.shape).unwrap_or(usize::MAX)
    }
}

pub type Facts = HashMap<String, Fact>;

/// Fixed shapes of the graph's data inputs: symbolic dims become `batch`. Errors name the input.
pub fn fixed_input_shapes(g: &Graph, batch: usize) -> Result<HashMap<String, Vec<usize>>> {
    let mut out = HashMap::new();
    for i in g.data_inputs() {
        let shape = i.shape.as_ref().ok_or_else(|| anyhow!("graph input '{}' declares no shape; pass one explicitly", i.name))?;
        let dims = shape
            .iter()
            .enumerate()
            .map(|(k, d)| match d {
                Dim::Fixed(v) => Ok(*v),
                Dim::Sym(_) if k == 0 => Ok(batch),
                Dim::Sym(s) => Err(anyhow!("graph input '{}' has symbolic dimension '{}' at axis {}; pass a fixed shape", i.name, s, k)),
            })
            .collect::<Result<Vec<_>>>()?;
        out.insert(i.name.clone(), dims);
    }
    Ok(out)
}
