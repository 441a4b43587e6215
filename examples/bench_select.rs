//! Selection benchmark (not a test): a DNA-size instance — one block of 36 candidates and five of
//! 1,296 (6 ops over 4 layers) — under a MAC budget, and under MACs + params + latency. Target:
//! the exact optimum in < 1 s. The reference in the same run is a plain branch and bound whose
//! bound ignores the budget (sum of per-block minimum losses), stopped after 10 s.
//! Run: tools/bench_select.sh

use std::time::{Duration, Instant};

use dnas::strategy::dna::select::{select, BlockChoices, Budget, Candidate};
use dnas::util::Rng;

/// Candidates whose loss falls with cost, as trained supernets show, plus noise.
fn block(rng: &mut Rng, name: &str, layers: u32) -> BlockChoices {
    let ops: Vec<(u64, u64, f64)> = (0..6).map(|i| (3_000_000 + i * 2_000_000, 8_000 + i * 6_000, 0.3 + 0.1 * i as f64)).collect();
    let n = 6usize.pow(layers);
    let candidates = (0..n)
        .map(|mut code| {
            let (mut macs, mut params, mut ms) = (0, 0, 0.0);
            for _ in 0..layers {
                let (m, p, l) = ops[code % 6];
                code /= 6;
                macs += m;
                params += p;
                ms += l;
            }
            let loss = 0.5 * (40_000_000.0 / macs as f64).sqrt() + 0.05 * rng.normal();
            Candidate { id: format!("{name}.{code}"), loss, macs, params, latency_ms: ms * (1.0 + 0.1 * rng.uniform()) }
        })
        .collect();
    BlockChoices { name: name.into(), candidates }
}

fn plain_bnb(blocks: &[BlockChoices], max_macs: u64, limit: Duration) -> (f64, bool) {
    let sorted: Vec<Vec<&Candidate>> = blocks
        .iter()
        .map(|b| {
            let mut v: Vec<&Candidate> = b.candidates.iter().collect();
            v.sort_by(|a, b| a.loss.partial_cmp(&b.loss).unwrap());
            v
        })
        .collect();
    let mut free = vec![0.0; blocks.len() + 1];
    for k in (0..blocks.len()).rev() {
        free[k] = free[k + 1] + sorted[k][0].loss;
    }
    let t = Instant::now();
    let mut best = f64::INFINITY;
    let mut done = true;
    #[allow(clippy::too_many_arguments)]
    fn go(
        k: usize,
        acc: f64,
        macs: u64,
        s: &[Vec<&Candidate>],
        free: &[f64],
        max: u64,
        best: &mut f64,
        t: &Instant,
        limit: Duration,
        done: &mut bool,
    ) {
        if k == s.len() {
            *best = best.min(acc);
            return;
        }
        if t.elapsed() > limit {
            *done = false;
            return;
        }
        for c in &s[k] {
            if acc + c.loss + free[k + 1] >= *best {
                break;
            }
            if macs + c.macs <= max {
                go(k + 1, acc + c.loss, macs + c.macs, s, free, max, best, t, limit, done);
            }
        }
    }
    go(0, 0.0, 0, &sorted, &free, max_macs, &mut best, &t, limit, &mut done);
    (best, done)
}

fn main() -> anyhow::Result<()> {
    let mut rng = Rng::new(7);
    let mut blocks = vec![block(&mut rng, "block0", 2)];
    for i in 1..6 {
        blocks.push(block(&mut rng, &format!("block{i}"), 4));
    }
    let n: usize = blocks.iter().map(|b| b.candidates.len()).sum();
    println!(
        "instance: {} blocks, {n} candidates, {:.2e} architectures",
        blocks.len(),
        blocks.iter().map(|b| b.candidates.len() as f64).product::<f64>()
    );
    let max = (blocks.iter().map(|b| b.candidates.iter().map(|c| c.macs).max().unwrap()).sum::<u64>() as f64 * 0.45) as u64;
    for (label, budget) in [
        ("MACs", Budget { max_macs: Some(max), ..Default::default() }),
        ("MACs + params + latency", Budget { max_macs: Some(max), max_params: Some(700_000), max_ms: Some(30.0), ..Default::default() }),
    ] {
        let t = Instant::now();
        let (sel, stats) = select(&blocks, &budget, 1)?;
        let secs = t.elapsed().as_secs_f64();
        println!("\n{label}: optimum loss {:.4}, {} MACs, {} params, {:.2} ms", sel[0].loss, sel[0].macs, sel[0].params, sel[0].latency_ms);
        println!(
            "  dnas select        {:>8.3} s  ({} search nodes, grid {})  target < 1 s: {}",
            secs,
            stats.nodes,
            stats.grid,
            if secs < 1.0 { "met" } else { "MISSED" }
        );
        if label == "MACs" {
            let t = Instant::now();
            let (best, done) = plain_bnb(&blocks, max, Duration::from_secs(10));
            let ref_secs = t.elapsed().as_secs_f64();
            println!(
                "  reference B&B      {:>8.3} s  ({}; best loss {:.4})  ratio dnas/reference {:.4}",
                ref_secs,
                if done { "finished" } else { "stopped at 10 s, not proven optimal" },
                best,
                secs / ref_secs
            );
        }
    }
    println!("\npeak RSS {:.0} MiB", dnas::util::peak_rss_mib());
    Ok(())
}
