//! Search spaces (`models/spaces/*.json`, schema `schemas/search_space.schema.json`).
//!
//! A space is a fixed stem, a list of searchable blocks and a fixed head. Each block maps to a
//! teacher cut (the teacher value whose reproduction it is trained on), has its own output
//! channels and stride, several candidate "cells" (layer counts, optionally widths; each cell is a
//! separate supernet, as DNA's multi-cell search) and the candidate ops of every layer.
//!
//! [`resolve`] binds a space to a teacher's cuts: it fixes every layer's shapes twice — in the
//! supernet (first layer reads the teacher's width, last layer writes the teacher's width, so the
//! MSE against the teacher applies) and in the child network (student widths throughout) — and
//! the ops each layer may take (`skip` only where input and output shapes agree in both).

pub mod arch;
pub mod layer;
pub mod limits;
pub mod op;
pub mod point;

pub use crate::util::schema::{check_schema, load_with, parse_checked};

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use op::LayerOp;

const SCHEMA: &str = include_str!("../../schemas/search_space.schema.json");

/// Reference to a teacher value: the index of an automatic cut (`dnas teacher inspect` lists
/// them) or a tensor name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CutRef {
    Auto(usize),
    Tensor(String),
}

impl std::fmt::Display for CutRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutRef::Auto(i) => write!(f, "automatic cut #{i}"),
            CutRef::Tensor(t) => write!(f, "tensor '{t}'"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedLayer {
    pub op: LayerOp,
    pub out: usize,
    #[serde(default = "one")]
    pub stride: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stem {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Fixed MBConv layers after the stem convolution (DNA: one MBConv1 k3 → 16).
    #[serde(default)]
    pub layers: Vec<FixedLayer>,
    /// The teacher value the stem's output corresponds to: the first block's input.
    pub cut: CutRef,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    pub layers: usize,
    /// Inner width of this cell (default: the block's width).
    #[serde(default)]
    pub width: Option<usize>,
    /// Output channels of this cell in the child (default: the block's `out`). Where the cells of
    /// a block differ in it, the next block's first layer reads whichever the chosen cell writes:
    /// its cost depends on this block's choice, and selection accounts for that
    /// ([`SearchSpace::out_widths`]).
    #[serde(default)]
    pub out: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpace {
    pub name: String,
    /// The teacher value this block's output is trained to reproduce.
    pub cut: CutRef,
    /// Output channels of the block in the child network.
    pub out: usize,
    /// Stride of the block's first layer.
    pub stride: usize,
    /// Inner width (outputs of all but the last layer); default `out`.
    #[serde(default)]
    pub width: Option<usize>,
    pub cells: Vec<Cell>,
    pub ops: Vec<LayerOp>,
    /// Learning rate of this block's supernet (DNA: 0.002 for the first and last, 0.005 else).
    #[serde(default = "default_lr")]
    pub lr: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Channels of the 1×1 head convolution (0 = none).
    pub channels: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpace {
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub description: String,
    /// How the blocks map onto teachers other than the one the space was written for.
    #[serde(default)]
    pub teacher_mapping: String,
    /// [channels, height, width] of the network input.
    pub input: [usize; 3],
    pub classes: usize,
    /// Squeeze-excite ratio of every MBConv's input channels (0 = none).
    #[serde(default = "default_se")]
    pub se: f64,
    pub stem: Stem,
    pub blocks: Vec<BlockSpace>,
    pub head: Head,
}

fn one() -> usize {
    1
}
fn default_lr() -> f64 {
    0.005
}
fn default_se() -> f64 {
    0.25
}

impl SearchSpace {
    pub fn load(path: &Path) -> Result<SearchSpace> {
        load_with(path, "search space", SearchSpace::parse)
    }

    pub fn parse(text: &str) -> Result<SearchSpace> {
        let space: SearchSpace = parse_checked(text, SCHEMA, "a search space")?;
        space.validate()?;
        Ok(space)
    }

    /// Checks what the schema cannot express; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.input.contains(&0) {
            bail!("input: every dimension must be > 0");
        }
        if self.stem.kernel.is_multiple_of(2) {
            bail!("stem.kernel: must be odd, got {}", self.stem.kernel);
        }
        for (i, l) in self.stem.layers.iter().enumerate() {
            if l.op.is_skip() {
                bail!("stem.layers[{i}].op: a fixed layer cannot be 'skip'");
            }
        }
        let mut names = std::collections::HashSet::new();
        for (b, block) in self.blocks.iter().enumerate() {
            if !names.insert(&block.name) {
                bail!("blocks[{b}].name: '{}' is used twice", block.name);
            }
            if block.ops.iter().all(|o| o.is_skip()) {
                bail!("blocks[{b}].ops: needs at least one op other than 'skip'");
            }
            for (i, o) in block.ops.iter().enumerate() {
                if block.ops[..i].contains(o) {
                    bail!("blocks[{b}].ops[{i}]: '{o}' is listed twice");
                }
            }
            for (c, cell) in block.cells.iter().enumerate() {
                if block.cells[..c].contains(cell) {
                    bail!("blocks[{b}].cells[{c}]: the same cell is listed twice");
                }
            }
            if !(block.lr > 0.0 && block.lr.is_finite()) {
                bail!("blocks[{b}].lr: must be > 0");
            }
        }
        Ok(())
    }

    /// Output [c, h, w] of the stem (conv + fixed layers).
    pub fn stem_out(&self) -> [usize; 3] {
        let mut s = [self.stem.channels, ceil_div(self.input[1], self.stem.stride), ceil_div(self.input[2], self.stem.stride)];
        for l in &self.stem.layers {
            s = [l.out, ceil_div(s[1], l.stride), ceil_div(s[2], l.stride)];
        }
        s
    }

    /// [c, h, w] entering the head (after the last block) when the last block writes its first
    /// cell's width; [`SearchSpace::head_in_from`] for another.
    pub fn head_in(&self) -> [usize; 3] {
        let c = self.blocks.last().map_or(self.stem_out()[0], |b| self.cell_out(b, 0));
        self.head_in_from(c)
    }

    /// [c, h, w] entering the head when the last block writes `c` channels.
    pub fn head_in_from(&self, c: usize) -> [usize; 3] {
        let hw = self.block_in_hw(self.blocks.len());
        [c, hw[0], hw[1]]
    }

    /// Child height and width entering block `b` (`b` = number of blocks: the head's input).
    pub fn block_in_hw(&self, b: usize) -> [usize; 2] {
        let s = self.stem_out();
        self.blocks[..b.min(self.blocks.len())].iter().fold([s[1], s[2]], |hw, bs| [ceil_div(hw[0], bs.stride), ceil_div(hw[1], bs.stride)])
    }

    /// Output channels of cell `c` of `block` in the child.
    pub fn cell_out(&self, block: &BlockSpace, c: usize) -> usize {
        block.cells.get(c).and_then(|cell| cell.out).unwrap_or(block.out)
    }

    /// Inner width of cell `c` of `block` in the child.
    pub fn cell_width(&self, block: &BlockSpace, c: usize) -> usize {
        block.cells.get(c).and_then(|cell| cell.width).or(block.width).unwrap_or(block.out)
    }

    /// The distinct output widths of block `b`'s cells, in the order the cells first write them
    /// (for `b` = none, i.e. before the first block: the stem's width).
    pub fn out_widths(&self, b: Option<usize>) -> Vec<usize> {
        let Some(b) = b else { return vec![self.stem_out()[0]] };
        let bs = &self.blocks[b];
        let mut out = Vec::new();
        for c in 0..bs.cells.len() {
            let w = self.cell_out(bs, c);
            if !out.contains(&w) {
                out.push(w);
            }
        }
        out
    }

    /// The input widths block `b`'s first layer may read: what the previous block's cells write.
    pub fn in_widths(&self, b: usize) -> Vec<usize> {
        self.out_widths(b.checked_sub(1))
    }

    /// The first block whose cells write different widths, with those widths (none: every block
    /// has one interface width, as strategies with one shared network need).
    pub fn varied_outs(&self) -> Option<(&str, Vec<usize>)> {
        (0..self.blocks.len())
            .map(|b| (b, self.out_widths(Some(b))))
            .find(|(_, w)| w.len() > 1)
            .map(|(b, w)| (self.blocks[b].name.as_str(), w))
    }

    /// Child shape of every layer of cell `c` of block `b` when the block's input has `cin`
    /// channels: the first layer reads `cin` at the block's stride, the inner layers keep the
    /// cell's width, the last writes the cell's output width.
    pub fn child_cell_shapes(&self, b: usize, c: usize, cin: usize) -> Vec<LayerShape> {
        let bs = &self.blocks[b];
        let (width, out, n) = (self.cell_width(bs, c), self.cell_out(bs, c), bs.cells[c].layers);
        let [mut h, mut w] = self.block_in_hw(b);
        let mut shapes = Vec::with_capacity(n);
        for l in 0..n {
            let s = LayerShape {
                cin: if l == 0 { cin } else { width },
                cout: if l + 1 == n { out } else { width },
                stride: if l == 0 { bs.stride } else { 1 },
                h,
                w,
            };
            (h, w) = s.out_hw();
            shapes.push(s);
        }
        shapes
    }
}

pub fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b.max(1))
}

