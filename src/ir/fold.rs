//! Graph passes for export: BatchNorm folded into the preceding convolution, and inference-only
//! clean-up (no Identity or Dropout nodes, no nodes or initializers that no output needs).

use anyhow::{anyhow, Result};

use super::{Graph, Op, Tensor};

/// Folds every `Conv → BatchNormalization` pair (the conv output used only by the BN, its weight
/// used only by that conv) into one Conv with bias: W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β.
/// Returns the number of folded pairs.
pub fn fold_batchnorm(g: &mut Graph) -> Result<usize> {
    let uses: std::collections::HashMap<String, usize> = g.use_counts().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut folded = 0;
    let mut remove = vec![false; g.nodes.len()];
    for bi in 0..g.nodes.len() {
        let Op::BatchNormalization { epsilon } = g.nodes[bi].op else { continue };
        // Runs before shape inference (cost counting folds first): anything inconsistent is left
        // unfolded for inference to report by name.
        let Some(x) = g.nodes[bi].inputs.first().cloned() else { continue };
        if g.nodes[bi].inputs.len() < 5 {
            continue;
        }
        let Some(ci) = g.nodes.iter().position(|n| n.outputs.first() == Some(&x)) else { continue };
        if !matches!(g.nodes[ci].op, Op::Conv(_)) || uses.get(&x) != Some(&1) || remove[ci] {
            continue;
        }
        let Some(w_name) = g.nodes[ci].inputs.get(1).cloned() else { continue };
        if uses.get(&w_name) != Some(&1) {
            continue;
        }
        let get = |k: usize| -> Result<Vec<f32>> {
            let name = &g.nodes[bi].inputs[k];
            Ok(g.initializers
                .get(name)
                .ok_or_else(|| anyhow!("BatchNorm '{}' input '{name}' is not constant", g.nodes[bi].name))?
                .to_f32s())
        };
        let (Ok(gamma), Ok(beta), Ok(mean), Ok(var)) = (get(1), get(2), get(3), get(4)) else { continue };
        let Some(w) = g.initializers.get(&w_name) else { continue };
        let cout = w.dims.first().copied().unwrap_or(0);
        if cout == 0 || w.numel() % cout != 0 || [&gamma, &beta, &mean, &var].iter().any(|v| v.len() != cout) {
            continue;
        }
        let per = w.numel() / cout;
        let scale: Vec<f32> = (0..cout).map(|c| gamma[c] / (var[c] + epsilon).sqrt()).collect();
        let mut wv = w.to_f32s();
        for c in 0..cout {
            wv[c * per..(c + 1) * per].iter_mut().for_each(|v| *v *= scale[c]);
        }
        let dims = w.dims.clone();
        let b_old = match g.nodes[ci].inputs.get(2).filter(|s| !s.is_empty()) {
            Some(b) => g.initializers.get(b).map(|t| t.to_f32s()).ok_or_else(|| anyhow!("conv bias '{b}' is not constant"))?,
            None => vec![0.0; cout],
        };
        if b_old.len() != cout {
            continue;
        }
        let bias: Vec<f32> = (0..cout).map(|c| (b_old[c] - mean[c]) * scale[c] + beta[c]).collect();
        g.initializers.insert(w_name, Tensor::f32(dims, wv));
        let b_name = format!("{}.bias", g.nodes[ci].name);
        let b_name = if g.initializers.contains_key(&b_name) && g.nodes[ci].inputs.get(2) != Some(&b_name) {
            format!("{b_name}_folded")
        } else {
            b_name
        };
        g.initializers.insert(b_name.clone(), Tensor::f32(vec![cout], bias));
        let y = g.nodes[bi].outputs[0].clone();
        let conv = &mut g.nodes[ci];
        conv.inputs.truncate(2);
        conv.inputs.push(b_name);
        conv.outputs[0] = y;
        remove[bi] = true;
        folded += 1;
    }
    let mut i = 0;
    g.nodes.retain(|_| {
        i += 1;
        !remove[i - 1]
    });
    let used: std::collections::HashSet<String> = g.nodes.iter().flat_map(|n| n.inputs.iter().cloned()).collect();
    g.initializers.retain(|k, _| used.contains(k));
    Ok(folded)
}

