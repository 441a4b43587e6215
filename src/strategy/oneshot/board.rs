//! Cream of the Crop's prioritized path board: the best paths seen so far during one-shot
//! training, which then teach the sampled ones.
//!
//! A candidate is (top-1 of the sampled path on the current training batch, its MACs, the path).
//! It enters when the board is not full; or its top-1 beats the worst entry's by more than the
//! margin; or it beats the worst's top-1 with fewer MACs. The board is kept sorted best first —
//! higher top-1, and on equal top-1 fewer MACs (the reference code's tuple sort puts more MACs
//! first on ties; fewer is what the paper means) — and the last entry is dropped past capacity.
//! A path already on the board is updated in place (its newest score), never listed twice.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry<P> {
    pub top1: f64,
    pub macs: u64,
    /// Stable identity of the path (the space key).
    pub key: String,
    pub path: P,
    /// The training step it was scored at.
    pub step: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Board<P> {
    pub capacity: usize,
    /// Top-1 margin (0.05 = 5 points) a candidate needs over the worst entry when it is not cheaper.
    pub margin: f64,
    pub entries: Vec<Entry<P>>,
}

/// What [`Board::offer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Entered a board that was not full.
    NotFull,
    /// Beat the worst entry by more than the margin.
    Margin,
    /// Beat the worst entry's top-1 with fewer MACs.
    FewerMacs,
    /// Was on the board already; its score was updated.
    Updated,
    Rejected,
}

fn better<P>(a: &Entry<P>, b: &Entry<P>) -> std::cmp::Ordering {
    b.top1.total_cmp(&a.top1).then(a.macs.cmp(&b.macs)).then(a.key.cmp(&b.key))
}

impl<P: Clone> Board<P> {
    pub fn new(capacity: usize, margin: f64) -> Board<P> {
        Board { capacity: capacity.max(1), margin, entries: Vec::new() }
    }

