//! Deterministic, stratified samples of a search space for a truth set, and uniform samples
//! under a budget for the "pick vs random" comparison.
//!
//! Truth sample of N architectures (everything a function of the seed):
//! 1. A pool: the space's cheapest and dearest architectures, plus for every cell combination
//!    (depth per block) `pool_per_cells` uniform draws of the ops.
//! 2. The pool's two MACs extremes, then for every budget boundary the architecture just below
//!    and just above it (by MACs).
//! 3. The rest fill MACs targets spaced evenly between the extremes: for each target, among the
//!    unused pool points within half a step of it, the one whose cell combination (then total
//!    depth) has been taken least so far; the nearest unused point when the window is empty.
//! 4. Execution order spreads over MACs early (each next one the farthest in MACs rank from
//!    those before), so a partial truth set already covers the range and its first K are the
//!    ones retrained twice for the noise floor.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};

use crate::space::point::{Point, PointCost};
use crate::space::Resolved;
use crate::util::Rng;

#[derive(Clone, Debug)]
pub struct Sampled {
    pub point: Point,
    pub key: String,
    pub params: u64,
    pub macs: u64,
    /// Why it is in the sample ("MACs min", "below 7070000 MACs", "MACs target 3/20").
    pub why: String,
}

#[derive(Clone, Debug)]
pub struct TruthSampling {
    pub archs: usize,
    pub seed: u64,
    /// MACs budgets whose boundaries get an architecture on each side.
    pub near_macs: Vec<u64>,
    pub pool_per_cells: usize,
}

/// Cheapest (or dearest) op of every layer of `cells`: per-layer costs add up, so this is the
/// MACs extreme of that cell combination.
fn extreme_point(r: &Resolved, cells: &[usize], cost: &mut PointCost, dearest: bool) -> Result<Point> {
    let mut blocks = Vec::new();
    for (b, &c) in r.blocks.iter().zip(cells) {
        let mut path = Vec::new();
        for slot in &b.cells[c].layers {
            let mut best: Option<(u64, usize)> = None;
            for o in 0..slot.ops.len() {
                let (_, m) = cost.layer(r, slot, o)?;
                let better = match best {
                    None => true,
                    Some((bm, _)) => (dearest && m > bm) || (!dearest && m < bm),
                };
                if better {
                    best = Some((m, o));
                }
            }
            path.push(best.map_or(0, |(_, o)| o));
        }
        blocks.push((c, path));
    }
    Ok(Point { blocks })
}

fn pool(r: &Resolved, cost: &mut PointCost, opts: &TruthSampling) -> Result<Vec<Sampled>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |p: Point, cost: &mut PointCost, out: &mut Vec<Sampled>| -> Result<()> {
        let key = r.key(&p);
        if seen.insert(key.clone()) {
            let (params, macs) = cost.cost(r, &p)?;
            out.push(Sampled { point: p, key, params, macs, why: String::new() });
        }
        Ok(())
    };
    // The space's two MACs extremes (cheapest and dearest ops of the best cell combination).
    let mut lo: Option<(u64, Point)> = None;
    let mut hi: Option<(u64, Point)> = None;
    for cells in r.cell_combinations() {
        let a = extreme_point(r, &cells, cost, false)?;
        let b = extreme_point(r, &cells, cost, true)?;
        let (ma, mb) = (cost.cost(r, &a)?.1, cost.cost(r, &b)?.1);
        if lo.as_ref().is_none_or(|(m, _)| ma < *m) {
            lo = Some((ma, a));
        }
        if hi.as_ref().is_none_or(|(m, _)| mb > *m) {
            hi = Some((mb, b));
        }
    }
    for (_, p) in lo.into_iter().chain(hi) {
        push(p, cost, &mut out)?;
    }
    for (ci, cells) in r.cell_combinations().iter().enumerate() {
        for d in 0..opts.pool_per_cells {
            let mut rng = Rng::stream(opts.seed, 0x7057 + ci as u64, d as u64);
            push(r.random_point_in(cells, &mut rng), cost, &mut out)?;
        }
    }
    Ok(out)
}

/// The architectures taken so far and how often each cell combination and total depth occurs.
struct Chooser {
    used: Vec<bool>,
    chosen: Vec<(usize, String)>,
    cells: HashMap<Vec<usize>, usize>,
    depths: HashMap<usize, usize>,
    limit: usize,
}

impl Chooser {
    fn take(&mut self, r: &Resolved, pool: &[Sampled], i: usize, why: String) {
        if !self.used[i] && self.chosen.len() < self.limit {
            self.used[i] = true;
            *self.cells.entry(cells_of(&pool[i].point)).or_default() += 1;
            *self.depths.entry(depth_of(r, &pool[i].point)).or_default() += 1;
            self.chosen.push((i, why));
        }
    }
}

