//! Real ImageNet teachers (EfficientNet-Lite0, MobileNetV2) on the labelled foolbox photos:
//! tch vs ONNX Runtime ≤ 1e-4 relative, same top-1 on every photo, accuracy ≥ 17/20; the round
//! trip read → IR → write → read gives identical outputs in tch, ORT and tract.

mod common;

use common::*;
use dnas::data::photos::Preprocess;
use dnas::teacher::check::{check, CheckOptions};

fn check_teacher(file: &str, mean: [f32; 3], std: [f32; 3]) {
    let opts = CheckOptions {
        device: tch::Device::Cpu,
        preprocess: Preprocess { resize: 256, crop: 224, mean, std },
        batch: 10,
        tol: 1e-4,
        tract: true,
        limit: None,
        prefix: "imagenet_".into(),
        input_shape: None,
    };
    let r = check(&model(file), &photos_dir(), &opts).expect("check");
    eprintln!(
        "{file}: {} photos, tch vs ORT max rel {:.3e}, tract vs ORT {:.3e}, top-1 {}/{} (ORT {}/{})",
        r.images,
        r.tch_vs_ort.max_rel,
        r.tract_vs_ort.unwrap().max_rel,
        r.top1_correct_tch,
        r.labelled,
        r.top1_correct_ort,
        r.labelled
    );
    assert_eq!(r.images, 20, "foolbox ships 20 labelled ImageNet photos");
    assert!(r.tch_vs_ort.max_rel <= 1e-4, "tch vs ORT {:?}", r.tch_vs_ort);
    assert_eq!(r.top1_agree_tch_ort, 20, "top-1 differs between tch and ORT");
    assert!(r.top1_correct_tch >= 17, "top-1 accuracy {}/20 < 17/20", r.top1_correct_tch);
    assert_eq!(r.roundtrip_vs_tch.max_rel, 0.0, "IR round trip changed the output");
    assert!(r.pass);
    // The round trip through ORT and tract too, on one photo batch.
    let bytes = std::fs::read(model(file)).unwrap();
    let photo = dnas::data::photos::load(&photos_dir().join("imagenet_00_243.jpg"), &opts.preprocess).unwrap();
    let x = dnas::validate::Array { shape: vec![1, 3, 224, 224], data: photo };
    assert_parity_and_round_trip(&bytes, &x, 1e-4, file);
}

#[test]
fn efficientnet_lite0_matches_onnx_runtime_on_imagenet_photos() {
    // TF-Lite preprocessing (x/127.5 − 1), as the original weights expect.
    check_teacher("efficientnet_lite0.onnx", [0.5; 3], [0.5; 3]);
}

#[test]
fn mobilenet_v2_matches_onnx_runtime_on_imagenet_photos() {
    check_teacher("mobilenet_v2.onnx", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
}
