//! `dnas latency-lut`: every candidate layer of a resolved search space, as exported (BatchNorm
//! folded, the MBConv unit a runtime executes), timed alone at its input shape on one latency
//! target. A model call has a fixed overhead (session dispatch, input copy) that a whole network
//! pays once, not once per layer: it is measured on a trivial model of the same input shape and
//! subtracted from each layer; the fixed part (stem + head + classifier) keeps one.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::ir::builder::Builder;
use crate::ir::{Graph, Op};
use crate::onnx::export::deploy_bytes;
use crate::onnx::WriteOptions;
use crate::space::arch::fixed_graphs;
use crate::space::{LayerOp, LayerShape, Resolved};
use crate::strategy::dna::choose::{head_key, LatencyLut};
use crate::validate::latency::{measure, LatencyConfig, Target};

fn p50(g: &Graph, shape: [usize; 3], target: Target, cfg: LatencyConfig) -> Result<f64> {
    let bytes = deploy_bytes(g, &[], &WriteOptions::default(), None)?;
    let row = measure(&bytes, &[1, shape[0], shape[1], shape[2]], target, cfg)?;
    if !row.available {
        anyhow::bail!("{}", row.note.unwrap_or_else(|| format!("{} is unavailable", target.label())));
    }
    row.p50_ms.context("no timing")
}

/// The call overhead at input shape `s`: a model that only applies Relu.
fn overhead_ms(s: [usize; 3], target: Target, cfg: LatencyConfig) -> Result<f64> {
    let mut b = Builder::new("overhead", "x", s, 0);
    let y = b.node("relu", Op::Relu, vec!["x".into()]);
    p50(&b.finish(&[&y]), s, target, cfg)
}

/// Every (op, child shape) of `r` that is not a skip, keyed as selection looks them up: a
/// block's first layer at every width the previous block's cells may write.
pub fn layer_keys(r: &Resolved) -> BTreeMap<String, (LayerOp, LayerShape)> {
    let mut out = BTreeMap::new();
    for b in &r.blocks {
        for c in &b.cells {
            for &cin in &b.in_widths {
                for (slot, shape) in c.layers.iter().zip(r.space.child_cell_shapes(b.index, c.index, cin)) {
                    for &op in slot.ops.iter().filter(|o| !o.is_skip()) {
                        out.insert(shape.key(op), (op, shape));
                    }
                }
            }
        }
    }
    out
}

/// Measures the table; `progress(done, total)` after each layer.
pub fn build_lut(r: &Resolved, target: Target, cfg: LatencyConfig, progress: &mut dyn FnMut(usize, usize)) -> Result<LatencyLut> {
    let space = &r.space;
    let keys = layer_keys(r);
    let mut overheads: BTreeMap<[usize; 3], f64> = BTreeMap::new();
    let mut entries = BTreeMap::new();
    for (i, (key, (op, s))) in keys.iter().enumerate() {
        let shape = [s.cin, s.h, s.w];
        let g = crate::space::layer::layer_graph("layer", *op, s, space.se, 0).context("a skip has no layer")?;
        let ms = p50(&g, shape, target, cfg).with_context(|| format!("timing layer {key}"))?;
        let oh = match overheads.get(&shape) {
            Some(v) => *v,
            None => {
                let v = overhead_ms(shape, target, cfg)?;
                overheads.insert(shape, v);
                v
            }
        };
        entries.insert(key.clone(), (ms - oh).max(0.0));
        progress(i + 1, keys.len());
    }
    let head_in = space.head_in();
    let (stem_g, head_g) = fixed_graphs(&space.stem, &space.head, space.input, head_in, space.classes, space.se);
    let stem_ms = p50(&stem_g, space.input, target, cfg).context("timing the stem")?;
    let head_ms = p50(&head_g, head_in, target, cfg).context("timing the head")?;
    let head_oh = overhead_ms(head_in, target, cfg)?;
    // Where the last block's cells write different widths, the head is timed at each (selection
    // swaps the one it reads into the fixed part).
    let last_outs = space.out_widths(space.blocks.len().checked_sub(1));
    if last_outs.len() > 1 {
        for &w in &last_outs {
            let at = space.head_in_from(w);
            let (_, g) = fixed_graphs(&space.stem, &space.head, space.input, at, space.classes, space.se);
            let ms = p50(&g, at, target, cfg).with_context(|| format!("timing the head at {w} channels"))?;
            let oh = overhead_ms(at, target, cfg)?;
            entries.insert(head_key(at), (ms - oh).max(0.0));
        }
    }
    let threads = match target {
        Target::Ort { threads, .. } => threads,
        Target::Tract => 1,
    };
    Ok(LatencyLut {
        provider: target.label(),
        threads,
        fixed_ms: stem_ms + (head_ms - head_oh).max(0.0),
        entries,
        settings: serde_json::json!({
            "space": format!("{}@{}", space.name, space.version), "warmup": cfg.warmup, "runs": cfg.runs, "statistic": "p50",
            "batch": 1, "stem_ms": stem_ms, "head_ms": head_ms,
            "overhead_ms": overheads.iter().map(|(s, v)| (format!("{}x{}x{}", s[0], s[1], s[2]), *v)).collect::<BTreeMap<_, _>>(),
            "dnas_version": env!("CARGO_PKG_VERSION"),
        }),
    })
}
