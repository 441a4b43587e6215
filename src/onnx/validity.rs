//! Graph validity at import, before anything is inferred: an opset dnas knows, nodes that
//! produce something, one producer per value, and declared outputs that exist. Each error names
//! the value and the nodes involved.

use std::collections::HashMap;

use anyhow::{bail, ensure, Result};

use crate::ir::{Graph, MAX_OPSET, MIN_OPSET};

/// The model's default-domain opset is one dnas reads (checked before any node is parsed).
pub fn check_opset(opset: i64) -> Result<()> {
    ensure!(opset >= MIN_OPSET, "the model imports opset {opset}, older than dnas supports ({MIN_OPSET})");
    ensure!(
        opset <= MAX_OPSET,
        "the model imports opset {opset}, newer than the newest dnas knows ({MAX_OPSET}); re-export it at opset {MAX_OPSET} or lower"
    );
    Ok(())
}

/// Checks `g` as imported (nodes in file order).
pub fn check(g: &Graph) -> Result<()> {
    check_opset(g.opset)?;
    // Who produces each value: the graph's inputs, its initializers, then the nodes.
    let mut producer: HashMap<&str, String> = HashMap::new();
    for i in &g.inputs {
        producer.insert(&i.name, "the graph input".into());
    }
    for name in g.initializers.keys() {
        // Before IR 4 initializers were also listed as graph inputs: that is not a second producer.
        producer.entry(name).or_insert_with(|| "an initializer".into());
    }
    for n in &g.nodes {
        let here = format!("node '{}' ({})", n.name, n.op.name());
        ensure!(n.outputs.iter().any(|o| !o.is_empty()), "{here} has no output");
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            if let Some(before) = producer.insert(o, here.clone()) {
                bail!("value '{o}' is produced twice: by {before} and by {here}");
            }
        }
    }
    ensure!(!g.outputs.is_empty(), "the graph declares no output");
    for o in &g.outputs {
        ensure!(producer.contains_key(o.name.as_str()), "graph output '{}' is produced by no node, input or initializer", o.name);
    }
    Ok(())
}
