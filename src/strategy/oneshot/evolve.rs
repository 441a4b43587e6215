//! SPOS's evolutionary search over a trained one-shot supernet: a population of architectures
//! within the budget, each scored once (by the caller: held-out top-1 with inherited weights after
//! BN recalibration), the best `parents` kept every generation, children made by mutation (each
//! block's cell, or each layer's op, redrawn with probability `mutation_prob`) and crossover
//! (each block's cell and path from one of two parents). Everything is drawn from the seed.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::OneShotNet;
use crate::space::point::Point;
use crate::util::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvolveConfig {
    pub population: usize,
    pub generations: usize,
    pub parents: usize,
    pub mutations: usize,
    pub crossovers: usize,
    pub mutation_prob: f64,
    pub seed: u64,
}

impl Default for EvolveConfig {
    /// SPOS's reference settings scaled to small spaces: 50 → 20 population, 20 → 10 generations.
    fn default() -> EvolveConfig {
        EvolveConfig { population: 20, generations: 10, parents: 10, mutations: 10, crossovers: 10, mutation_prob: 0.1, seed: 0 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub key: String,
    pub point: Point,
    pub params: u64,
    pub macs: u64,
    pub score: f64,
    /// Generation it was first scored in.
    pub generation: usize,
}

fn mutate(net: &OneShotNet, p: &Point, prob: f64, rng: &mut Rng) -> Point {
    let blocks = net
        .space
        .blocks
        .iter()
        .zip(&p.blocks)
        .map(|(b, (c, path))| {
            if rng.uniform() < prob {
                let cell = rng.below(b.cells.len());
                (cell, b.cells[cell].layers.iter().map(|l| rng.below(l.ops.len())).collect())
            } else {
                let layers = &b.cells[*c].layers;
                (*c, path.iter().zip(layers).map(|(&o, l)| if rng.uniform() < prob { rng.below(l.ops.len()) } else { o }).collect())
            }
        })
        .collect();
    Point { blocks }
}

fn crossover(a: &Point, b: &Point, rng: &mut Rng) -> Point {
    Point { blocks: a.blocks.iter().zip(&b.blocks).map(|(x, y)| if rng.coin() { x.clone() } else { y.clone() }).collect() }
}

/// Runs the search; `score` rates one architecture (higher is better). Returns every scored
/// architecture (best first) — the first is the pick.
pub fn evolve(
    net: &mut OneShotNet,
    cfg: &EvolveConfig,
    score: &mut dyn FnMut(&mut OneShotNet, &Point) -> Result<f64>,
) -> Result<Vec<Scored>> {
    if cfg.population == 0 || cfg.parents == 0 {
        bail!("the evolutionary search needs a population and parents (got {} and {})", cfg.population, cfg.parents);
    }
    let mut rng = Rng::stream(cfg.seed, 0xE7014, 0);
    let mut scored: HashMap<String, Scored> = HashMap::new();
    let mut rate = |net: &mut OneShotNet, p: Point, generation: usize, scored: &mut HashMap<String, Scored>| -> Result<()> {
        let key = net.space.key(&p);
        if scored.contains_key(&key) {
            return Ok(());
        }
        let (params, macs) = net.cost(&p);
        let s = score(net, &p)?;
        scored.insert(key.clone(), Scored { key, point: p, params, macs, score: s, generation });
        Ok(())
    };
    // Initial population: distinct uniform draws within the budget.
    let mut seen = HashSet::new();
    let mut init = Vec::new();
    for _ in 0..cfg.population * 200 {
        if init.len() == cfg.population {
            break;
        }
        let p = net.space.random_point(&mut rng);
        let (params, macs) = net.cost(&p);
        if net.budget.fits(params, macs) && seen.insert(net.space.key(&p)) {
            init.push(p);
        }
    }
    for p in init {
        rate(net, p, 0, &mut scored)?;
    }
    let ranked = |scored: &HashMap<String, Scored>| {
        let mut v: Vec<Scored> = scored.values().cloned().collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.macs.cmp(&b.macs)).then(a.key.cmp(&b.key)));
        v
    };
    for g in 1..=cfg.generations {
        let parents: Vec<Point> = ranked(&scored).into_iter().take(cfg.parents).map(|s| s.point).collect();
        let mut children = Vec::new();
        let mut tries = 0;
        while children.len() < cfg.mutations + cfg.crossovers && tries < 100 * (cfg.mutations + cfg.crossovers) {
            tries += 1;
            let child = if children.len() < cfg.mutations {
                mutate(net, &parents[rng.below(parents.len())], cfg.mutation_prob, &mut rng)
            } else {
                crossover(&parents[rng.below(parents.len())], &parents[rng.below(parents.len())], &mut rng)
            };
            let (params, macs) = net.cost(&child);
            let key = net.space.key(&child);
            if net.budget.fits(params, macs) && !scored.contains_key(&key) && !children.iter().any(|c: &Point| net.space.key(c) == key) {
                children.push(child);
            }
        }
        for c in children {
            rate(net, c, g, &mut scored)?;
        }
    }
    Ok(ranked(&scored))
}