    /// Cream's final pick: every entry re-scored by `score` (held-out top-1 with inherited
    /// weights after BN recalibration — not the one training batch it was admitted on), the best
    /// among those that `fits` the budget; ties go to fewer MACs, then the key. Returns the index
    /// of the pick and every entry's held-out score (`None` for those outside the budget), or
    /// `None` when no entry fits.
    pub fn pick_held_out(
        &self,
        fits: impl Fn(&Entry<P>) -> bool,
        mut score: impl FnMut(&Entry<P>) -> anyhow::Result<f64>,
    ) -> anyhow::Result<Option<(usize, Vec<Option<f64>>)>> {
        let mut scores = Vec::with_capacity(self.entries.len());
        let mut best: Option<(usize, f64)> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if !fits(e) {
                scores.push(None);
                continue;
            }
            let s = score(e)?;
            scores.push(Some(s));
            let wins = match best {
                None => true,
                Some((b, bs)) => {
                    let o = &self.entries[b];
                    s > bs || (s == bs && (e.macs, &e.key) < (o.macs, &o.key))
                }
            };
            if wins {
                best = Some((i, s));
            }
        }
        Ok(best.map(|(i, _)| (i, scores)))
    }

    pub fn worst(&self) -> Option<&Entry<P>> {
        self.entries.last()
    }

    pub fn best(&self) -> Option<&Entry<P>> {
        self.entries.first()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    fn settle(&mut self) {
        self.entries.sort_by(better);
        self.entries.truncate(self.capacity);
    }

    /// Offers a scored path; returns what happened.
    pub fn offer(&mut self, e: Entry<P>) -> Admission {
        if let Some(old) = self.entries.iter_mut().find(|x| x.key == e.key) {
            *old = e;
            self.settle();
            return Admission::Updated;
        }
        let why = match self.worst() {
            _ if !self.is_full() => Admission::NotFull,
            Some(w) if e.top1 > w.top1 + self.margin => Admission::Margin,
            Some(w) if e.top1 > w.top1 && e.macs < w.macs => Admission::FewerMacs,
            _ => Admission::Rejected,
        };
        if why != Admission::Rejected {
            self.entries.push(e);
            self.settle();
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(top1: f64, macs: u64, key: &str) -> Entry<()> {
        Entry { top1, macs, key: key.into(), path: (), step: 0 }
    }

    #[test]
    fn the_pick_is_the_held_out_best_within_the_budget() {
        // Train-batch scores put "a" first; held out, "c" is best but over budget, "b" is the
        // best that fits; "d" ties "b" held out with more MACs.
        let mut b = Board::new(4, 0.0);
        b.entries = vec![e(0.60, 50, "a"), e(0.55, 60, "b"), e(0.50, 90, "c"), e(0.45, 70, "d")];
        let held = |x: &Entry<()>| -> anyhow::Result<f64> {
            Ok(match x.key.as_str() {
                "a" => 0.70,
                "b" => 0.80,
                "c" => 0.90,
                _ => 0.80,
            })
        };
        let (i, scores) = b.pick_held_out(|x| x.macs <= 80, held).unwrap().unwrap();
        assert_eq!(b.entries[i].key, "b");
        assert_eq!(scores, vec![Some(0.70), Some(0.80), None, Some(0.80)]);
        assert_eq!(b.best().unwrap().key, "a", "the board's own order is the training batch's");
        assert!(b.pick_held_out(|x| x.macs <= 10, held).unwrap().is_none());
        assert!(b.pick_held_out(|_| true, |_| anyhow::bail!("no data")).is_err());
    }

    fn keys(b: &Board<()>) -> Vec<&str> {
        b.entries.iter().map(|x| x.key.as_str()).collect()
    }

    #[test]
    fn admission_and_eviction_on_scripted_sequences() {
        // Dyadic scores and margin, so the "exactly at the margin" case is exact in floating point.
        let mut b = Board::new(3, 0.125);
        // Not full: anything enters, sorted best first.
        assert_eq!(b.offer(e(0.5, 10, "a")), Admission::NotFull);
        assert_eq!(b.offer(e(0.75, 10, "b")), Admission::NotFull);
        assert_eq!(b.offer(e(0.625, 10, "c")), Admission::NotFull);
        assert_eq!(keys(&b), ["b", "c", "a"]);
        // Full: a small gain with more MACs is refused; a gain above the margin enters and evicts the worst.
        assert_eq!(b.offer(e(0.5625, 20, "d")), Admission::Rejected);
        assert_eq!(b.offer(e(0.6875, 20, "d")), Admission::Margin);
        assert_eq!(keys(&b), ["b", "d", "c"]);
        // Exactly at the margin (0.625 + 0.125) is not above it: with more MACs it is refused.
        assert_eq!(b.offer(e(0.75, 30, "e")), Admission::Rejected);
        // A small gain with fewer MACs enters.
        assert_eq!(b.offer(e(0.640625, 5, "f")), Admission::FewerMacs);
        assert_eq!(keys(&b), ["b", "d", "f"]);
        // No gain, even with fewer MACs: refused.
        assert_eq!(b.offer(e(0.640625, 1, "g")), Admission::Rejected);
        // A path already on the board is updated, not listed twice, and re-sorted.
        assert_eq!(b.offer(e(0.875, 5, "f")), Admission::Updated);
        assert_eq!(keys(&b), ["f", "b", "d"]);
        assert_eq!(b.entries.len(), 3);
    }

    #[test]
    fn ties_prefer_fewer_macs() {
        let mut b = Board::new(2, 0.05);
        b.offer(e(0.8, 30, "big"));
        b.offer(e(0.8, 10, "small"));
        assert_eq!(keys(&b), ["small", "big"]);
        assert_eq!(b.worst().unwrap().key, "big");
        // Equal top-1 and fewer MACs than the worst does not "beat" it.
        assert_eq!(b.offer(e(0.8, 5, "tiny")), Admission::Rejected);
        // Capacity 1 keeps only the best.
        let mut one = Board::new(1, 0.0);
        one.offer(e(0.1, 1, "x"));
        assert_eq!(one.offer(e(0.2, 9, "y")), Admission::Margin);
        assert_eq!(keys(&one), ["y"]);
    }
}