/// Removes Identity and Dropout nodes (inference: both pass their input through), nodes whose
/// outputs no graph output needs, and initializers no node reads. Returns the nodes removed.
pub fn strip_for_inference(g: &mut Graph) -> usize {
    let before = g.nodes.len();
    let graph_outputs: std::collections::HashSet<String> = g.outputs.iter().map(|o| o.name.clone()).collect();
    let mut alias: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    g.nodes.retain(|n| {
        let pass = matches!(n.op, Op::Identity | Op::Dropout) && !n.inputs.is_empty() && !graph_outputs.contains(&n.outputs[0]);
        if pass {
            alias.insert(n.outputs[0].clone(), n.inputs[0].clone());
        }
        !pass
    });
    let resolve = |v: &str| {
        let mut v = v.to_string();
        while let Some(a) = alias.get(&v) {
            v = a.clone();
        }
        v
    };
    for n in &mut g.nodes {
        for i in &mut n.inputs {
            *i = resolve(i);
        }
    }
    // Dead nodes: walk back from the outputs.
    let mut needed: std::collections::HashSet<String> = graph_outputs;
    let mut keep = vec![false; g.nodes.len()];
    for (k, n) in g.nodes.iter().enumerate().rev() {
        if n.outputs.iter().any(|o| needed.contains(o)) {
            keep[k] = true;
            needed.extend(n.inputs.iter().cloned());
        }
    }
    let mut k = 0;
    g.nodes.retain(|_| {
        k += 1;
        keep[k - 1]
    });
    let used: std::collections::HashSet<String> = g.nodes.iter().flat_map(|n| n.inputs.iter().cloned()).collect();
    let dropped: Vec<String> = g.initializers.keys().filter(|k| !used.contains(*k)).cloned().collect();
    for d in &dropped {
        g.initializers.remove(d);
    }
    g.inputs.retain(|i| !dropped.contains(&i.name));
    before - g.nodes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::{build, NetSpec, Stage, Stem};
    use crate::util::Rng;

    #[test]
    fn folding_keeps_outputs_and_removes_every_batchnorm() {
        let spec = NetSpec {
            name: "t".into(),
            input: [2, 9, 9],
            classes: 3,
            stem: Stem { channels: 6, kernel: 3, stride: 2 },
            stages: vec![Stage { out: 6, layers: 2, stride: 1, expand: 3, kernel: 5, se: 0.25 }],
            head: 8,
        };
        let mut g = build(&spec, 1).unwrap();
        // Non-trivial BN statistics.
        let mut rng = Rng::new(4);
        for (k, t) in g.initializers.iter_mut() {
            if k.ends_with("running_var") || k.ends_with("bn.weight") {
                *t = Tensor::f32(t.dims.clone(), (0..t.numel()).map(|_| 0.5 + rng.uniform() as f32).collect());
            } else if k.ends_with("running_mean") || k.ends_with("bn.bias") {
                *t = Tensor::f32(t.dims.clone(), (0..t.numel()).map(|_| rng.normal() as f32 * 0.3).collect());
            }
        }
        let bns = g.nodes.iter().filter(|n| matches!(n.op, Op::BatchNormalization { .. })).count();
        let mut f = g.clone();
        assert_eq!(fold_batchnorm(&mut f).unwrap(), bns);
        assert!(!f.nodes.iter().any(|n| matches!(n.op, Op::BatchNormalization { .. })));
        assert!(!f.initializers.keys().any(|k| k.contains("running")));
        let x = tch::Tensor::randn([2, 2, 9, 9], (tch::Kind::Float, tch::Device::Cpu));
        let a = crate::exec::Executor::new(g, tch::Device::Cpu).unwrap().forward(&x).unwrap();
        let b = crate::exec::Executor::new(f, tch::Device::Cpu).unwrap().forward(&x).unwrap();
        let err = (a - &b).abs().max().double_value(&[]) / b.abs().max().double_value(&[]);
        assert!(err < 1e-5, "max rel {err}");
    }

    #[test]
    fn strip_removes_pass_through_and_dead_nodes_and_keeps_outputs() {
        use crate::ir::builder::Builder;
        let mut b = Builder::new("s", "x", [3, 5, 5], 2);
        let c = b.conv("conv", "x", 3, 4, 3, 1, 1, true);
        let i = b.node("id", Op::Identity, vec![c]);
        let d = b.node("drop", Op::Dropout, vec![i]);
        let y = b.node("relu", Op::Relu, vec![d]);
        // A dead branch with its own initializer.
        let _dead = b.conv("dead", "x", 3, 2, 1, 1, 1, false);
        let g = b.finish(&[&y]);
        let mut f = g.clone();
        assert_eq!(strip_for_inference(&mut f), 3, "Identity, Dropout and the dead conv");
        let ops: Vec<&str> = f.nodes.iter().map(|n| n.op.name()).collect();
        assert_eq!(ops, ["Conv", "Relu"]);
        assert_eq!(f.nodes[1].inputs, vec![f.nodes[0].outputs[0].clone()]);
        assert!(!f.initializers.keys().any(|k| k.starts_with("dead")));
        f.check().unwrap();
        let x = tch::Tensor::randn([1, 3, 5, 5], (tch::Kind::Float, tch::Device::Cpu));
        let a = crate::exec::Executor::new(g, tch::Device::Cpu).unwrap().forward(&x).unwrap();
        let b = crate::exec::Executor::new(f, tch::Device::Cpu).unwrap().forward(&x).unwrap();
        // The stripped graph's Conv → Relu may run as one fused kernel: equal to rounding.
        let rel = (&a - &b).abs().max().double_value(&[]) / a.abs().max().double_value(&[]).max(1e-12);
        assert!(rel < 1e-6, "stripped graph differs by {rel} (relative)");
    }
}
