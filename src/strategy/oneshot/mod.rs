//! The one-shot supernet of SPOS and Cream of the Crop: one network for the whole space — the
//! fixed stem, every block's cells × layers × ops at the child's own shapes, the fixed head and
//! classifier — trained with labels, one sampled path per step. Weights are shared between all
//! paths that use the same op at the same layer; the ops a step does not sample get no update
//! (`active`), as in PyTorch when their gradients are `None`.
//!
//! Paths are drawn from `Rng::stream(seed, tag, step)`: uniformly (cell per block, then op per
//! layer), rejected when the child is outside the budget (dnas's exact per-layer MACs/params, the
//! counts selection adds up), so a resumed run samples the same paths.

pub mod board;
pub mod evolve;
pub mod learner;
pub mod loss;
pub mod meta;
pub mod predict;
pub mod search;

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use tch::{Device, Tensor as T};

use crate::space::arch::fixed_graphs_seeded;
use crate::space::layer::layer_graph;
use crate::space::point::{Point, PointCost};
use crate::space::{LayerOp, Resolved};
use crate::train::Trainable;
use crate::util::Rng;

pub use crate::space::limits::PathBudget;

/// Scope (and weight-name prefix) of one op of one layer of the one-shot net.
pub fn unit_scope(block: usize, cell: usize, layer: usize, op: LayerOp) -> String {
    format!("oneshot.blocks.{block}.cells.{cell}.layers.{layer}.{op}")
}

/// One value per op of every layer of every cell of every block: `[block][cell][layer][op]`.
pub type PerOp<T> = Vec<Vec<Vec<Vec<T>>>>;

pub struct OneShotNet {
    pub space: Resolved,
    pub stem: Trainable,
    /// `units[block][cell][layer][op]` (`None` = skip).
    pub units: PerOp<Option<Trainable>>,
    pub head: Trainable,
    pub budget: PathBudget,
    seed: u64,
    /// (params, MACs) of the fixed part and of every op of every layer, for pure cost lookups.
    fixed: (u64, u64),
    layer_cost: PerOp<(u64, u64)>,
}

/// Draws before [`OneShotNet::sample`] gives up on a budget.
const MAX_DRAWS: usize = 10_000;

impl OneShotNet {
    pub fn new(space: &Resolved, budget: PathBudget, seed: u64, device: Device) -> Result<OneShotNet> {
        let s = &space.space;
        if let Some((name, widths)) = s.varied_outs() {
            bail!(
                "block '{name}': its cells write different widths ({widths:?}); a one-shot network shares one set of layers and needs one \
                 width per block boundary (give the cells one 'out', or search this space with dna)"
            );
        }
        let (stem_g, head_g) =
            fixed_graphs_seeded(&s.stem, &s.head, s.input, s.head_in(), s.classes, s.se, Rng::stream(seed, 0x57E4, 0).next_u64());
        let stem = Trainable::new(stem_g, device).context("one-shot stem")?;
        let head = Trainable::new(head_g, device).context("one-shot head")?;
        let mut cost = PointCost::new(space)?;
        let fixed = cost.fixed();
        let (mut units, mut layer_cost) = (Vec::new(), Vec::new());
        for b in &space.blocks {
            let (mut bu, mut bc) = (Vec::new(), Vec::new());
            for cell in &b.cells {
                let (mut cu, mut cc) = (Vec::new(), Vec::new());
                for (l, slot) in cell.layers.iter().enumerate() {
                    let (mut lu, mut lc) = (Vec::new(), Vec::new());
                    for (o, &op) in slot.ops.iter().enumerate() {
                        let scope = unit_scope(b.index, cell.index, l, op);
                        let unit_seed = Rng::stream(seed, 0x0A5E + b.index as u64, ((cell.index * 64 + l) * 64 + o) as u64).next_u64();
                        lu.push(match layer_graph(&scope, op, &slot.child, s.se, unit_seed) {
                            Some(g) => Some(Trainable::new(g, device).with_context(|| format!("layer '{scope}'"))?),
                            None => None,
                        });
                        lc.push(cost.layer(space, slot, o)?);
                    }
                    cu.push(lu);
                    cc.push(lc);
                }
                bu.push(cu);
                bc.push(cc);
            }
            units.push(bu);
            layer_cost.push(bc);
        }
        let net = OneShotNet { space: space.clone(), stem, units, head, budget, seed, fixed, layer_cost };
        // The cheapest path must fit, or nothing can be sampled.
        net.sample(0).context("the one-shot budget")?;
        Ok(net)
    }

