//! The surrogate of MF-KD's Bayesian optimisation: a Gaussian process (the `friedrich` crate:
//! squared-exponential kernel, constant prior, kernel and prior fitted by maximum likelihood)
//! over architecture encodings, and the UCB acquisition mean + β·std.
//!
//! Scores are standardised before the fit (and predictions mapped back), so the noise level and
//! the fitted amplitude mean the same for any metric.

use anyhow::{anyhow, bail, Result};
use friedrich::gaussian_process::GaussianProcess;

/// Anything that predicts a mean and a standard deviation for an encoding.
pub trait Surrogate {
    fn predict(&self, x: &[f64]) -> (f64, f64);
}

pub struct Gp {
    /// `None` when every score was the same: nothing to learn, the prediction is that score
    /// with no uncertainty (proposals then follow the pool's order).
    gp: Option<GaussianProcess<friedrich::kernel::Gaussian, friedrich::prior::ConstantPrior>>,
    mean: f64,
    scale: f64,
}

impl Gp {
    /// Fits on `xs` → `ys` (at least two points). `noise`: the observation noise as a fraction
    /// of the scores' standard deviation.
    pub fn fit(xs: &[Vec<f64>], ys: &[f64], noise: f64) -> Result<Gp> {
        if xs.len() != ys.len() || xs.len() < 2 {
            bail!("a surrogate needs at least two scored architectures (have {})", xs.len().min(ys.len()));
        }
        if ys.iter().any(|y| !y.is_finite()) {
            bail!("a score is not finite: {ys:?}");
        }
        let n = ys.len() as f64;
        let mean = ys.iter().sum::<f64>() / n;
        let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n).sqrt();
        if sd <= 1e-12 * mean.abs().max(1.0) {
            return Ok(Gp { gp: None, mean, scale: 1.0 });
        }
        let z: Vec<f64> = ys.iter().map(|y| (y - mean) / sd).collect();
        let noise = noise.max(1e-6);
        // Maximum-likelihood kernel and prior first; if that fit diverges (NaN predictions, which
        // friedrich can give on a flat likelihood), the default kernel (length 1, amplitude 1).
        for fit in [true, false] {
            let (train_x, z) = (xs.to_vec(), z.clone());
            // friedrich panics (an assert, a failed Cholesky) instead of returning errors: caught here.
            let gp = std::panic::catch_unwind(move || {
                let b = GaussianProcess::builder(train_x, z).set_noise(noise).set_cholesky_epsilon(Some(1e-9));
                if fit {
                    b.fit_kernel().fit_prior().train()
                } else {
                    b.train()
                }
            })
            .map_err(|e| {
                let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                anyhow!("the Gaussian-process fit failed: {}", why.unwrap_or_else(|| "panic".into()))
            })?;
            let g = Gp { gp: Some(gp), mean, scale: sd };
            let (m, v) = g.predict(&xs[0]);
            if m.is_finite() && v.is_finite() {
                return Ok(g);
            }
        }
        bail!("the Gaussian-process fit gave no finite prediction (scores {ys:?})")
    }
}

impl Surrogate for Gp {
    fn predict(&self, x: &[f64]) -> (f64, f64) {
        let Some(gp) = &self.gp else { return (self.mean, 0.0) };
        let m = gp.predict(&x.to_vec());
        let v = gp.predict_variance(&x.to_vec());
        (self.mean + self.scale * m, self.scale * v.max(0.0).sqrt())
    }
}

/// Upper confidence bound mean + β·std.
pub fn ucb(s: &dyn Surrogate, x: &[f64], beta: f64) -> f64 {
    let (m, sd) = s.predict(x);
    m + beta * sd
}

/// Indices of the `k` candidates with the highest UCB, best first (ties: the earlier one).
pub fn best_by_ucb(s: &dyn Surrogate, candidates: &[Vec<f64>], beta: f64, k: usize) -> Vec<usize> {
    let mut scored: Vec<(usize, f64)> = candidates.iter().enumerate().map(|(i, x)| (i, ucb(s, x, beta))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(k).map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gp_reproduces_a_known_function_within_its_stated_error() {
        let f = |x: f64| (3.0 * x).sin() + 0.5 * x;
        let xs: Vec<Vec<f64>> = (0..15).map(|i| vec![i as f64 * 2.0 / 14.0]).collect();
        let ys: Vec<f64> = xs.iter().map(|x| f(x[0])).collect();
        let gp = Gp::fit(&xs, &ys, 0.01).unwrap();
        let (mut abs_err, mut inside) = (0.0, 0);
        let test: Vec<f64> = (0..40).map(|i| 0.025 + i as f64 * 1.95 / 39.0).collect();
        for &x in &test {
            let (m, sd) = gp.predict(&[x]);
            abs_err += (m - f(x)).abs();
            // The stated error: within 3 standard deviations (plus the noise floor).
            inside += usize::from((m - f(x)).abs() <= 3.0 * sd + 0.02);
        }
        assert!(abs_err / test.len() as f64 <= 0.05, "mean abs error {}", abs_err / test.len() as f64);
        assert!(inside >= 38, "{inside}/40 predictions within 3σ");
        // Far from the data the GP is unsure; at a training point it is sure.
        assert!(gp.predict(&[6.0]).1 > 5.0 * gp.predict(&[xs[7][0]]).1);
        // Equal scores: a flat surrogate at that score, no error.
        let flat = Gp::fit(&xs[..3], &[0.25, 0.25, 0.25], 0.1).unwrap();
        assert_eq!(flat.predict(&[5.0]), (0.25, 0.0));
        // Degenerate input is an error, not a panic.
        assert!(Gp::fit(&xs[..1], &ys[..1], 0.1).is_err());
        assert!(Gp::fit(&xs[..2], &[1.0, f64::NAN], 0.1).is_err());
    }

    /// A scripted surrogate: mean and std stored per first coordinate.
    struct Scripted(Vec<(f64, f64)>);
    impl Surrogate for Scripted {
        fn predict(&self, x: &[f64]) -> (f64, f64) {
            self.0[x[0] as usize]
        }
    }

    #[test]
    fn the_acquisition_picks_the_argmax_of_mean_plus_beta_std() {
        let s = Scripted(vec![(1.0, 0.0), (0.5, 1.0), (0.75, 0.5), (1.25, 0.0), (0.0, 3.0)]);
        let c: Vec<Vec<f64>> = (0..5).map(|i| vec![i as f64]).collect();
        // β = 0: the highest mean.
        assert_eq!(best_by_ucb(&s, &c, 0.0, 2), [3, 0]);
        // β = 0.5: 1.0, 1.0, 1.0, 1.25, 1.5 → 4, 3, then the tie 0/1/2 in order.
        assert_eq!(best_by_ucb(&s, &c, 0.5, 5), [4, 3, 0, 1, 2]);
        // β = 2: exploration wins.
        assert_eq!(best_by_ucb(&s, &c, 2.0, 1), [4]);
    }
}
