//! MF-KD (Trofimov et al., "Multi-fidelity Neural Architecture Search with Knowledge
//! Distillation"): every candidate is trained alone — no weight sharing — but cheaply, on a
//! fraction of the training set for a few epochs with cross-entropy plus distillation from the
//! teacher (the low fidelity), and scored by its held-out top-1. A Gaussian-process surrogate
//! over the architecture encoding ([`encode`]) proposes the next candidates by UCB (mean + β·std)
//! from a pool of random architectures within the budget; the best low-fidelity ones are then
//! promoted to the higher fidelities, and the pick is the best at the highest fidelity run.
//!
//! The loop is deterministic given the seed and the scores, and an [`Evaluator`] returns the
//! stored score of an evaluation that already finished, so a killed search re-derives the same
//! proposals and continues with the first unfinished evaluation.

pub mod encode;
pub mod lowfi;
pub mod run;
pub mod surrogate;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::space::point::{Point, PointCost};
use crate::space::Resolved;
use crate::strategy::oneshot::PathBudget;
use crate::study::sample::{random_within_up_to, Sampled};
use surrogate::{best_by_ucb, Gp, Surrogate};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MfkdConfig {
    /// Random architectures evaluated before the surrogate is used (reference `init_samples` 5).
    pub init: usize,
    /// Low-fidelity evaluations in all (reference `max_samples` 10).
    pub evals: usize,
    /// Proposals per surrogate round (the UCB best, as one batch).
    pub per_round: usize,
    /// How many of the best at one fidelity are evaluated at the next.
    pub promote: usize,
    /// UCB exploration weight (reference 0.5).
    pub beta: f64,
    /// Random architectures within the budget that the acquisition ranks.
    pub pool: usize,
    /// Observation noise of the surrogate, as a fraction of the scores' standard deviation.
    pub noise: f64,
    pub seed: u64,
}

/// One evaluation, as `history.json` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// 0 = the random start; then one per surrogate round; promotions last.
    pub round: usize,
    pub fidelity: usize,
    pub key: String,
    pub macs: u64,
    pub params: u64,
    pub point: Point,
    pub why: String,
    /// The surrogate's (mean, std) for it before it was evaluated (surrogate rounds only).
    pub predicted: Option<(f64, f64)>,
    /// Held-out top-1 at this fidelity.
    pub score: f64,
    pub seconds: f64,
    /// Finished before this invocation (read back, not trained).
    pub reused: bool,
}

/// An evaluation the search has decided on: (pool index, why, the surrogate's (mean, std)).
type Planned = (usize, String, Option<(f64, f64)>);

/// What one evaluation gave back.
pub struct Scored {
    pub score: f64,
    pub seconds: f64,
    pub reused: bool,
}

/// Scores architectures at a fidelity: trains them unless the evaluation already finished.
pub trait Evaluator {
    fn evaluate(&mut self, s: &Sampled, fidelity: usize) -> Result<Scored>;
    /// One batch the search needs before it can go on (the random start, a UCB round, the
    /// promotions), in order; an evaluator may train them at once (separate processes). The
    /// default trains them one after the other.
    fn evaluate_batch(&mut self, batch: &[&Sampled], fidelity: usize) -> Result<Vec<Scored>> {
        batch.iter().map(|s| self.evaluate(s, fidelity)).collect()
    }
}

pub struct SearchResult {
    pub history: Vec<Evaluation>,
    /// The best at the highest fidelity evaluated, and that fidelity.
    pub pick: Sampled,
    pub pick_score: f64,
    pub pick_fidelity: usize,
}

