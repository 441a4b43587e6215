//! The quick teacher corpus (`tools/corpus.py --quick`, built by tools/test.sh): CNN classifiers
//! as other opsets and exporters write them — opset 7 and 10 from onnx's version converter, a
//! Split at opset 9, an NHWC input with a fixed batch of 1, PaddleOCR's classifier from
//! Paddle2ONNX with symbolic spatial dims — each through `teacher check`: tch vs ORT vs tract
//! within 1e-4, the IR round trip exact, top-1 agreeing.

mod common;

use dnas::data::photos::Preprocess;
use dnas::teacher::check::{check, CheckOptions};

#[test]
fn every_quick_corpus_model_passes_teacher_check() {
    let dir = common::dnas_home().join("corpus-quick");
    let list = std::fs::read(dir.join("corpus.json"))
        .unwrap_or_else(|e| panic!("{}: {e} — build it with tools/test.sh (tools/corpus.py --quick)", dir.display()));
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&list).unwrap();
    assert!(entries.len() >= 7, "{} corpus entries", entries.len());
    let photos = common::dnas_home().join("pkgs/foolbox/foolbox/data");
    let mut opsets = std::collections::BTreeSet::new();
    for e in &entries {
        let file = e["file"].as_str().unwrap();
        let shape: Vec<usize> = e["input_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let three =
            |k: &str, d: [f32; 3]| e.get(k).and_then(|v| v.as_array()).map_or(d, |v| [0, 1, 2].map(|i| v[i].as_f64().unwrap() as f32));
        let opts = CheckOptions {
            device: tch::Device::Cpu,
            preprocess: Preprocess {
                resize: 256,
                crop: 224,
                mean: three("mean", [0.485, 0.456, 0.406]),
                std: three("std", [0.229, 0.224, 0.225]),
            },
            batch: 4,
            tol: 1e-4,
            tract: true,
            limit: Some(4),
            prefix: "imagenet_".into(),
            input_shape: Some(shape),
        };
        let r = check(&dir.join(file), &photos, &opts).unwrap_or_else(|err| panic!("{file}: {err:#}"));
        eprintln!("{file}: tch vs ORT {:.1e}, tract vs ORT {:.1e}", r.tch_vs_ort.max_rel, r.tract_vs_ort.unwrap().max_rel);
        assert!(r.pass, "{file}: {r:?}");
        assert_eq!((r.images, r.top1_agree_tch_ort), (4, 4), "{file}");
        opsets.insert(e["opset"].as_i64().unwrap());
    }
    assert!(opsets.contains(&7) && opsets.contains(&10) && opsets.contains(&11), "{opsets:?}");
}