    /// (params, MACs) of the child of `p`, from the cost tables (no graph is built).
    pub fn cost(&self, p: &Point) -> (u64, u64) {
        let (mut params, mut macs) = self.fixed;
        for (b, (c, path)) in p.blocks.iter().enumerate() {
            for (l, &o) in path.iter().enumerate() {
                let (lp, lm) = self.layer_cost[b][*c][l][o];
                params += lp;
                macs += lm;
            }
        }
        (params, macs)
    }

    /// The path trained at `step`: the first uniform draw of the step's stream that fits the budget.
    pub fn sample(&self, step: usize) -> Result<Point> {
        let mut rng = Rng::stream(self.seed, 0x5905, step as u64);
        for _ in 0..MAX_DRAWS {
            let p = self.space.random_point(&mut rng);
            let (params, macs) = self.cost(&p);
            if self.budget.fits(params, macs) {
                return Ok(p);
            }
        }
        bail!("no path within {:?} in {MAX_DRAWS} uniform draws: the budget is below (almost) all of the space", self.budget)
    }

    fn check(&self, p: &Point) -> Result<()> {
        if p.blocks.len() != self.units.len() {
            bail!("a path of {} blocks for a one-shot net of {}", p.blocks.len(), self.units.len());
        }
        for (b, (c, path)) in p.blocks.iter().enumerate() {
            let cells = &self.units[b];
            if *c >= cells.len() || path.len() != cells[*c].len() || path.iter().zip(&cells[*c]).any(|(&o, ops)| o >= ops.len()) {
                bail!("block {b}: cell {c} / path {path:?} is not in the space");
            }
        }
        Ok(())
    }

    /// Logits of path `p` on `x`.
    pub fn forward(&self, p: &Point, x: &T, train: bool) -> Result<T> {
        self.check(p)?;
        let mut h = self.stem.forward(x, train)?;
        for (b, (c, path)) in p.blocks.iter().enumerate() {
            for (l, &o) in path.iter().enumerate() {
                if let Some(m) = &self.units[b][*c][l][o] {
                    h = m.forward(&h, train)?;
                }
            }
        }
        self.head.forward(&h, train)
    }

    /// Every module with whether path `p` uses it, in [`OneShotNet::parameters`] order.
    fn modules_on(&self, p: Option<&Point>) -> Vec<(&Trainable, bool)> {
        let mut v = vec![(&self.stem, true)];
        for (b, cells) in self.units.iter().enumerate() {
            for (c, layers) in cells.iter().enumerate() {
                for (l, ops) in layers.iter().enumerate() {
                    for (o, m) in ops.iter().enumerate() {
                        if let Some(m) = m {
                            let on = p.is_none_or(|p| p.blocks[b].0 == c && p.blocks[b].1[l] == o);
                            v.push((m, on));
                        }
                    }
                }
            }
        }
        v.push((&self.head, true));
        v
    }

    fn modules_mut(&mut self) -> Vec<&mut Trainable> {
        let mut v = vec![&mut self.stem];
        for m in self.units.iter_mut().flatten().flatten().flatten().flatten() {
            v.push(m);
        }
        v.push(&mut self.head);
        v
    }

    /// The modules path `p` runs through (stem, its ops, head).
    pub fn path_modules_mut(&mut self, p: &Point) -> Vec<&mut Trainable> {
        let mut v = vec![&mut self.stem];
        for (b, cells) in self.units.iter_mut().enumerate() {
            let (c, path) = &p.blocks[b];
            for (l, ops) in cells[*c].iter_mut().enumerate() {
                if let Some(m) = ops[path[l]].as_mut() {
                    v.push(m);
                }
            }
        }
        v.push(&mut self.head);
        v
    }

