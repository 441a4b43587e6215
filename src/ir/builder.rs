//! Builds IR graphs layer by layer: the teacher nets, the supernet candidates and the searched
//! child are all assembled from these pieces, so every one of them can be run by the tch executor,
//! trained, counted and written as ONNX. Initial weights come from a seeded [`Rng`].
//!
//! Naming: a layer's nodes and weights live under its `scope` (`stages.2.0.dw.conv`,
//! `stages.2.0.dw.conv.weight`); every node's output value has the node's name.

use std::collections::BTreeMap;

use super::{ConvAttrs, DType, Dim, Graph, Node, Op, Tensor, ValueInfo};
use crate::util::Rng;

pub struct Builder {
    g: Graph,
    rng: Rng,
}

impl Builder {
    /// A graph with one NCHW float input `input` of shape `[N, c, h, w]` (symbolic batch).
    pub fn new(name: &str, input: &str, chw: [usize; 3], seed: u64) -> Builder {
        let shape = vec![Dim::Sym("N".into()), Dim::Fixed(chw[0]), Dim::Fixed(chw[1]), Dim::Fixed(chw[2])];
        Builder {
            g: Graph {
                name: name.into(),
                inputs: vec![ValueInfo { name: input.into(), dtype: DType::F32, shape: Some(shape) }],
                outputs: vec![],
                initializers: BTreeMap::new(),
                nodes: vec![],
                opset: super::DEFAULT_OPSET,
                metadata: BTreeMap::new(),
            },
            rng: Rng::new(seed),
        }
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    pub fn init(&mut self, name: String, t: Tensor) -> String {
        self.g.initializers.insert(name.clone(), t);
        name
    }

    /// Adds a node whose single output is named like the node.
    pub fn node(&mut self, name: &str, op: Op, inputs: Vec<String>) -> String {
        self.g.nodes.push(Node { name: name.into(), op, inputs, outputs: vec![name.into()] });
        name.into()
    }

    fn normal(&mut self, dims: Vec<usize>, std: f64) -> Tensor {
        let n: usize = dims.iter().product();
        Tensor::f32(dims, (0..n).map(|_| (self.rng.normal() * std) as f32).collect())
    }

    /// k×k convolution, "same" padding k/2, He-normal init over fan-out (as EfficientNet).
    #[allow(clippy::too_many_arguments)]
    pub fn conv(&mut self, scope: &str, x: &str, cin: usize, cout: usize, k: usize, stride: usize, groups: usize, bias: bool) -> String {
        let fan_out = k * k * cout / groups;
        let w = self.normal(vec![cout, cin / groups, k, k], (2.0 / fan_out as f64).sqrt());
        let mut inputs = vec![x.to_string(), self.init(format!("{scope}.weight"), w)];
        if bias {
            inputs.push(self.init(format!("{scope}.bias"), Tensor::f32(vec![cout], vec![0.0; cout])));
        }
        let p = k / 2;
        let attrs = ConvAttrs {
            kernel_shape: Some(vec![k, k]),
            strides: vec![stride, stride],
            pads: vec![p, p, p, p],
            dilations: vec![1, 1],
            group: groups,
            ..Default::default()
        };
        self.node(scope, Op::Conv(attrs), inputs)
    }

    pub fn bn(&mut self, scope: &str, x: &str, c: usize) -> String {
        let mut inputs = vec![x.to_string()];
        for (part, v) in [("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)] {
            inputs.push(self.init(format!("{scope}.{part}"), Tensor::f32(vec![c], vec![v; c])));
        }
        self.node(scope, Op::BatchNormalization { epsilon: 1e-3 }, inputs)
    }

    /// swish(x) = x · sigmoid(x), as two ONNX ops every runtime has.
    pub fn swish(&mut self, scope: &str, x: &str) -> String {
        let s = self.node(&format!("{scope}.sigmoid"), Op::Sigmoid, vec![x.into()]);
        self.node(&format!("{scope}.swish"), Op::Mul, vec![x.into(), s])
    }

    /// Conv → BN → optional swish.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_bn(&mut self, scope: &str, x: &str, cin: usize, cout: usize, k: usize, stride: usize, groups: usize, act: bool) -> String {
        let c = self.conv(&format!("{scope}.conv"), x, cin, cout, k, stride, groups, false);
        let b = self.bn(&format!("{scope}.bn"), &c, cout);
        if act {
            self.swish(scope, &b)
        } else {
            b
        }
    }

    /// Squeeze-excite: GlobalAveragePool → 1×1 conv → swish → 1×1 conv → sigmoid → scale.
    pub fn se(&mut self, scope: &str, x: &str, c: usize, squeeze: usize) -> String {
        let p = self.node(&format!("{scope}.pool"), Op::GlobalAveragePool, vec![x.into()]);
        let r = self.conv(&format!("{scope}.reduce"), &p, c, squeeze, 1, 1, 1, true);
        let r = self.swish(&format!("{scope}.reduce"), &r);
        let e = self.conv(&format!("{scope}.expand"), &r, squeeze, c, 1, 1, 1, true);
        let g = self.node(&format!("{scope}.gate"), Op::Sigmoid, vec![e]);
        self.node(&format!("{scope}.scale"), Op::Mul, vec![x.into(), g])
    }

    /// MBConv (inverted residual): 1×1 expand (when `expand` > 1) → k×k depthwise (stride) →
    /// squeeze-excite (`se_ratio` of the input channels; 0 = none) → 1×1 project, plus the
    /// identity shortcut when shapes allow.
    #[allow(clippy::too_many_arguments)]
    pub fn mbconv(
        &mut self,
        scope: &str,
        x: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        expand: usize,
        se_ratio: f64,
    ) -> String {
        let mid = cin * expand;
        let mut h = x.to_string();
        if expand != 1 {
            h = self.conv_bn(&format!("{scope}.expand"), &h, cin, mid, 1, 1, 1, true);
        }
        h = self.conv_bn(&format!("{scope}.dw"), &h, mid, mid, k, stride, mid, true);
        if se_ratio > 0.0 {
            let sq = ((cin as f64 * se_ratio) as usize).max(1);
            h = self.se(&format!("{scope}.se"), &h, mid, sq);
        }
        h = self.conv_bn(&format!("{scope}.project"), &h, mid, cout, 1, 1, 1, false);
        if stride == 1 && cin == cout {
            h = self.node(&format!("{scope}.add"), Op::Add, vec![x.into(), h]);
        }
        h
    }

    /// GlobalAveragePool → Reshape [-1, c] (not Flatten: CoreML's ML Program rejects it) → Gemm.
    pub fn classifier(&mut self, scope: &str, x: &str, c: usize, classes: usize) -> String {
        let p = self.node(&format!("{scope}.pool"), Op::GlobalAveragePool, vec![x.into()]);
        let shape = self.init(format!("{scope}.shape"), Tensor::i64(vec![2], vec![-1, c as i64]));
        let r = self.node(&format!("{scope}.reshape"), Op::Reshape { allowzero: false }, vec![p, shape]);
        let bound = 1.0 / (c as f64).sqrt();
        let w: Vec<f32> = (0..classes * c).map(|_| ((self.rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
        let w = self.init(format!("{scope}.weight"), Tensor::f32(vec![classes, c], w));
        let b = self.init(format!("{scope}.bias"), Tensor::f32(vec![classes], vec![0.0; classes]));
        self.node(&format!("{scope}.fc"), Op::Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true }, vec![r, w, b])
    }

    /// Declares `outputs` (existing values) as the graph outputs and returns the graph.
    pub fn finish(mut self, outputs: &[&str]) -> Graph {
        for o in outputs {
            self.g.outputs.push(ValueInfo { name: o.to_string(), dtype: DType::F32, shape: None });
        }
        self.g
    }
}
