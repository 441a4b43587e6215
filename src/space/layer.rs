//! One layer of a space as an IR graph (what a supernet unit, a child's layer and a latency-table
//! entry are built from).

use crate::ir::builder::Builder;
use crate::ir::Graph;

use super::{LayerOp, LayerShape};

/// The IR graph of one layer: input `x` [N, cin, h, w] → MBConv → output. `None` for `skip`.
pub fn layer_graph(scope: &str, op: LayerOp, s: &LayerShape, se: f64, seed: u64) -> Option<Graph> {
    let LayerOp::MbConv { kernel, expand } = op else { return None };
    let mut b = Builder::new(scope, "x", [s.cin, s.h, s.w], seed);
    let y = b.mbconv(scope, "x", s.cin, s.cout, kernel, s.stride, expand, se);
    Some(b.finish(&[&y]))
}
