//! ONNX bytes → IR → graph checks → shape inference (with constant folding through libtorch) →
//! params and MACs: what `dnas teacher inspect` does to a file. Any panic or abort is a crash;
//! errors are the expected outcome for almost every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // Small enough that a tensor at the cap stays far under libFuzzer's RSS limit.
        std::env::set_var("DNAS_MAX_TENSOR_BYTES", "64M");
    },
    |bytes: &[u8]| {
        let Ok(g) = dnas::onnx::read_model(bytes) else { return };
        let Ok(shapes) = dnas::ir::fixed_input_shapes(&g, 1) else { return };
        if let Ok(facts) = dnas::exec::infer(&g, &shapes) {
            let _ = dnas::ops::cost::count(&g, &facts);
        }
        let _ = dnas::space::arch::graph_cost(&g);
    }
);