/// Runs MF-KD over `fidelities` fidelities (0 = lowest) under the budget; `on_eval` sees the
/// history after every evaluation (to write it).
pub fn search(
    r: &Resolved,
    cost: &mut PointCost,
    cfg: &MfkdConfig,
    budget: PathBudget,
    fidelities: usize,
    ev: &mut dyn Evaluator,
    on_eval: &mut dyn FnMut(&[Evaluation]) -> Result<()>,
) -> Result<SearchResult> {
    if fidelities == 0 || cfg.evals == 0 || cfg.init == 0 {
        bail!("MF-KD needs at least one fidelity, one initial and one evaluation in all");
    }
    // The pool's own stream (not `study pick`'s random draws of the same seed).
    let pool_seed = crate::util::Rng::stream(cfg.seed, 0x3FD0, 0).next_u64();
    let pool = random_within_up_to(r, cost, cfg.pool.max(cfg.evals), pool_seed, budget.max_macs, budget.max_params)?;
    if pool.len() < cfg.init.min(cfg.evals) {
        bail!("only {} distinct architectures fit the budget; MF-KD starts with {}", pool.len(), cfg.init);
    }
    let enc: Vec<Vec<f64>> = pool.iter().map(|s| encode::encode(r, &s.point)).collect();
    let mut history: Vec<Evaluation> = Vec::new();
    let mut low: Vec<(usize, f64)> = Vec::new(); // (pool index, score) at fidelity 0
    let evals = cfg.evals.min(pool.len());
    // Evaluates a batch of pool indices at one fidelity, appending to the history in order.
    let mut record =
        |history: &mut Vec<Evaluation>, batch: &[Planned], fidelity: usize, round: usize, ev: &mut dyn Evaluator| -> Result<Vec<f64>> {
            let samples: Vec<&Sampled> = batch.iter().map(|(i, _, _)| &pool[*i]).collect();
            let got = ev.evaluate_batch(&samples, fidelity)?;
            if got.len() != batch.len() {
                bail!("the evaluator returned {} scores for {} evaluations", got.len(), batch.len());
            }
            for ((i, why, predicted), g) in batch.iter().zip(&got) {
                let s = &pool[*i];
                history.push(Evaluation {
                    round,
                    fidelity,
                    key: s.key.clone(),
                    macs: s.macs,
                    params: s.params,
                    point: s.point.clone(),
                    why: why.clone(),
                    predicted: *predicted,
                    score: g.score,
                    seconds: g.seconds,
                    reused: g.reused,
                });
            }
            on_eval(history)?;
            Ok(got.iter().map(|g| g.score).collect())
        };
    let start: Vec<Planned> = (0..cfg.init.min(evals)).map(|i| (i, "random start".into(), None)).collect();
    let scores = record(&mut history, &start, 0, 0, ev)?;
    low.extend(start.iter().map(|b| b.0).zip(scores));
    let mut round = 0;
    while low.len() < evals {
        round += 1;
        let xs: Vec<Vec<f64>> = low.iter().map(|&(i, _)| enc[i].clone()).collect();
        let ys: Vec<f64> = low.iter().map(|&(_, s)| s).collect();
        let gp = Gp::fit(&xs, &ys, cfg.noise)?;
        let open: Vec<usize> = (0..pool.len()).filter(|i| !low.iter().any(|(j, _)| j == i)).collect();
        let cand: Vec<Vec<f64>> = open.iter().map(|&i| enc[i].clone()).collect();
        let take = cfg.per_round.max(1).min(evals - low.len());
        let batch: Vec<Planned> = best_by_ucb(&gp, &cand, cfg.beta, take)
            .into_iter()
            .map(|k| (open[k], format!("UCB round {round}"), Some(gp.predict(&enc[open[k]]))))
            .collect();
        let scores = record(&mut history, &batch, 0, round, ev)?;
        low.extend(batch.iter().map(|b| b.0).zip(scores));
    }
    // Promotions: the best `promote` of each fidelity go one fidelity up.
    let mut current = low;
    let mut fidelity = 0;
    for f in 1..fidelities {
        if cfg.promote == 0 {
            break;
        }
        round += 1;
        let mut order = current.clone();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let batch: Vec<Planned> = order
            .iter()
            .take(cfg.promote)
            .map(|&(i, prev)| (i, format!("promoted: {:.2}% at fidelity {}", 100.0 * prev, f - 1), None))
            .collect();
        let scores = record(&mut history, &batch, f, round, ev)?;
        current = batch.iter().map(|b| b.0).zip(scores).collect();
        fidelity = f;
    }
    let &(best, pick_score) =
        current.iter().max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0))).expect("at least one evaluation at every fidelity");
    Ok(SearchResult { history, pick: pool[best].clone(), pick_score, pick_fidelity: fidelity })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::space::{resolve_standalone, SearchSpace};

    /// A synthetic score (more MACs and deeper first cells score higher, plus a fixed per-key
    /// wobble) stored in `disk`; `fail_after` simulates a kill after that many trainings.
    struct Synthetic<'a> {
        disk: &'a mut HashMap<(String, usize), f64>,
        trained: Vec<(String, usize)>,
        fail_after: Option<usize>,
        max_macs: u64,
    }

    impl Evaluator for Synthetic<'_> {
        fn evaluate(&mut self, s: &Sampled, fidelity: usize) -> Result<Scored> {
            assert!(s.macs <= self.max_macs, "{} proposed outside the budget ({} MACs)", s.key, s.macs);
            let k = (s.key.clone(), fidelity);
            if let Some(&score) = self.disk.get(&k) {
                return Ok(Scored { score, seconds: 0.0, reused: true });
            }
            if self.fail_after == Some(self.trained.len()) {
                bail!("killed");
            }
            let wobble = (crate::util::sha256_hex(s.key.as_bytes()).as_bytes()[0] % 16) as f64 / 1600.0;
            let score = 0.5 + s.macs as f64 / 4e7 + 0.05 * s.point.blocks[0].0 as f64 + wobble + 0.01 * fidelity as f64;
            self.disk.insert(k.clone(), score);
            self.trained.push(k);
            Ok(Scored { score, seconds: 1.0, reused: false })
        }
    }

    /// Records the batches the search hands over, evaluating through [`Synthetic`].
    struct Batches<'a> {
        inner: Synthetic<'a>,
        sizes: Vec<(usize, usize)>,
    }

    impl Evaluator for Batches<'_> {
        fn evaluate(&mut self, s: &Sampled, fidelity: usize) -> Result<Scored> {
            self.inner.evaluate(s, fidelity)
        }
        fn evaluate_batch(&mut self, batch: &[&Sampled], fidelity: usize) -> Result<Vec<Scored>> {
            self.sizes.push((fidelity, batch.len()));
            batch.iter().map(|s| self.inner.evaluate(s, fidelity)).collect()
        }
    }

    #[test]
    fn hands_over_the_start_each_round_and_the_promotions_as_batches() {
        let r = resolve_standalone(&SearchSpace::parse(crate::strategy::oneshot::TEST_SPACE).unwrap()).unwrap();
        let mut cost = PointCost::new(&r).unwrap();
        let mut disk = HashMap::new();
        let inner = Synthetic { disk: &mut disk, trained: vec![], fail_after: None, max_macs: u64::MAX };
        let mut ev = Batches { inner, sizes: vec![] };
        let got = search(&r, &mut cost, &cfg(), PathBudget::default(), 2, &mut ev, &mut |_| Ok(())).unwrap();
        // init 3, then 4 more by UCB in rounds of 2, then the best 2 promoted.
        assert_eq!(ev.sizes, [(0, 3), (0, 2), (0, 2), (1, 2)]);
        assert_eq!(got.history.len(), 9);
    }

    fn cfg() -> MfkdConfig {
        MfkdConfig { init: 3, evals: 7, per_round: 2, promote: 2, beta: 0.5, pool: 40, noise: 0.1, seed: 4 }
    }

    #[test]
    fn stays_within_the_budget_promotes_and_resumes_without_redoing_evaluations() {
        let r = resolve_standalone(&SearchSpace::parse(crate::strategy::oneshot::TEST_SPACE).unwrap()).unwrap();
        let mut cost = PointCost::new(&r).unwrap();
        // The budget: the median MACs of the space's architectures.
        let all = random_within_up_to(&r, &mut cost, 200, 1, None, None).unwrap();
        let mut macs: Vec<u64> = all.iter().map(|s| s.macs).collect();
        macs.sort();
        let max_macs = macs[macs.len() / 2];
        let mut disk = HashMap::new();
        let mut ev = Synthetic { disk: &mut disk, trained: vec![], fail_after: None, max_macs };
        let full =
            search(&r, &mut cost, &cfg(), PathBudget { max_macs: Some(max_macs), max_params: None }, 2, &mut ev, &mut |_| Ok(())).unwrap();
        assert_eq!(ev.trained.len(), 9, "7 low-fidelity + 2 promoted");
        let h = &full.history;
        assert_eq!(h.iter().filter(|e| e.fidelity == 0).count(), 7);
        assert!(h[..3].iter().all(|e| e.predicted.is_none()) && h[3..7].iter().all(|e| e.predicted.is_some()));
        // The promoted are the two best low-fidelity scores; the pick is the best promoted.
        let mut lows: Vec<&Evaluation> = h.iter().filter(|e| e.fidelity == 0).collect();
        lows.sort_by(|a, b| b.score.total_cmp(&a.score));
        let promoted: Vec<&str> = h.iter().filter(|e| e.fidelity == 1).map(|e| e.key.as_str()).collect();
        assert_eq!(promoted, [lows[0].key.as_str(), lows[1].key.as_str()]);
        let best_hi = h.iter().filter(|e| e.fidelity == 1).max_by(|a, b| a.score.total_cmp(&b.score)).unwrap();
        assert_eq!((full.pick.key.as_str(), full.pick_fidelity), (best_hi.key.as_str(), 1));
        assert!(h.iter().all(|e| e.macs <= max_macs));

        // Killed after 5 trainings, then resumed on the same "disk": the same history, and
        // only the 4 unfinished evaluations are trained.
        let mut disk2 = HashMap::new();
        let mut ev = Synthetic { disk: &mut disk2, trained: vec![], fail_after: Some(5), max_macs };
        assert!(
            search(&r, &mut cost, &cfg(), PathBudget { max_macs: Some(max_macs), max_params: None }, 2, &mut ev, &mut |_| Ok(())).is_err()
        );
        let before = ev.trained.clone();
        let mut ev = Synthetic { disk: &mut disk2, trained: vec![], fail_after: None, max_macs };
        let resumed =
            search(&r, &mut cost, &cfg(), PathBudget { max_macs: Some(max_macs), max_params: None }, 2, &mut ev, &mut |_| Ok(())).unwrap();
        assert_eq!(ev.trained.len(), 4);
        assert!(ev.trained.iter().all(|k| !before.contains(k)), "a finished evaluation was redone");
        let strip = |h: &[Evaluation]| h.iter().map(|e| (e.key.clone(), e.fidelity, e.score, e.predicted)).collect::<Vec<_>>();
        assert_eq!(strip(&resumed.history), strip(&full.history));
        assert_eq!(resumed.history.iter().filter(|e| e.reused).count(), 5);
    }
}