fn cells_of(p: &Point) -> Vec<usize> {
    p.blocks.iter().map(|(c, _)| *c).collect()
}

fn depth_of(r: &Resolved, p: &Point) -> usize {
    r.blocks.iter().zip(&p.blocks).map(|(b, (c, _))| b.cells[*c].layers.len()).sum()
}

/// The truth sample, in execution order (see the module docs).
pub fn truth_sample(r: &Resolved, cost: &mut PointCost, opts: &TruthSampling) -> Result<Vec<Sampled>> {
    let mut pool = pool(r, cost, opts)?;
    if pool.len() < opts.archs {
        bail!("the space has only {} distinct architectures in the pool; asked for {}", pool.len(), opts.archs);
    }
    if opts.archs < 2 {
        bail!("a truth set needs at least 2 architectures");
    }
    // Sort by MACs (then key) so every choice below is deterministic.
    pool.sort_by(|a, b| a.macs.cmp(&b.macs).then_with(|| a.key.cmp(&b.key)));
    let mut c =
        Chooser { used: vec![false; pool.len()], chosen: Vec::new(), cells: HashMap::new(), depths: HashMap::new(), limit: opts.archs };
    let last = pool.len() - 1;
    c.take(r, &pool, 0, "MACs min".into());
    c.take(r, &pool, last, "MACs max".into());
    for &b in &opts.near_macs {
        if let Some(i) = pool.iter().rposition(|s| s.macs <= b) {
            c.take(r, &pool, i, format!("just below {b} MACs"));
        }
        if let Some(i) = pool.iter().position(|s| s.macs > b) {
            c.take(r, &pool, i, format!("just above {b} MACs"));
        }
    }
    let (lo, hi) = (pool[0].macs as f64, pool[last].macs as f64);
    let remaining = opts.archs.saturating_sub(c.chosen.len());
    let step = (hi - lo) / (remaining + 1) as f64;
    for j in 0..remaining {
        let target = lo + step * (j + 1) as f64;
        let dist = |i: usize| (pool[i].macs as f64 - target).abs();
        let window: Vec<usize> = (0..pool.len()).filter(|&i| !c.used[i] && dist(i) <= step / 2.0).collect();
        let pick = if window.is_empty() {
            (0..pool.len()).filter(|&i| !c.used[i]).min_by(|&a, &b| dist(a).total_cmp(&dist(b)).then(a.cmp(&b)))
        } else {
            window.into_iter().min_by_key(|&i| {
                let p = &pool[i].point;
                (c.cells.get(&cells_of(p)).copied().unwrap_or(0), c.depths.get(&depth_of(r, p)).copied().unwrap_or(0), dist(i) as u64, i)
            })
        };
        if let Some(i) = pick {
            c.take(r, &pool, i, format!("MACs target {}/{remaining}", j + 1));
        }
    }
    let mut chosen = c.chosen;
    // Execution order: spread over MACs rank.
    chosen.sort_by_key(|(i, _)| *i);
    let order = spread_order(chosen.len());
    Ok(order
        .into_iter()
        .map(|k| {
            let (i, why) = &chosen[k];
            Sampled { why: why.clone(), ..pool[*i].clone() }
        })
        .collect())
}

/// 0, n−1, then repeatedly the index farthest from every index taken (lowest on ties).
pub fn spread_order(n: usize) -> Vec<usize> {
    if n == 0 {
        return vec![];
    }
    let mut order = vec![0];
    if n > 1 {
        order.push(n - 1);
    }
    while order.len() < n {
        let next = (0..n)
            .filter(|i| !order.contains(i))
            .max_by_key(|&i| (order.iter().map(|&o| o.abs_diff(i)).min().unwrap_or(0), std::cmp::Reverse(i)))
            .unwrap_or(0);
        order.push(next);
    }
    order
}

/// The band a band set is drawn from: MACs in `[min_macs, max_macs]`, params ≤ `max_params`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Band {
    pub min_macs: u64,
    pub max_macs: u64,
    pub max_params: Option<u64>,
}

impl Band {
    /// `lo..hi` as fractions of a budget's MACs (e.g. 0.8..1.0 of 7.07M).
    pub fn of_budget(max_macs: u64, max_params: Option<u64>, lo: f64, hi: f64) -> Band {
        Band { min_macs: (max_macs as f64 * lo).ceil() as u64, max_macs: (max_macs as f64 * hi).floor() as u64, max_params }
    }
    pub fn holds(&self, params: u64, macs: u64) -> bool {
        macs >= self.min_macs && macs <= self.max_macs && self.max_params.is_none_or(|m| params <= m)
    }
}

