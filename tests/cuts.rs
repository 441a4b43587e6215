//! Automatic block cuts land on the stage boundaries.

mod common;

use common::*;
use dnas::onnx::read_file;
use dnas::teacher::inspect::inspect;

#[test]
fn efficientnet_lite0_cuts_are_its_stage_boundaries() {
    let g = read_file(&model("efficientnet_lite0.onnx")).unwrap();
    let r = inspect(&g, None, None).unwrap();
    let got: Vec<(usize, usize)> = r.cuts.iter().map(|c| (c.channels, c.stride)).collect();
    // Stage outputs of EfficientNet-Lite0: 16@2, 24@4, 40@8, 80@16, 112@16, 192@32, 320@32, head 1280@32.
    assert_eq!(got, vec![(16, 2), (24, 4), (40, 8), (80, 16), (112, 16), (192, 32), (320, 32), (1280, 32)], "{:#?}", r.cuts);
    let names: Vec<&str> = r.cuts.iter().map(|c| c.tensor.as_str()).collect();
    assert_eq!(
        names,
        [
            "/_blocks.0/_project_conv/Conv_output_0",
            "/_blocks.2/Add_output_0",
            "/_blocks.4/Add_output_0",
            "/_blocks.7/Add_output_0",
            "/_blocks.10/Add_output_0",
            "/_blocks.14/Add_output_0",
            "/_blocks.15/_project_conv/Conv_output_0",
            "/Clip_1_output_0",
        ]
    );
    // Published figures: 4.65M parameters; ~0.4 GMACs.
    assert!((4_600_000..4_700_000).contains(&r.params), "params {}", r.params);
    assert!((380_000_000..410_000_000).contains(&r.macs), "MACs {}", r.macs);
}

#[test]
fn resnet18_cuts_follow_its_layers() {
    let g = read_file(&model("resnet18_op17.onnx")).unwrap();
    let r = inspect(&g, None, None).unwrap();
    let got: Vec<(usize, usize)> = r.cuts.iter().map(|c| (c.channels, c.stride)).collect();
    assert_eq!(got, vec![(64, 2), (64, 4), (128, 8), (256, 16), (512, 32)]);
    // torchvision counts 11,689,512 with BN's γ and β (9,600 values); the exporter folds BN into
    // the convolutions, leaving one bias per channel (4,800): 11,689,512 − 4,800.
    assert_eq!(r.params, 11_684_712);
}

#[test]
fn user_cuts_must_be_points_the_whole_network_passes_through() {
    let g = read_file(&model("resnet18_op17.onnx")).unwrap();
    let auto = inspect(&g, None, None).unwrap().cuts;
    let names: Vec<String> = auto.iter().take(2).map(|c| c.tensor.clone()).collect();
    let r = inspect(&g, None, Some(&names)).unwrap();
    assert_eq!(r.cuts.len(), 2);
    assert_eq!(r.cuts_source, "user");
    // Inside a residual block the skip branch is live: not a valid cut.
    let inner = g.nodes.iter().find(|n| n.name.contains("layer1.0/conv1")).unwrap().outputs[0].clone();
    let err = inspect(&g, None, Some(std::slice::from_ref(&inner))).unwrap_err().to_string();
    assert!(err.contains(&inner) && err.contains("passes through"), "{err}");
    let err = inspect(&g, None, Some(&["nope".to_string()])).unwrap_err().to_string();
    assert!(err.contains("'nope' is not a value"), "{err}");
}