/// Shapes of one layer: input channels, output channels, stride, input height and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerShape {
    pub cin: usize,
    pub cout: usize,
    pub stride: usize,
    pub h: usize,
    pub w: usize,
}

impl LayerShape {
    pub fn out_hw(&self) -> (usize, usize) {
        (ceil_div(self.h, self.stride), ceil_div(self.w, self.stride))
    }
    /// Key of one layer as a runtime executes it (latency tables are keyed by it).
    pub fn key(&self, op: LayerOp) -> String {
        format!("{op}/i{}/o{}/s{}/{}x{}", self.cin, self.cout, self.stride, self.h, self.w)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSlot {
    /// Ops this layer may take (the block's ops, `skip` removed where shapes disagree).
    pub ops: Vec<LayerOp>,
    pub supernet: LayerShape,
    pub child: LayerShape,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedCell {
    pub index: usize,
    pub width: usize,
    /// Output channels in the child.
    pub out: usize,
    /// `child` shapes are those for the block's first input width ([`ResolvedBlock::in_widths`]);
    /// [`SearchSpace::child_cell_shapes`] gives them for another.
    pub layers: Vec<LayerSlot>,
}

impl ResolvedCell {
    /// Number of paths through the cell.
    pub fn paths(&self) -> usize {
        self.layers.iter().map(|l| l.ops.len()).product()
    }
    /// Candidate id: `c{cell}:` and the ops in order.
    pub fn path_id(&self, path: &[usize]) -> String {
        let ops: Vec<String> = self.layers.iter().zip(path).map(|(l, &o)| l.ops[o].to_string()).collect();
        format!("c{}:{}", self.index, ops.join("-"))
    }
    pub fn path_ops(&self, path: &[usize]) -> Vec<LayerOp> {
        self.layers.iter().zip(path).map(|(l, &o)| l.ops[o]).collect()
    }
    /// The path with index `i` in mixed radix (first layer most significant).
    pub fn path(&self, mut i: usize) -> Vec<usize> {
        let mut p = vec![0; self.layers.len()];
        for (k, l) in self.layers.iter().enumerate().rev() {
            p[k] = i % l.ops.len();
            i /= l.ops.len();
        }
        p
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedBlock {
    pub index: usize,
    pub name: String,
    /// Teacher value feeding the block and the one it reproduces, with their [c, h, w].
    pub teacher_in: String,
    pub teacher_in_shape: [usize; 3],
    pub teacher_out: String,
    pub teacher_out_shape: [usize; 3],
    /// Child input [c, h, w] (previous block's output; c = the first of `in_widths`).
    pub child_in: [usize; 3],
    /// Every width the previous block's cells may write (the stem's for block 0).
    pub in_widths: Vec<usize>,
    /// The block's default output width (`out` in the space; cells may override it).
    pub out: usize,
    pub stride: usize,
    pub lr: f64,
    pub cells: Vec<ResolvedCell>,
}

impl ResolvedBlock {
    pub fn candidates(&self) -> usize {
        self.cells.iter().map(|c| c.paths()).sum()
    }
}

/// A space bound to a teacher.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resolved {
    pub space: SearchSpace,
    pub blocks: Vec<ResolvedBlock>,
}

/// Resolves a cut reference to (tensor name, [c, h, w]).
pub type CutLookup<'a> = dyn Fn(&CutRef) -> Result<(String, [usize; 3])> + 'a;

/// Binds `space` to a teacher through `cut`.
pub fn resolve(space: &SearchSpace, cut: &CutLookup) -> Result<Resolved> {
    let stem_out = space.stem_out();
    let (mut t_name, mut t_shape) = cut(&space.stem.cut).context("stem.cut")?;
    if t_shape[1..] != stem_out[1..] {
        bail!(
            "stem: the stem's output is {}×{} but its teacher value {} ({}) is {}×{}",
            stem_out[1],
            stem_out[2],
            space.stem.cut,
            t_name,
            t_shape[1],
            t_shape[2]
        );
    }
    let mut child_in = stem_out;
    let mut blocks = Vec::new();
    for (b, bs) in space.blocks.iter().enumerate() {
        let (o_name, o_shape) = cut(&bs.cut).with_context(|| format!("blocks[{b}].cut"))?;
        let expect = [ceil_div(t_shape[1], bs.stride), ceil_div(t_shape[2], bs.stride)];
        if o_shape[1..] != expect {
            bail!(
                "blocks[{b}].stride: {} maps the teacher's {}×{} ('{t_name}') to {}×{}, but the block's cut '{o_name}' is {}×{}",
                bs.stride,
                t_shape[1],
                t_shape[2],
                expect[0],
                expect[1],
                o_shape[1],
                o_shape[2]
            );
        }
        let in_widths = space.in_widths(b);
        let mut cells = Vec::new();
        for c in 0..bs.cells.len() {
            let width = space.cell_width(bs, c);
            let n = bs.cells[c].layers;
            // The same layers for every input width but the first layer's cin.
            let alternatives: Vec<Vec<LayerShape>> = in_widths.iter().map(|&cin| space.child_cell_shapes(b, c, cin)).collect();
            let mut layers = Vec::new();
            for (l, &child) in alternatives[0].iter().enumerate() {
                let last = l + 1 == n;
                let supernet = LayerShape {
                    cin: if l == 0 { t_shape[0] } else { width },
                    cout: if last { o_shape[0] } else { width },
                    stride: child.stride,
                    h: if l == 0 { t_shape[1] } else { expect[0] },
                    w: if l == 0 { t_shape[2] } else { expect[1] },
                };
                let same = |s: &LayerShape| s.stride == 1 && s.cin == s.cout;
                let skip_fits = same(&supernet) && alternatives.iter().all(|a| same(&a[l]));
                let ops: Vec<LayerOp> = bs.ops.iter().copied().filter(|o| !o.is_skip() || skip_fits).collect();
                layers.push(LayerSlot { ops, supernet, child });
            }
            cells.push(ResolvedCell { index: c, width, out: space.cell_out(bs, c), layers });
        }
        blocks.push(ResolvedBlock {
            index: b,
            name: bs.name.clone(),
            teacher_in: t_name.clone(),
            teacher_in_shape: t_shape,
            teacher_out: o_name.clone(),
            teacher_out_shape: o_shape,
            child_in,
            in_widths,
            out: bs.out,
            stride: bs.stride,
            lr: bs.lr,
            cells,
        });
        child_in = [space.cell_out(bs, 0), ceil_div(child_in[1], bs.stride), ceil_div(child_in[2], bs.stride)];
        (t_name, t_shape) = (o_name, o_shape);
    }
    Ok(Resolved { space: space.clone(), blocks })
}

/// A teacher-free resolution for tests and docs: every cut has the child's own shapes.
pub fn resolve_standalone(space: &SearchSpace) -> Result<Resolved> {
    let mut shapes = vec![space.stem_out()];
    for b in &space.blocks {
        let p = *shapes.last().unwrap_or(&space.stem_out());
        shapes.push([b.out, ceil_div(p[1], b.stride), ceil_div(p[2], b.stride)]);
    }
    resolve(space, &|c: &CutRef| match c {
        CutRef::Auto(i) => Ok((format!("cut{i}"), *shapes.get(*i).ok_or_else(|| anyhow!("no cut #{i}"))?)),
        CutRef::Tensor(t) => bail!("tensor cut '{t}' needs a teacher"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> String {
        r#"{"name":"t","version":1,"input":[1,8,8],"classes":3,
            "stem":{"channels":4,"kernel":3,"stride":1,"cut":0},
            "blocks":[{"name":"b0","cut":1,"out":6,"stride":2,"cells":[{"layers":3}],"ops":["ir_k3_e3","skip"]}],
            "head":{"channels":8}}"#
            .into()
    }

    #[test]
    fn skip_only_where_shapes_agree() {
        let s = SearchSpace::parse(&tiny()).unwrap();
        let r = resolve_standalone(&s).unwrap();
        let ops: Vec<usize> = r.blocks[0].cells[0].layers.iter().map(|l| l.ops.len()).collect();
        // layer 0 changes channels and stride; 1 keeps them; the last writes the cut's width (6 = width).
        assert_eq!(ops, vec![1, 2, 2]);
        assert_eq!(r.blocks[0].cells[0].paths(), 4);
        let c = &r.blocks[0].cells[0];
        for i in 0..c.paths() {
            assert_eq!(c.path(i).len(), 3);
        }
        assert_eq!(c.path_id(&c.path(3)), "c0:ir_k3_e3-skip-skip");
    }

    #[test]
    fn schema_errors_name_the_field() {
        let bad = tiny().replace(r#""out":6"#, r#""out":"six""#);
        let e = format!("{:#}", SearchSpace::parse(&bad).unwrap_err());
        assert!(e.contains("blocks[0].out"), "{e}");
        let bad = tiny().replace(r#""ir_k3_e3""#, r#""ir_k4_e3""#);
        let e = format!("{:#}", SearchSpace::parse(&bad).unwrap_err());
        assert!(e.contains("blocks[0].ops[0]"), "{e}");
        let bad = tiny().replace(r#""head":{"channels":8}"#, r#""head":{"channels":8,"extra":1}"#);
        let e = format!("{:#}", SearchSpace::parse(&bad).unwrap_err());
        assert!(e.contains("head"), "{e}");
    }
}