/// `k` distinct architectures drawn uniformly over the architectures of the space (each cell
/// combination weighted by how many it holds) among those inside `band`; draws outside it are
/// rejected. The sequence is a function of `seed` alone, so a smaller `k` is a prefix of a larger
/// one (the pilot's architectures are the truth's first). Errors when the band holds too few.
pub fn band_sample(r: &Resolved, cost: &mut PointCost, k: usize, seed: u64, band: Band) -> Result<Vec<Sampled>> {
    let mut out: Vec<Sampled> = Vec::new();
    let mut seen = HashSet::new();
    let tries = 20_000 * k.max(1);
    for t in 0..tries {
        if out.len() == k {
            break;
        }
        let p = r.uniform_arch_point(&mut Rng::stream(seed, 0xBA4D, t as u64));
        let (params, macs) = cost.cost(r, &p)?;
        if !band.holds(params, macs) {
            continue;
        }
        let key = r.key(&p);
        if seen.insert(key.clone()) {
            out.push(Sampled { point: p, key, params, macs, why: format!("band draw {t}") });
        }
    }
    if out.len() < k {
        bail!("only {} distinct architectures in the band {band:?} after {tries} draws (asked for {k})", out.len());
    }
    Ok(out)
}

/// `k` distinct architectures drawn uniformly (cells, then ops) among those within the budget,
/// seeded; a draw over the budget is rejected. Errors when the budget leaves too few.
pub fn random_within(
    r: &Resolved,
    cost: &mut PointCost,
    k: usize,
    seed: u64,
    max_macs: Option<u64>,
    max_params: Option<u64>,
) -> Result<Vec<Sampled>> {
    let out = random_within_up_to(r, cost, k, seed, max_macs, max_params)?;
    if out.len() < k {
        bail!("only {} distinct architectures within the budget after {} draws (asked for {k})", out.len(), 2000 * k.max(1));
    }
    Ok(out)
}

