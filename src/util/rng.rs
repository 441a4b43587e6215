//! A small deterministic PRNG (SplitMix64). Every random choice dnas makes — data order,
//! augmentation, weight init, path sampling — comes from a stream derived from the run's seed and
//! a position (epoch, sample index, step), so a resumed run needs no saved RNG state: the seed and
//! the step say everything. Independent of thread count and of libtorch's own generator.

#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix(seed ^ 0x9e37_79b9_7f4a_7c15) }
    }

    /// The stream for `(seed, tag, index)`, e.g. `(seed, epoch, sample)`.
    pub fn stream(seed: u64, tag: u64, index: u64) -> Rng {
        Rng::new(mix(mix(seed).wrapping_add(tag)).wrapping_add(mix(index.wrapping_add(0x632b_e59b_d9b4_e019))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, 1, 2).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::stream(7, 1, 2).next_u64(), Rng::stream(7, 1, 3).next_u64());
        assert_ne!(Rng::stream(7, 1, 2).next_u64(), Rng::stream(8, 1, 2).next_u64());
        let mut r = Rng::new(1);
        let n = 20000;
        let mean = (0..n).map(|_| r.normal()).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        let mut counts = [0usize; 3];
        (0..3000).for_each(|_| counts[r.below(3)] += 1);
        assert!(counts.iter().all(|&c| c > 900), "{counts:?}");
    }
}
