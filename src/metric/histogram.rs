//! Histogram: counts per bucket, never raw samples.
//!
//! Observers never lock and never wait; a reader gets a consistent snapshot (`_count` =
//! the sum of the buckets = the observations whose values `_sum` holds). The idea is
//! client_golang's (`prometheus/histogram.go`): two sets of atomic cells, observers write
//! to the "hot" one, and a reader makes the other one hot, waits (nanoseconds, for
//! observers already under way) until the now-cold set is complete, and reads it.
//!
//! Three changes from client_golang, all to do less work per observation and per read:
//! - Registration and sum in one operation. client_golang counts observations started
//!   in one atomic word (whose top bit picks the hot set), then adds to the sum, a bucket
//!   and a completion counter: four atomic read-modify-writes. Here each set has a
//!   16-byte head, (observations registered, sum), updated by one compare-and-swap; the
//!   bucket increment that follows, with release ordering, is the "done" signal (the
//!   reader waits until the cold set's buckets add up to its head's count). Two atomic
//!   read-modify-writes, as many as the lock and unlock of prometheus-client's mutex.
//! - Freezing instead of a count of starts. The reader makes the other set hot, then sets
//!   a FROZEN bit in the old set's head with one compare-and-swap: that captures exactly
//!   the observations registered there (and their sum); an observer that finds the bit
//!   set reloads the hot index, which already names the other set, and retries there.
//! - Never merged, never zeroed. Each set keeps the cumulative counts of what went to it;
//!   the reader keeps a copy of the cold set, which stays frozen (so unchanged) until the
//!   next read, so a snapshot is the set just frozen plus that copy: one compare-and-swap
//!   and plain loads per read, not a read-modify-write per bucket.
//!
//! A native histogram (src/metric/native.rs) keeps its sparse buckets in the same two
//! sets: an observation adds to its native bucket before the done signal, and a read
//! takes the native buckets from the same frozen set. Without classic bounds the native
//! bucket's increment is itself the done signal.
//!
//! The 16-byte compare-and-swap is `cmpxchg16b` on x86-64 (chosen at run time: every
//! x86-64 CPU that runs kdb+ 4.x has it) and `casp`/`ldxp`-`stxp` on aarch64, through
//! `portable-atomic`; a test checks that it is lock-free.

use crate::error::{Error, Result};
use super::native::{NativeParams, NativeSnapshot};
use parking_lot::Mutex;
use portable_atomic::AtomicU128;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::{AcqRel, Acquire, Relaxed, Release}};
use std::sync::Arc;

/// In a set's head: the set is cold, observers must go to the other one.
const FROZEN: u64 = 1 << 63;

#[derive(Debug)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    /// The set observers write to (0 or 1).
    hot: AtomicUsize,
    /// Per set: the observations registered (low 64 bits, FROZEN while cold) and their
    /// sum (f64 bits, high 64), updated together by one 16-byte compare-and-swap.
    heads: [AtomicU128; 2],
    /// Per set, one count per bucket (non-cumulative: cell i counts (bounds[i-1],
    /// bounds[i]], the last one (bounds[last], +Inf)).
    buckets: Box<[AtomicU64]>,
    /// A negative value was ever observed: `_sum` can then go down, which OpenMetrics
    /// forbids exposing.
    negative: AtomicBool,
    /// Held by readers only: one flip at a time, and the copy of the cold set.
    reader: Mutex<ReadCopy>,
    /// `le="<bound>"` for each bound and `+Inf`, rendered once: a scrape copies bytes.
    le_text: Box<[Box<str>]>,
    /// The sparse exponential buckets of a native histogram.
    native: Option<Box<super::native::Native>>,
    /// Native without classic bounds: the native cell an observation increments is its
    /// "done" signal, and the classic `+Inf` cell is not kept (its count is the head's),
    /// so an observation costs the classic histogram's two read-modify-writes.
    native_only: bool,
}

/// What the cold set held when it was frozen (it has not changed since).
#[derive(Debug)]
struct ReadCopy {
    count: u64,
    sum: f64,
    buckets: Box<[u64]>,
    /// The native tables' copy.
    native: Option<super::native::Copy>,
}

#[inline]
fn head(count: u64, sum: f64) -> u128 {
    (sum.to_bits() as u128) << 64 | count as u128
}

