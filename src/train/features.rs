//! Feature-level distillation at the teacher's cut points: the student's block outputs are
//! pulled towards the teacher values they stand for (the same spatial size; channel counts may
//! differ, which both losses here allow).
//!
//! - **Attention transfer** (Zagoruyko & Komodakis, 2017): a feature map's spatial attention is
//!   the channel mean of its squares, flattened and L2-normalised per sample; the loss is the
//!   mean squared difference of the two attention maps (`(at(s) − at(t)).pow(2).mean()` as in the
//!   authors' code), weighted by β/2 (their β = 1000).
//! - **Neuron-selectivity transfer** (Huang & Wang, 2017): each channel's map, L2-normalised over
//!   space, is a sample of the layer's distribution; the loss is the squared MMD between the
//!   student's and the teacher's channel samples under the polynomial kernel k(x, y) = (xᵀy)²,
//!   averaged over the batch, weighted by λ.
//!
//! Both are summed over the cut points.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor as T};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKd {
    /// Attention transfer.
    At,
    /// Neuron-selectivity transfer (polynomial-kernel MMD).
    Nst,
}

impl FeatureKd {
    pub fn parse(s: &str) -> Result<Option<FeatureKd>> {
        Ok(match s {
            "none" => None,
            "at" => Some(FeatureKd::At),
            "nst" => Some(FeatureKd::Nst),
            other => bail!("feature distillation '{other}' is not known (none, at, nst)"),
        })
    }
    pub fn label(self) -> &'static str {
        match self {
            FeatureKd::At => "at",
            FeatureKd::Nst => "nst",
        }
    }
    /// The weight the method's authors use: AT's β = 1000 (the loss is β/2 · Σ), NST's λ = 50.
    pub fn default_weight(self) -> f64 {
        match self {
            FeatureKd::At => 1000.0,
            FeatureKd::Nst => 50.0,
        }
    }
    /// The unweighted loss between one student and one teacher feature map ([N, C, H, W]).
    pub fn loss(self, student: &T, teacher: &T) -> Result<T> {
        let (s, t) = (student.size(), teacher.size());
        if s.len() != 4 || t.len() != 4 || s[0] != t[0] || s[2..] != t[2..] {
            bail!("feature distillation needs maps of one batch and spatial size: student {s:?}, teacher {t:?}");
        }
        match self {
            FeatureKd::At => attention_loss(student, teacher),
            FeatureKd::Nst => selectivity_loss(student, teacher),
        }
    }
    /// The factor the summed loss is multiplied by: β/2 for AT, λ for NST.
    pub fn scale(self, weight: f64) -> f64 {
        match self {
            FeatureKd::At => weight / 2.0,
            FeatureKd::Nst => weight,
        }
    }
}

/// Per-sample spatial attention: normalize(mean_c(x²)) as [N, H·W].
pub fn attention_map(x: &T) -> Result<T> {
    let n = x.size()[0];
    let a = x.f_pow_tensor_scalar(2)?.f_mean_dim(1, false, Kind::Float)?.f_reshape([n, -1])?;
    let norm = a.f_norm_scalaropt_dim(2, 1, true)?.f_clamp_min(1e-12)?;
    Ok(a.f_div(&norm)?)
}

/// mean((at(s) − at(t))²) over the batch and the spatial positions.
pub fn attention_loss(student: &T, teacher: &T) -> Result<T> {
    Ok(attention_map(student)?.f_sub(&attention_map(teacher)?)?.f_pow_tensor_scalar(2)?.f_mean(Kind::Float)?)
}

/// Channels as rows of unit length over space: [N, C, H·W].
fn channel_rows(x: &T) -> Result<T> {
    let s = x.size();
    let f = x.f_reshape([s[0], s[1], -1])?;
    let norm = f.f_norm_scalaropt_dim(2, 2, true)?.f_clamp_min(1e-12)?;
    Ok(f.f_div(&norm)?)
}

