//! IR → ONNX writer → reader: every graph dnas imports from fuzzed bytes and can write must read
//! back to the same graph (same nodes, ops, values and initializers), at its own opset. A panic,
//! an abort or a mismatch is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        std::env::set_var("DNAS_MAX_TENSOR_BYTES", "64M");
    },
    |bytes: &[u8]| {
        let Ok(g) = dnas::onnx::read_model(bytes) else { return };
        let opts = dnas::onnx::WriteOptions { opset: g.opset, ..Default::default() };
        let Ok(written) = dnas::onnx::write_model(&g, &opts) else { return };
        let back = dnas::onnx::read_model(&written).unwrap_or_else(|e| panic!("dnas wrote a model it cannot read: {e:#}"));
        assert_eq!(back.nodes.len(), g.nodes.len(), "node count changed in the round trip");
        for (a, b) in g.nodes.iter().zip(&back.nodes) {
            // Debug text, not ==: a NaN attribute or constant is the same NaN after the trip.
            assert_eq!(format!("{:?}", a.op), format!("{:?}", b.op), "node '{}' changed its op in the round trip", a.name);
            assert_eq!(a.inputs, b.inputs, "node '{}' changed its inputs", a.name);
            assert_eq!(a.outputs, b.outputs, "node '{}' changed its outputs", a.name);
        }
        // The writer drops initializers nothing reads; every one a node or an output reads must
        // come back bit for bit.
        let read: std::collections::HashSet<&String> =
            g.nodes.iter().flat_map(|n| &n.inputs).chain(g.outputs.iter().map(|o| &o.name)).collect();
        let bits = |h: &dnas::ir::Graph| -> Vec<(String, Vec<usize>, Vec<u8>)> {
            h.initializers.iter().filter(|(n, _)| read.contains(n)).map(|(n, t)| (n.clone(), t.dims.clone(), t.to_raw_bytes())).collect()
        };
        assert_eq!(bits(&back), bits(&g), "initializers changed in the round trip");
    }
);
