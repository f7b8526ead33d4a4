//! Histogram: counts per bucket, never raw samples.
//!
//! One small lock over the per-bucket counts and the sum. Under contention it beats
//! separate atomics (one cache line instead of three), and every snapshot is consistent:
//! `_count` always equals the `+Inf` bucket, even while other threads observe.

use crate::error::{Error, Result};
use crate::sys::spin::SpinLock;
use std::sync::Arc;

#[derive(Debug)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    state: SpinLock<State>,
    /// `le="<bound>"` for each bound and `+Inf`, rendered once: a scrape copies bytes.
    le_text: Box<[Box<str>]>,
}

#[derive(Debug)]
struct State {
    /// Non-cumulative: counts[i] observations fell in (bounds[i-1], bounds[i]];
    /// the last cell is (bounds[last], +Inf).
    counts: Box<[u64]>,
    sum: f64,
    /// A negative value was ever observed: `_sum` can then go down, which OpenMetrics
    /// forbids exposing.
    negative: bool,
}

/// Checks upper bounds: finite, strictly increasing. `+Inf` is implicit and dropped if given last.
pub fn validate_buckets(bounds: &[f64]) -> Result<Arc<[f64]>> {
    let b = match bounds.last() {
        Some(&x) if x == f64::INFINITY => &bounds[..bounds.len() - 1],
        _ => bounds,
    };
    if b.iter().any(|x| !x.is_finite()) || b.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::InvalidBuckets);
    }
    Ok(b.into())
}

impl Histogram {
    /// `bounds` must come from [`validate_buckets`].
    pub fn new(bounds: Arc<[f64]>) -> Self {
        let counts = vec![0u64; bounds.len() + 1].into_boxed_slice();
        let le_text = bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|b| {
                let mut v = b"le=\"".to_vec();
                crate::expo::num::write_f64(&mut v, b);
                v.extend_from_slice(b"\"} ");
                String::from_utf8(v).unwrap_or_default().into_boxed_str()
            })
            .collect();
        Histogram { bounds, state: SpinLock::new(State { counts, sum: 0.0, negative: false }), le_text }
    }

    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// `le="…"} ` per bucket (the end of a bucket line's label set), `+Inf` last.
    pub fn le_text(&self) -> &[Box<str>] {
        &self.le_text
    }

    /// Records a finite observation.
    #[inline]
    pub fn observe(&self, v: f64) -> Result<()> {
        if v.is_nan() {
            return Err(Error::NanValue);
        }
        if v.is_infinite() {
            return Err(Error::NotFinite);
        }
        // First bound >= v: the `le` semantics of Prometheus buckets.
        let i = self.bounds.partition_point(|b| *b < v);
        let mut s = self.state.lock();
        if let Some(c) = s.counts.get_mut(i) {
            *c += 1;
        }
        s.sum += v;
        s.negative |= v < 0.0;
        Ok(())
    }

    /// Writes cumulative counts (one per bound, then +Inf) into `out` (cleared first) and
    /// returns the sum. The last element of `out` is the total count.
    pub fn snapshot_into(&self, out: &mut Vec<u64>) -> f64 {
        self.snapshot_with_sign(out).0
    }

    /// [`Histogram::snapshot_into`], plus whether a negative value was ever observed.
    pub fn snapshot_with_sign(&self, out: &mut Vec<u64>) -> (f64, bool) {
        out.clear();
        let s = self.state.lock();
        let mut acc = 0u64;
        for c in s.counts.iter() {
            acc = acc.wrapping_add(*c);
            out.push(acc);
        }
        (s.sum, s.negative)
    }

    /// Total count and sum.
    pub fn count_sum(&self) -> (u64, f64) {
        let s = self.state.lock();
        (s.counts.iter().fold(0u64, |a, c| a.wrapping_add(*c)), s.sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_validation() {
        assert_eq!(validate_buckets(&[1.0, 1.0]), Err(Error::InvalidBuckets));
        assert_eq!(validate_buckets(&[2.0, 1.0]), Err(Error::InvalidBuckets));
        assert_eq!(validate_buckets(&[f64::NAN]), Err(Error::InvalidBuckets));
        assert_eq!(validate_buckets(&[f64::NEG_INFINITY, 1.0]), Err(Error::InvalidBuckets));
        assert_eq!(&*validate_buckets(&[1.0, f64::INFINITY]).unwrap(), &[1.0]);
        assert_eq!(validate_buckets(&[]).unwrap().len(), 0);
    }

    #[test]
    fn le_semantics_and_cumulative_snapshot() {
        let h = Histogram::new(validate_buckets(&[1.0, 2.0]).unwrap());
        for v in [0.5, 1.0, 1.5, 2.0, 3.0, -7.0] {
            h.observe(v).unwrap();
        }
        let mut out = Vec::new();
        let sum = h.snapshot_into(&mut out);
        assert_eq!(out, vec![3, 5, 6]);
        assert_eq!(sum, 1.0);
        assert_eq!(h.observe(f64::NAN), Err(Error::NanValue));
        assert_eq!(h.observe(f64::INFINITY), Err(Error::NotFinite));
        assert_eq!(h.count_sum(), (6, 1.0));
    }

    #[test]
    fn snapshot_consistent_under_concurrent_observes() {
        let h = Arc::new(Histogram::new(validate_buckets(&[0.5, 1.0]).unwrap()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (h, stop) = (h.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        h.observe(0.75).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let sum = h.snapshot_into(&mut out);
            // Every observation is 0.75: sum must match the +Inf count exactly.
            assert_eq!(sum, 0.75 * out[2] as f64);
            assert_eq!(out[0], 0);
            assert_eq!(out[1], out[2]);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let total: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(h.count_sum().0, total);
    }
}