/// Batch mean of MMD² between the student's and the teacher's channels, kernel (xᵀy)².
pub fn selectivity_loss(student: &T, teacher: &T) -> Result<T> {
    let (fs, ft) = (channel_rows(student)?, channel_rows(teacher)?);
    let k = |a: &T, b: &T| -> Result<T> {
        Ok(a.f_bmm(&b.f_transpose(1, 2)?)?.f_pow_tensor_scalar(2)?.f_mean_dim(&[1i64, 2][..], false, Kind::Float)?)
    };
    let mmd = k(&fs, &fs)?.f_add(&k(&ft, &ft)?)?.f_sub(&k(&fs, &ft)?.f_mul_scalar(2.0)?)?;
    Ok(mmd.f_mean(Kind::Float)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &T) -> Vec<f64> {
        Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
    }

    /// [n][c][hw] of a tensor shaped [N, C, H, W].
    fn nested(t: &T) -> Vec<Vec<Vec<f64>>> {
        let s = t.size();
        let v = values(t);
        let (c, hw) = (s[1] as usize, (s[2] * s[3]) as usize);
        (0..s[0] as usize).map(|n| (0..c).map(|k| v[(n * c + k) * hw..(n * c + k + 1) * hw].to_vec()).collect()).collect()
    }

    fn seeded(shape: [i64; 4], seed: i64) -> T {
        tch::manual_seed(seed);
        T::randn(shape, (Kind::Float, tch::Device::Cpu))
    }

    #[test]
    fn attention_transfer_matches_its_closed_form() {
        let (s, t) = (seeded([2, 3, 2, 2], 1), seeded([2, 5, 2, 2], 2));
        let (ns, nt) = (nested(&s), nested(&t));
        let at = |x: &Vec<Vec<f64>>| {
            let hw = x[0].len();
            let a: Vec<f64> = (0..hw).map(|p| x.iter().map(|ch| ch[p] * ch[p]).sum::<f64>() / x.len() as f64).collect();
            let z = a.iter().map(|v| v * v).sum::<f64>().sqrt();
            a.into_iter().map(|v| v / z).collect::<Vec<_>>()
        };
        let mut want = 0.0;
        for n in 0..2 {
            want += at(&ns[n]).iter().zip(at(&nt[n])).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
        }
        want /= 2.0 * 4.0;
        let got = FeatureKd::At.loss(&s, &t).unwrap().double_value(&[]);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        assert!(got > 0.0);
        // Invariant to a positive scale of either map; zero against itself.
        let scaled = FeatureKd::At.loss(&s.shallow_clone().g_mul_scalar(3.0), &t).unwrap().double_value(&[]);
        assert!((scaled - got).abs() < 1e-6);
        assert!(FeatureKd::At.loss(&s, &s).unwrap().double_value(&[]).abs() < 1e-9);
    }

    #[test]
    fn selectivity_transfer_matches_its_closed_form() {
        let (s, t) = (seeded([2, 3, 2, 3], 3), seeded([2, 4, 2, 3], 4));
        let (ns, nt) = (nested(&s), nested(&t));
        let unit = |x: &Vec<f64>| {
            let z = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            x.iter().map(|v| v / z).collect::<Vec<_>>()
        };
        let k = |a: &[Vec<f64>], b: &[Vec<f64>]| {
            let mut sum = 0.0;
            for x in a {
                for y in b {
                    let d: f64 = unit(x).iter().zip(unit(y)).map(|(p, q)| p * q).sum();
                    sum += d * d;
                }
            }
            sum / (a.len() * b.len()) as f64
        };
        let want = (0..2).map(|n| k(&ns[n], &ns[n]) + k(&nt[n], &nt[n]) - 2.0 * k(&ns[n], &nt[n])).sum::<f64>() / 2.0;
        let got = FeatureKd::Nst.loss(&s, &t).unwrap().double_value(&[]);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        assert!(got > 0.0, "MMD² of different maps is positive: {got}");
        assert!(FeatureKd::Nst.loss(&s, &s).unwrap().double_value(&[]).abs() < 1e-6);
    }

    #[test]
    fn mismatched_maps_are_refused_and_names_parse() {
        let err = FeatureKd::At.loss(&seeded([2, 3, 4, 4], 1), &seeded([2, 3, 2, 2], 2)).unwrap_err();
        assert!(err.to_string().contains("spatial"), "{err}");
        assert_eq!(FeatureKd::parse("at").unwrap(), Some(FeatureKd::At));
        assert_eq!(FeatureKd::parse("none").unwrap(), None);
        assert!(FeatureKd::parse("fitnet").unwrap_err().to_string().contains("fitnet"));
        assert_eq!(FeatureKd::At.scale(1000.0), 500.0);
    }
}
