//! Exact selection equals brute force on 200 random small instances (one to three budgets,
//! top-1 and top-3), and an impossible budget is a clear error.

use dnas::strategy::dna::select::{select, BlockChoices, Budget, Candidate};
use dnas::util::Rng;

fn instance(rng: &mut Rng) -> Vec<BlockChoices> {
    let blocks = 1 + rng.below(4);
    (0..blocks)
        .map(|b| BlockChoices {
            name: format!("b{b}"),
            candidates: (0..1 + rng.below(7))
                .map(|j| {
                    let macs = 1 + rng.below(100) as u64;
                    // Loss loosely anti-correlated with cost, with noise; some exact ties.
                    let loss = if rng.below(8) == 0 { 0.5 } else { (200.0 / (macs as f64 + 20.0) + rng.uniform()).round() / 4.0 };
                    Candidate { id: format!("c{j}"), loss, macs, params: 1 + rng.below(50) as u64, latency_ms: rng.uniform() * 3.0 }
                })
                .collect(),
        })
        .collect()
}

/// Every feasible selection's loss, sorted.
fn brute(blocks: &[BlockChoices], budget: &Budget) -> Vec<f64> {
    let mut out = Vec::new();
    let mut idx = vec![0usize; blocks.len()];
    loop {
        let pick = |f: &dyn Fn(&Candidate) -> f64| idx.iter().enumerate().map(|(k, &j)| f(&blocks[k].candidates[j])).sum::<f64>();
        let macs = pick(&|c| c.macs as f64) + budget.fixed_macs as f64;
        let params = pick(&|c| c.params as f64) + budget.fixed_params as f64;
        let ms = pick(&|c| c.latency_ms) + budget.fixed_ms;
        if budget.max_macs.is_none_or(|m| macs <= m as f64)
            && budget.max_params.is_none_or(|p| params <= p as f64)
            && budget.max_ms.is_none_or(|l| ms <= l + 1e-9)
        {
            out.push(pick(&|c| c.loss));
        }
        let mut k = 0;
        loop {
            if k == blocks.len() {
                out.sort_by(|a, b| a.partial_cmp(b).unwrap());
                return out;
            }
            idx[k] += 1;
            if idx[k] < blocks[k].candidates.len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
    }
}

#[test]
fn selection_equals_brute_force_on_200_random_instances() {
    let mut rng = Rng::new(2024);
    let (mut feasible, mut infeasible) = (0, 0);
    for case in 0..200 {
        let blocks = instance(&mut rng);
        let n = blocks.len() as u64;
        let budget = Budget {
            max_macs: Some(n * 20 + rng.below(150) as u64),
            max_params: (case % 2 == 0).then(|| n * 10 + rng.below(80) as u64),
            max_ms: (case % 3 == 0).then(|| rng.uniform() * 6.0),
            fixed_macs: rng.below(10) as u64,
            fixed_params: 0,
            fixed_ms: 0.0,
        };
        let want = brute(&blocks, &budget);
        let top = if case % 4 == 0 { 3 } else { 1 };
        match select(&blocks, &budget, top) {
            Ok((got, _)) => {
                feasible += 1;
                assert!(!want.is_empty(), "case {case}: select found {got:?} but nothing is feasible");
                for (i, s) in got.iter().enumerate() {
                    assert!((s.loss - want[i]).abs() < 1e-9, "case {case}: rank {i} loss {} vs brute force {}", s.loss, want[i]);
                    assert!(s.macs <= budget.max_macs.unwrap(), "case {case}: over the MAC budget");
                    let recomputed: f64 = s.picks.iter().enumerate().map(|(k, &j)| blocks[k].candidates[j].loss).sum();
                    assert!((recomputed - s.loss).abs() < 1e-9);
                }
                assert_eq!(got.len(), top.min(want.len()), "case {case}");
            }
            Err(e) => {
                infeasible += 1;
                assert!(want.is_empty(), "case {case}: select failed ({e:#}) but brute force found {:?}", want.first());
                assert!(format!("{e:#}").contains("no architecture fits"), "{e:#}");
            }
        }
    }
    assert!(feasible > 120 && infeasible > 0, "instances should cover both outcomes: {feasible} feasible, {infeasible} not");
}