    pub fn parameters(&self) -> Vec<(String, T, bool)> {
        self.modules_on(None).into_iter().flat_map(|(m, _)| m.parameters()).collect()
    }

    /// Per parameter: is it on path `p`?
    pub fn active(&self, p: &Point) -> Vec<bool> {
        self.modules_on(Some(p)).into_iter().flat_map(|(m, on)| std::iter::repeat_n(on, m.param_count())).collect()
    }

    /// The parameters path `p` trains (stem, its ops, head), in [`OneShotNet::parameters`] order.
    pub fn path_parameters(&self, p: &Point) -> Vec<T> {
        self.modules_on(Some(p)).into_iter().filter(|(_, on)| *on).flat_map(|(m, _)| m.parameters()).map(|(_, t, _)| t).collect()
    }

    /// A copy of everything path `p` holds (parameters and BatchNorm statistics), to put back
    /// with [`OneShotNet::restore`] after a forward or simulated update that must leave no trace.
    pub fn snapshot(&self, p: &Point) -> Result<Vec<(T, T)>> {
        self.copy_of(p, |m| m.state())
    }

    /// As [`OneShotNet::snapshot`], BatchNorm statistics only: all a no-grad forward changes.
    pub fn snapshot_buffers(&self, p: &Point) -> Result<Vec<(T, T)>> {
        self.copy_of(p, |m| m.buffers())
    }

    fn copy_of(&self, p: &Point, of: impl Fn(&Trainable) -> Vec<(String, T)>) -> Result<Vec<(T, T)>> {
        let _g = tch::no_grad_guard();
        self.modules_on(Some(p))
            .into_iter()
            .filter(|(_, on)| *on)
            .flat_map(|(m, _)| of(m))
            .map(|(_, t)| Ok((t.shallow_clone(), t.f_detach()?.copy())))
            .collect()
    }

    pub fn restore(snapshot: &[(T, T)]) -> Result<()> {
        let _g = tch::no_grad_guard();
        for (dst, src) in snapshot {
            dst.shallow_clone().f_copy_(src)?;
        }
        Ok(())
    }

    pub fn state(&self) -> Vec<(String, T)> {
        self.modules_on(None).into_iter().flat_map(|(m, _)| m.state()).collect()
    }

    pub fn load_state(&mut self, named: &HashMap<String, T>) -> Result<()> {
        for m in self.modules_mut() {
            m.load_state(named)?;
        }
        Ok(())
    }

    pub fn device(&self) -> Device {
        self.stem.device()
    }

    /// BatchNorm recalibration for path `p` (SPOS): running statistics of every module on the
    /// path replaced by those of `x` (one training-mode forward with momentum 1, no gradients).
    pub fn recalibrate(&mut self, p: &Point, x: &T) -> Result<()> {
        let _g = tch::no_grad_guard();
        let mut saved = Vec::new();
        for m in self.path_modules_mut(p) {
            saved.push(m.bn_momentum);
            m.bn_momentum = 1.0;
        }
        let r = self.forward(p, x, true).map(|_| ());
        for (m, s) in self.path_modules_mut(p).into_iter().zip(saved) {
            m.bn_momentum = s;
        }
        r
    }
}

/// A fixed training batch (BN recalibration) and the first held-out batches, as tensors: what
/// every path is scored on (a few batches, so they are decoded once, not once per path).
pub struct EvalData {
    pub recal: T,
    pub held: Vec<(T, T)>,
}