#[inline]
fn unhead(h: u128) -> (u64, f64) {
    (h as u64, f64::from_bits((h >> 64) as u64))
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
        Self::with_native(bounds, None)
    }

    /// A classic histogram, and a native one too when `native` is given.
    pub fn with_native(bounds: Arc<[f64]>, native: Option<NativeParams>) -> Self {
        let n = bounds.len() + 1;
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
        let native = native.map(|p| Box::new(super::native::Native::new(p)));
        let copy = native.as_ref().map(|n| n.new_copy());
        let native_only = native.is_some() && bounds.is_empty();
        Histogram {
            bounds,
            hot: AtomicUsize::new(0),
            heads: [AtomicU128::new(head(0, 0.0)), AtomicU128::new(head(FROZEN, 0.0))],
            buckets: (0..2 * n).map(|_| AtomicU64::new(0)).collect(),
            negative: AtomicBool::new(false),
            reader: Mutex::new(ReadCopy { count: 0, sum: 0.0, buckets: vec![0; n].into_boxed_slice(), native: copy }),
            le_text,
            native,
            native_only,
        }
    }

    /// The native parameters, for a native histogram.
    pub fn native_params(&self) -> Option<&NativeParams> {
        self.native.as_ref().map(|n| n.params())
    }

    /// The classic bucket `v` falls in (its exemplar slot): the first bound >= v, or the
    /// `+Inf` bucket.
    #[inline]
    pub fn bucket_index(&self, v: f64) -> usize {
        self.bounds.partition_point(|b| *b < v)
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
        let n = self.bounds.len() + 1;
        loop {
            let h = self.hot.load(Acquire);
            let cell = &self.heads[h];
            let mut cur = cell.load(Acquire);
            loop {
                let (count, sum) = unhead(cur);
                if count & FROZEN != 0 {
                    // A reader froze this set after making the other one hot: go there.
                    break;
                }
                match cell.compare_exchange_weak(cur, head(count + 1, sum + v), AcqRel, Acquire) {
                    Ok(_) => {
                        let over = match &self.native {
                            Some(nat) => nat.observe(h, v),
                            None => false,
                        };
                        // Last, releasing the head's (and native buckets') update: tells a
                        // reader the observation is done.
                        if !self.native_only {
                            if let Some(c) = self.buckets.get(h * n + i) {
                                c.fetch_add(1, Release);
                            }
                        }
                        if over && self.limit() {
                            // Reset: keep this observation, as client_golang does.
                            return self.observe(v);
                        }
                        return Ok(());
                    }
                    Err(now) => cur = now,
                }
            }
        }
    }

    /// Writes cumulative counts (one per bound, then +Inf) into `out` (cleared first) and
    /// returns the sum. The last element of `out` is the total count.
    pub fn snapshot_into(&self, out: &mut Vec<u64>) -> f64 {
        self.snapshot_with_sign(out).0
    }

    /// [`Histogram::snapshot_into`], plus whether a negative value was ever observed.
    pub fn snapshot_with_sign(&self, out: &mut Vec<u64>) -> (f64, bool) {
        self.snapshot(out, None)
    }

    /// [`Histogram::snapshot_with_sign`] and, for a native histogram, its sparse buckets
    /// from the same moment (`native` is cleared for a classic one).
    pub fn snapshot_full(&self, out: &mut Vec<u64>, native: &mut NativeSnapshot) -> (f64, bool) {
        native.clear();
        self.snapshot(out, Some(native))
    }

    fn snapshot(&self, out: &mut Vec<u64>, native: Option<&mut NativeSnapshot>) -> (f64, bool) {
        out.clear();
        let mut acc = 0u64;
        let mut copy = self.reader.lock();
        let (_, sum) = self.read_locked(&mut copy, native, |c| {
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
    fn read(&self, each: impl FnMut(u64)) -> (u64, f64) {
        let mut copy = self.reader.lock();
        self.read_locked(&mut copy, None, each)
    }

    /// [`Histogram::read`] with the reader lock held; the native buckets go to `native`
    /// when it is given (without it, the native part is only copied, not sorted). A
    /// native histogram found over its bucket limit is limited here, after the read (what
    /// was read stays as it was).
    fn read_locked(&self, copy: &mut ReadCopy, native: Option<&mut NativeSnapshot>, each: impl FnMut(u64)) -> (u64, f64) {
        let (r, x) = self.flip(copy, each);
        let mut over = false;
        if let (Some(nat), Some(ncopy)) = (&self.native, copy.native.as_mut()) {
            over = nat.read(x, ncopy, native) > nat.params().max_buckets as usize;
        }
        if over {
            self.limit_locked(copy, false);
        }
        r
    }

    /// An observer found its set over the native bucket limit. True when the histogram
    /// was reset (the observer then records its value again).
    #[cold]
    fn limit(&self) -> bool {
        let mut copy = self.reader.lock();
        self.limit_locked(&mut copy, true)
    }

    /// Applies the native bucket limit as client_golang does: reset everything when
    /// `min_reset` has passed since creation or the last reset, else halve the resolution
    /// (one schema wider, down to -4). Each set is rewritten while frozen, so observers
    /// never meet a table being rewritten: two flips, one per set. `recheck`: an observer
    /// asked, and another may have limited since.
    fn limit_locked(&self, copy: &mut ReadCopy, recheck: bool) -> bool {
        let Some(nat) = &self.native else { return false };
        if recheck && !nat.over() {
            return false;
        }
        let reset = nat.take_reset();
        let schema = match (reset, copy.native.as_ref().and_then(|c| nat.wider(c))) {
            (true, _) => nat.params().schema,
            (false, Some(s)) => s,
            (false, None) => return false,
        };
        let n = self.bounds.len() + 1;
        for _ in 0..2 {
            let (_, x) = self.flip(copy, |_| {});
            if reset {
                self.heads[x].store(head(FROZEN, 0.0), Release);
                for c in &self.buckets[x * n..][..n] {
                    c.store(0, Relaxed);
                }
                copy.count = 0;
                copy.sum = 0.0;
                copy.buckets.fill(0);
            }
            if let Some(ncopy) = copy.native.as_mut() {
                nat.rewrite(x, ncopy, schema, reset);
            }
        }
        reset
    }

    /// Makes the other set hot, freezes the one that was, waits until it is complete and
    /// passes its counts plus the copy's to `each`; the copy becomes the frozen set's.
    /// Returns (total count, sum) and the index of the frozen set.
    fn flip(&self, copy: &mut ReadCopy, mut each: impl FnMut(u64)) -> ((u64, f64), usize) {
        let n = self.bounds.len() + 1;
        let x = self.hot.load(Relaxed);
        let y = x ^ 1;
        // The cold set has been frozen since the last read, holding exactly the copy.
        self.heads[y].store(head(copy.count, copy.sum), Release);
        self.hot.store(y, Release);
        // Freeze the set that was hot: observers registered in it are exactly those its
        // head counts; later ones see FROZEN and move to the other set.
        let mut cur = self.heads[x].load(Acquire);
        while let Err(now) = self.heads[x].compare_exchange_weak(cur, cur | FROZEN as u128, AcqRel, Acquire) {
            cur = now;
        }
        let (count, cold_sum) = unhead(cur);
        let cold = &self.buckets[x * n..][..n];
        let mut spins = 0u32;
        let done = || match (&self.native, self.native_only) {
            (Some(nat), true) => nat.total(x),
            _ => cold.iter().fold(0u64, |a, c| a.wrapping_add(c.load(Acquire))),
        };
        // Acquire loads: once the cells add up, every head update they release is visible.
        while done() != count {
            // Observers under way: a few nanoseconds, unless one was preempted.
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        for (cell, other) in cold.iter().zip(copy.buckets.iter_mut()) {
            let c = if self.native_only { count } else { cell.load(Relaxed) };
            each(c.wrapping_add(*other));
            *other = c;
        }
        let total = count.wrapping_add(copy.count);
        let sum = cold_sum + copy.sum;
        copy.sum = cold_sum;
        copy.count = count;
        ((total, sum), x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Observers never lock": the 16-byte compare-and-swap must be the CPU's, not
    /// portable-atomic's lock-based fallback.
    #[test]
    fn head_updates_are_lock_free() {
        assert!(AtomicU128::is_lock_free());
    }

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
