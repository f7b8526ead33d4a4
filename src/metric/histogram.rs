//! Histogram: counts per bucket, never raw samples.
//!
//! Observers never lock and never wait; a reader gets a consistent snapshot (`_count` =
//! the sum of the buckets = the observations whose values `_sum` holds). The scheme is
//! client_golang's (`prometheus/histogram.go`): two sets of atomic cells, a "hot" one
//! chosen by the top bit of one atomic word whose low 63 bits count the observations
//! started. An observer adds 1 to that word (the old value names its set), then adds to
//! the set's sum and one bucket. A reader flips the top bit, so later observers go to the
//! other set, then waits (a few nanoseconds, for observers already under way) until the
//! now-cold set has all the observations the flip counted.
//!
//! Two changes from client_golang, both to do less work:
//! - An observer's bucket increment, made last with release ordering, is its "done"
//!   signal: the reader waits until the cold set's buckets add up to the count, so there
//!   is no separate completion counter (three atomic operations per observation, not four).
//! - The sets are never merged or zeroed. Each keeps the cumulative counts of the
//!   observations that went to it; the reader keeps a copy of the set it read last, which
//!   is the set now hot and was quiescent when copied, so the total is the cold set plus
//!   that copy. A read costs one atomic operation and plain loads, not a read-modify-write
//!   per bucket.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::{AcqRel, Acquire, Relaxed, Release}};
use std::sync::Arc;

/// The top bit of `count_and_hot`: which set observers write to.
const HOT: u64 = 1 << 63;

#[derive(Debug)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    /// Low 63 bits: observations started, ever; top bit: the hot set.
    count_and_hot: AtomicU64,
    /// Two sets of `stride` cells: the sum (f64 bits), then one count per bucket
    /// (non-cumulative: cell i counts (bounds[i-1], bounds[i]], the last one (bounds[last], +Inf)).
    cells: Box<[AtomicU64]>,
    stride: usize,
    /// A negative value was ever observed: `_sum` can then go down, which OpenMetrics
    /// forbids exposing.
    negative: AtomicBool,
    /// Held by readers only: one flip at a time, and the copy of the set read last.
    reader: Mutex<ReadCopy>,
    /// `le="<bound>"` for each bound and `+Inf`, rendered once: a scrape copies bytes.
    le_text: Box<[Box<str>]>,
}

/// What the set that is now hot held when it was last read (it has not been written since).
#[derive(Debug)]
struct ReadCopy {
    count: u64,
    sum: f64,
    buckets: Box<[u64]>,
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
        let n = bounds.len() + 1;
        let stride = n + 1;
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
        Histogram {
            bounds,
            count_and_hot: AtomicU64::new(0),
            cells: (0..2 * stride).map(|_| AtomicU64::new(0)).collect(),
            stride,
            negative: AtomicBool::new(false),
            reader: Mutex::new(ReadCopy { count: 0, sum: 0.0, buckets: vec![0; n].into_boxed_slice() }),
            le_text,
        }
    }

    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// `le="…"} ` per bucket (the end of a bucket line's label set), `+Inf` last.
    pub fn le_text(&self) -> &[Box<str>] {
        &self.le_text
    }

    /// Records a finite observation. Never waits for a reader.
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
        if v < 0.0 && !self.negative.load(Relaxed) {
            self.negative.store(true, Relaxed);
        }
        let n = self.count_and_hot.fetch_add(1, Relaxed);
        let set = &self.cells[(n >> 63) as usize * self.stride..][..self.stride];
        let sum = &set[0];
        let mut old = sum.load(Relaxed);
        while let Err(now) = sum.compare_exchange_weak(old, (f64::from_bits(old) + v).to_bits(), Relaxed, Relaxed) {
            old = now;
        }
        // Last, and releasing the sum: this increment tells a reader the observation is done.
        if let Some(c) = set.get(1 + i) {
            c.fetch_add(1, Release);
        }
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
        let mut acc = 0u64;
        let (_, sum) = self.read(|c| {
            acc = acc.wrapping_add(c);
            out.push(acc);
        });
        (sum, self.negative.load(Relaxed))
    }

    /// Total count and sum.
    pub fn count_sum(&self) -> (u64, f64) {
        self.read(|_| {})
    }

    /// One consistent read: calls `each` with every bucket's (non-cumulative) count, then
    /// returns the total count and the sum.
    fn read(&self, mut each: impl FnMut(u64)) -> (u64, f64) {
        let mut copy = self.reader.lock();
        // Observers that got the old top bit (exactly `started` of them, ever, counting the
        // other set's) write to the set that is cold from now on.
        let n = self.count_and_hot.fetch_add(HOT, AcqRel);
        let started = n & !HOT;
        let cold = &self.cells[(n >> 63) as usize * self.stride..][..self.stride];
        let expect = started.wrapping_sub(copy.count);
        let mut spins = 0u32;
        // Acquire loads: once the buckets add up, every sum update they release is visible.
        while cold[1..].iter().fold(0u64, |a, c| a.wrapping_add(c.load(Acquire))) != expect {
            // Observers under way: a few nanoseconds, unless one was preempted.
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        for (cell, other) in cold[1..].iter().zip(copy.buckets.iter_mut()) {
            let c = cell.load(Relaxed);
            each(c.wrapping_add(*other));
            *other = c;
        }
        let cold_sum = f64::from_bits(cold[0].load(Relaxed));
        let sum = cold_sum + copy.sum;
        copy.sum = cold_sum;
        copy.count = expect;
        (started, sum)
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

    /// Two observers and a reader at once: every snapshot must add up (the sum is exactly
    /// the sum of the values the buckets counted: all are multiples of 1/4, so f64 sums are
    /// exact), never go backwards, and the final read must hold every observation.
    #[test]
    fn snapshot_consistent_under_concurrent_observes() {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        let h = Arc::new(Histogram::new(validate_buckets(&[0.5, 1.0]).unwrap()));
        let stop = Arc::new(AtomicBool::new(false));
        let values = [0.25, 0.75, 2.0];
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let (h, stop) = (h.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = [0u64; 3];
                    let mut k = t;
                    while !stop.load(Relaxed) {
                        h.observe(values[k % 3]).unwrap();
                        n[k % 3] += 1;
                        k += 1;
                    }
                    n
                })
            })
            .collect();
        let mut out = Vec::new();
        let mut last = vec![0u64; 3];
        // Until the observers have made 2M observations (or 5 s pass on a starved machine).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut i = 0u64;
        while last[2] < 2_000_000 && std::time::Instant::now() < deadline {
            i += 1;
            let sum = if i % 2 == 0 { h.snapshot_into(&mut out) } else { h.count_sum().1 };
            if i % 2 == 1 {
                continue;
            }
            let (c0, c1, c2) = (out[0], out[1] - out[0], out[2] - out[1]);
            assert_eq!(sum, 0.25 * c0 as f64 + 0.75 * c1 as f64 + 2.0 * c2 as f64, "{out:?}");
            assert!(out.iter().zip(&last).all(|(a, b)| a >= b), "went back: {last:?} -> {out:?}");
            last.clone_from(&out);
        }
        stop.store(true, Relaxed);
        let n = writers.into_iter().map(|w| w.join().unwrap()).fold([0u64; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
        let sum = h.snapshot_into(&mut out);
        assert_eq!(out, vec![n[0], n[0] + n[1], n[0] + n[1] + n[2]]);
        assert_eq!(sum, 0.25 * n[0] as f64 + 0.75 * n[1] as f64 + 2.0 * n[2] as f64);
        assert_eq!(h.count_sum(), (n.iter().sum::<u64>(), sum));
    }
}