impl EvalData {
    pub fn load(spec: &crate::data::DataSpec, batches: usize, batch: usize, device: Device) -> Result<EvalData> {
        use crate::data::{loader::LoaderConfig, Dataset, Loader};
        let splits = crate::data::open(spec)?;
        let chw = splits.train.shape();
        let recal_loader = Loader::new(std::sync::Arc::new(splits.train.clone()), LoaderConfig::eval(batch));
        let first = recal_loader.epoch(0, 0).next().context("the training split is empty")?;
        let (recal, _) = crate::train::classify::tensors(&first, chw, device)?;
        let held_loader = Loader::new(std::sync::Arc::new(splits.held_out.clone()), LoaderConfig::eval(batch));
        let held = held_loader
            .epoch(0, 0)
            .take(batches)
            .filter(|b| b.n > 0)
            .map(|b| crate::train::classify::tensors(&b, chw, device))
            .collect::<Result<Vec<_>>>()?;
        if held.is_empty() {
            bail!("the held-out split is empty (--held-out must be > 0 to score paths)");
        }
        Ok(EvalData { recal, held })
    }
}

/// Top-1 of path `p` with inherited weights: BatchNorm recalibrated on `recal` (a fixed training
/// batch), then the held-out batches `(x, y)` in eval mode.
pub fn inherited_top1(net: &mut OneShotNet, p: &Point, recal: &T, held: &[(T, T)]) -> Result<f64> {
    net.recalibrate(p, recal)?;
    let _g = tch::no_grad_guard();
    let (mut correct, mut total) = (0i64, 0i64);
    for (x, y) in held {
        let logits = net.forward(p, x, false)?;
        correct += logits.f_argmax(1, false)?.f_eq_tensor(y)?.f_sum(tch::Kind::Int64)?.f_int64_value(&[])?;
        total += y.size()[0];
    }
    if total == 0 {
        bail!("no held-out samples to score paths on");
    }
    Ok(correct as f64 / total as f64)
}

/// A two-block space small enough for unit tests (cells of 1 and 2 layers, a skip op).
#[cfg(test)]
pub(crate) const TEST_SPACE: &str = r#"{"name":"t","version":1,"input":[1,8,8],"classes":3,
    "stem":{"channels":4,"kernel":3,"stride":1,"cut":0},
    "blocks":[{"name":"b0","cut":1,"out":6,"stride":2,"cells":[{"layers":1},{"layers":2}],"ops":["ir_k3_e3","ir_k5_e3"]},
              {"name":"b1","cut":2,"out":8,"stride":1,"cells":[{"layers":2}],"ops":["ir_k3_e3","skip"]}],
    "head":{"channels":8}}"#;

#[cfg(test)]
pub(crate) fn test_net(budget: PathBudget) -> OneShotNet {
    let r = crate::space::resolve_standalone(&crate::space::SearchSpace::parse(TEST_SPACE).unwrap()).unwrap();
    OneShotNet::new(&r, budget, 3, Device::Cpu).unwrap()
}

#[cfg(test)]
mod tests {
    use super::learner::{CreamConfig, Matching, OneShotLearner};
    use super::*;
    use crate::data::Batch;
    use crate::space::{resolve_standalone, SearchSpace};
    use crate::train::optim::{OptimConfig, Optimizer};
    use crate::train::Learner;

    const SPACE: &str = TEST_SPACE;

    fn net(budget: PathBudget) -> OneShotNet {
        test_net(budget)
    }

    fn batch(n: usize, seed: u64) -> Batch {
        let mut rng = Rng::new(seed);
        Batch {
            index: 0,
            n,
            x: (0..n * 64).map(|_| rng.normal() as f32).collect(),
            y: (0..n).map(|i| (i % 3) as i64).collect(),
            skipped: vec![],
        }
    }

    fn values(l: &OneShotLearner) -> Vec<(String, Vec<f32>)> {
        l.net.parameters().into_iter().map(|(k, t, _)| (k, Vec::<f32>::try_from(t.detach().flatten(0, -1)).unwrap())).collect()
    }