/// As [`random_within`], but returns what it found (possibly fewer than `k`) instead of failing.
pub fn random_within_up_to(
    r: &Resolved,
    cost: &mut PointCost,
    k: usize,
    seed: u64,
    max_macs: Option<u64>,
    max_params: Option<u64>,
) -> Result<Vec<Sampled>> {
    let mut out: Vec<Sampled> = Vec::new();
    let mut seen = HashSet::new();
    let tries = 2000 * k.max(1);
    for t in 0..tries {
        if out.len() == k {
            break;
        }
        let p = r.random_point(&mut Rng::stream(seed, 0x4A4D, t as u64));
        let (params, macs) = cost.cost(r, &p)?;
        if max_macs.is_some_and(|m| macs > m) || max_params.is_some_and(|m| params > m) {
            continue;
        }
        let key = r.key(&p);
        if seen.insert(key.clone()) {
            out.push(Sampled { point: p, key, params, macs, why: format!("random within budget (draw {t})") });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{resolve_standalone, SearchSpace};

    fn space() -> Resolved {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/spaces/fmnist_small.json")).unwrap();
        resolve_standalone(&SearchSpace::parse(&text).unwrap()).unwrap()
    }

    #[test]
    fn spread_order_covers_ends_first() {
        assert_eq!(spread_order(5), vec![0, 4, 2, 1, 3]);
        assert_eq!(spread_order(1), vec![0]);
        let o = spread_order(24);
        let mut s = o.clone();
        s.sort();
        assert_eq!(s, (0..24).collect::<Vec<_>>());
    }

    #[test]
    fn truth_sample_is_deterministic_stratified_and_spans_macs() {
        let r = space();
        let opts = TruthSampling { archs: 24, seed: 0, near_macs: vec![7_070_000], pool_per_cells: 64 };
        let a = truth_sample(&r, &mut PointCost::new(&r).unwrap(), &opts).unwrap();
        let b = truth_sample(&r, &mut PointCost::new(&r).unwrap(), &opts).unwrap();
        let keys = |v: &[Sampled]| v.iter().map(|s| s.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&a), keys(&b));
        assert_eq!(a.len(), 24);
        assert_eq!(keys(&a).into_iter().collect::<HashSet<_>>().len(), 24, "distinct");
        let other = truth_sample(&r, &mut PointCost::new(&r).unwrap(), &TruthSampling { seed: 1, ..opts.clone() }).unwrap();
        assert_ne!(keys(&a), keys(&other));
        let macs: Vec<u64> = a.iter().map(|s| s.macs).collect();
        let (lo, hi) = (*macs.iter().min().unwrap(), *macs.iter().max().unwrap());
        assert!(hi as f64 >= 2.0 * lo as f64, "MACs span {lo}..{hi}");
        // The first two are the MACs extremes; both sides of the budget are present.
        assert_eq!((a[0].macs, a[1].macs), (lo, hi));
        assert!(a.iter().any(|s| s.why.starts_with("just below")) && a.iter().any(|s| s.why.starts_with("just above")));
        // Every depth of every block occurs.
        for (bi, b) in r.blocks.iter().enumerate() {
            for c in 0..b.cells.len() {
                assert!(a.iter().any(|s| s.point.blocks[bi].0 == c), "block {bi} cell {c} missing");
            }
        }
        // Costs are the point's own.
        let mut cost = PointCost::new(&r).unwrap();
        for s in &a {
            assert_eq!(cost.cost(&r, &s.point).unwrap(), (s.params, s.macs));
        }
    }

    #[test]
    fn uniform_arch_draws_weight_cells_by_their_paths() {
        let r = space();
        // Block 1 (stage2) has cells of 1, 2 and 3 layers over 6 ops: 6, 36 and 216 paths.
        let n = 20_000;
        let mut counts = [0usize; 3];
        for t in 0..n {
            counts[r.uniform_arch_point(&mut Rng::stream(3, 1, t)).blocks[1].0] += 1;
        }
        let total: f64 = (6 + 36 + 216) as f64;
        for (c, want) in [6.0, 36.0, 216.0].iter().enumerate() {
            let got = counts[c] as f64 / n as f64;
            let expect = want / total;
            let sd = (expect * (1.0 - expect) / n as f64).sqrt();
            assert!((got - expect).abs() < 5.0 * sd, "cell {c}: {got:.4} vs {expect:.4}");
        }
    }

    #[test]
    fn band_sample_stays_in_the_band_and_grows_by_prefix() {
        let r = space();
        let mut cost = PointCost::new(&r).unwrap();
        let band = Band::of_budget(7_070_000, Some(250_000), 0.8, 1.0);
        let a = band_sample(&r, &mut cost, 12, 0, band).unwrap();
        assert_eq!(a.len(), 12);
        assert!(a.iter().all(|s| band.holds(s.params, s.macs) && s.macs >= 5_656_000 && s.macs <= 7_070_000));
        let b = band_sample(&r, &mut cost, 4, 0, band).unwrap();
        let keys = |v: &[Sampled]| v.iter().map(|s| s.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&b), keys(&a)[..4].to_vec(), "a smaller set is a prefix");
        assert_eq!(keys(&a).into_iter().collect::<HashSet<_>>().len(), 12, "distinct");
        assert_ne!(keys(&band_sample(&r, &mut cost, 4, 1, band).unwrap()), keys(&b));
        assert!(band_sample(&r, &mut cost, 1, 0, Band { min_macs: 1, max_macs: 2, max_params: None }).is_err());
    }

    #[test]
    fn random_within_respects_the_budget() {
        let r = space();
        let mut cost = PointCost::new(&r).unwrap();
        let v = random_within(&r, &mut cost, 10, 5, Some(7_070_000), Some(250_000)).unwrap();
        assert_eq!(v.len(), 10);
        assert!(v.iter().all(|s| s.macs <= 7_070_000 && s.params <= 250_000));
        let w = random_within(&r, &mut cost, 10, 5, Some(7_070_000), Some(250_000)).unwrap();
        assert_eq!(v.iter().map(|s| &s.key).collect::<Vec<_>>(), w.iter().map(|s| &s.key).collect::<Vec<_>>());
        assert!(random_within(&r, &mut cost, 3, 5, Some(1), None).is_err());
    }
}

/// The band set split in two halves by a fixed seed: defaults are chosen on `select` and
/// reported on `report`, never on the data they are scored on. Deterministic in (keys, seed)
/// whatever the order the keys come in; the halves differ in size by at most one.
pub fn split_halves(keys: &[String], seed: u64) -> (Vec<String>, Vec<String>) {
    let mut sorted: Vec<String> = keys.to_vec();
    sorted.sort();
    sorted.dedup();
    Rng::stream(seed, 0x5911, 0).shuffle(&mut sorted);
    let half = sorted.len().div_ceil(2);
    let report = sorted.split_off(half);
    (sorted, report)
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn the_held_out_split_is_deterministic_disjoint_and_covering() {
        let keys: Vec<String> = (0..33).map(|i| format!("arch-{i}")).collect();
        let (a, b) = split_halves(&keys, 7);
        let mut reversed = keys.clone();
        reversed.reverse();
        assert_eq!(split_halves(&reversed, 7), (a.clone(), b.clone()), "order of the input does not matter");
        assert_eq!((a.len(), b.len()), (17, 16));
        let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
        all.sort();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(all, want);
        assert!(a.iter().all(|k| !b.contains(k)));
        assert_ne!(split_halves(&keys, 8).0, a, "another seed, another split");
    }
}