    #[test]
    fn a_step_moves_exactly_the_sampled_path_and_paths_fit_the_budget() {
        for cream in [None, Some(CreamConfig { warmup_steps: 0, board_size: 3, margin: 0.05, matching: Matching::Top1, meta: None })] {
            let mut l = OneShotLearner::new(net(PathBudget::default()), [1, 8, 8], 0.0, cream.clone());
            let mut opt = Optimizer::new(OptimConfig::parse("adamw").unwrap());
            for step in 0..3 {
                let before = values(&l);
                let active = l.active(step);
                let params = l.parameters();
                assert_eq!(active.len(), params.len());
                let loss = l.loss(&batch(6, step as u64), step).unwrap();
                loss.backward();
                opt.step(&params, 1e-2, &[], &active, 1e-4).unwrap();
                let after = values(&l);
                let path = l.net.sample(step).unwrap();
                let mut moved = 0;
                for (((name, a), (_, b)), on) in before.iter().zip(&after).zip(&active) {
                    if *on {
                        moved += usize::from(a != b);
                    } else {
                        assert!(a == b, "step {step}: '{name}' is off path {path:?} but changed");
                    }
                }
                assert!(moved > 0, "step {step}: nothing on the path moved");
                // Stem and head are on every path; only the sampled ops of the blocks are.
                let on: Vec<&String> = params.iter().zip(&active).filter(|(_, a)| **a).map(|((n, _, _), _)| n).collect();
                assert!(
                    on.iter().any(|n| n.starts_with("stem")) && on.iter().any(|n| n.starts_with("head") || n.starts_with("classifier"))
                );
                for (b, (c, p)) in path.blocks.iter().enumerate() {
                    for (k, &o) in p.iter().enumerate() {
                        let op = l.net.space.blocks[b].cells[*c].layers[k].ops[o];
                        let scope = unit_scope(b, *c, k, op);
                        assert_eq!(on.iter().any(|n| n.starts_with(&scope)), !op.is_skip(), "{scope}");
                    }
                }
            }
            if cream.is_some() {
                assert!(!l.board.entries.is_empty() && l.distilled_steps >= 1, "the board filled and taught");
                // The board survives a checkpoint round trip.
                let extra = l.extra_state();
                let mut l2 = OneShotLearner::new(net(PathBudget::default()), [1, 8, 8], 0.0, cream.clone());
                l2.load_extra_state(&extra).unwrap();
                assert_eq!(l2.board, l.board);
            }
        }
        // Budgeted sampling: every drawn path fits, and an impossible budget is an error.
        let n = net(PathBudget::default());
        let macs: Vec<u64> = (0..50).map(|s| n.cost(&n.sample(s).unwrap()).1).collect();
        let mid = (macs.iter().min().unwrap() + macs.iter().max().unwrap()) / 2;
        let b = net(PathBudget { max_macs: Some(mid), max_params: None });
        assert!((0..50).all(|s| b.cost(&b.sample(s).unwrap()).1 <= mid));
        let r = resolve_standalone(&SearchSpace::parse(SPACE).unwrap()).unwrap();
        assert!(OneShotNet::new(&r, PathBudget { max_macs: Some(1), max_params: None }, 0, Device::Cpu).is_err());
    }

    #[test]
    fn cells_of_different_output_widths_are_refused_by_name() {
        let mut space = SearchSpace::parse(SPACE).unwrap();
        space.blocks[0].cells[0].out = Some(space.blocks[0].out + 2);
        let r = resolve_standalone(&space).unwrap();
        let e = format!("{:#}", OneShotNet::new(&r, PathBudget::default(), 0, Device::Cpu).err().expect("refused"));
        assert!(e.contains(&format!("block '{}'", space.blocks[0].name)) && e.contains("one width per block boundary"), "{e}");
    }

    #[test]
    fn the_cost_table_equals_the_built_child() {
        let n = net(PathBudget::default());
        for s in 0..5 {
            let p = n.sample(s).unwrap();
            let arch = n.space.arch(&p, "x", "").unwrap();
            let built = crate::space::arch::graph_cost(&crate::space::arch::build_child(&arch, 0).unwrap()).unwrap();
            assert_eq!(n.cost(&p), built);
        }
    }
}
