//! Counter: a monotonically increasing value.
//!
//! Two cells: whole increments go to an integer cell (q sends longs; the common path is
//! one atomic add, and integer counts stay exact past f64's 2^53), fractional increments
//! to an f64 cell updated by compare-and-swap. The value is their sum.
//!
//! - **Overflow.** The integer cell takes exact counts up to [`INT_LIMIT`] (2^63, above
//!   any q long). An increment that would take it further goes to the f64 cell instead:
//!   the counter keeps rising, with f64 precision from there on, as every other
//!   Prometheus client's counters; it never wraps. The check costs one load on the same
//!   cache line: increments below 2^32 are then added without a compare-and-swap, which
//!   is sound because even every thread Linux allows (2^22) racing past the check at once
//!   cannot add 2^63 more.
//! - **Finite.** One rule: a counter's value is finite. An increment of ±∞, or one that
//!   would make the total infinite, is refused (`value must be finite`) and changes nothing.
//! - **Reads are never torn.** A set writes both cells; increments write one. A sequence
//!   word makes readers retry while a set is writing (a seqlock: sets are rare, readers
//!   are scrapes), so a read sees a value the counter had, and a counter only set upward
//!   never reads lower. Increments do not touch the sequence word: between two sets both
//!   cells only grow, so reading them one after the other can never see a decrease.

use crate::error::{Error, Result};
use std::sync::atomic::{fence, AtomicU64, Ordering::{Acquire, Relaxed, Release}};

use super::AtomicF64;

const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
/// Increments below this take the unchecked fast path (see the module docs).
const FAST_MAX: u64 = 1 << 32;
/// The integer cell's exact range; beyond it increments go to the f64 cell.
pub const INT_LIMIT: u64 = 1 << 63;

#[derive(Debug, Default)]
pub struct Counter {
    /// Even: no set in progress; odd: a set is writing `int` and `frac`.
    seq: AtomicU64,
    int: AtomicU64,
    frac: AtomicF64,
}

/// A counter's value: exact integer part and the f64 remainder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterValue {
    pub int: u64,
    pub frac: f64,
}

impl CounterValue {
    pub fn as_f64(self) -> f64 {
        self.int as f64 + self.frac
    }

    /// Whether this value is above the whole number `v` (exactly, when both are integers).
    fn above(self, v: u64) -> bool {
        if self.frac == 0.0 {
            self.int > v
        } else {
            self.as_f64() > v as f64
        }
    }
}

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `v` (>= 0; the total must stay finite).
    #[inline]
    pub fn inc_by(&self, v: f64) -> Result<()> {
        // Whole numbers first, without f64::fract (a libm call on baseline x86-64):
        // the cast round-trips exactly only for integral values in range.
        let i = v as u64;
        if (0.0..EXACT).contains(&v) && i as f64 == v {
            return self.inc_int(i);
        }
        if v.is_nan() {
            return Err(Error::NanValue);
        }
        // Before the sign: -0w is refused for being infinite, as 0w is.
        if v.is_infinite() {
            return Err(Error::NotFinite);
        }
        if v < 0.0 {
            return Err(Error::NegativeIncrement);
        }
        self.add_frac(v)
    }

    /// Adds a whole number, exactly while the integer cell stays within [`INT_LIMIT`].
    /// Fails (`NotFinite`) only when spilling to the f64 cell would make the total infinite.
    #[inline]
    pub fn inc_int(&self, v: u64) -> Result<()> {
        if v < FAST_MAX && self.int.load(Relaxed) < INT_LIMIT {
            self.int.fetch_add(v, Relaxed);
            return Ok(());
        }
        self.inc_int_slow(v)
    }

    #[cold]
    fn inc_int_slow(&self, v: u64) -> Result<()> {
        let r = self.int.fetch_update(Relaxed, Relaxed, |x| x.checked_add(v).filter(|y| *y <= INT_LIMIT));
        match r {
            Ok(_) => Ok(()),
            Err(_) => self.add_frac(v as f64),
        }
    }

    fn add_frac(&self, v: f64) -> Result<()> {
        self.frac.try_update(|f| Some(f + v).filter(|n| n.is_finite())).map(drop).map_err(|_| Error::NotFinite)
    }

    /// Adds 1: one atomic add, unchecked. Wrapping would take 2^63 calls past
    /// [`INT_LIMIT`] (centuries at one per nanosecond); every other path keeps the cell
    /// within about 2^63.
    #[inline]
    pub fn inc(&self) {
        self.int.fetch_add(1, Relaxed);
    }

    /// The value, as it was at one moment (never a mix of before and after a set).
    #[inline]
    pub fn get(&self) -> CounterValue {
        let mut spins = 0u32;
        loop {
            let s1 = self.seq.load(Acquire);
            if s1 & 1 == 0 {
                let v = CounterValue { int: self.int.load(Relaxed), frac: self.frac.get() };
                // Orders the cell loads before the re-check: if either saw a set's store,
                // the re-check sees that set's odd sequence number (or later).
                fence(Acquire);
                if self.seq.load(Relaxed) == s1 {
                    return v;
                }
            }
            backoff(&mut spins);
        }
    }

    /// Runs `write` as the only setter, with readers kept out until it returns.
    fn write<R>(&self, write: impl FnOnce(CounterValue) -> R) -> R {
        let mut spins = 0u32;
        let s = loop {
            let s = self.seq.load(Relaxed);
            if s & 1 == 0 && self.seq.compare_exchange_weak(s, s + 1, Acquire, Relaxed).is_ok() {
                break s;
            }
            backoff(&mut spins);
        };
        // Orders the odd sequence number before the cell stores (the reader's fence pairs).
        fence(Release);
        let old = CounterValue { int: self.int.load(Relaxed), frac: self.frac.get() };
        let r = write(old);
        self.seq.store(s + 2, Release);
        r
    }

    /// Replaces the value (>= 0, finite). Returns true when the new value is lower than
    /// the old one: the caller treats that as a reset (a new `_created`), never a decrease.
    pub fn set(&self, v: f64) -> Result<bool> {
        if v.is_nan() {
            return Err(Error::NanValue);
        }
        if v.is_infinite() {
            return Err(Error::NotFinite);
        }
        if v < 0.0 {
            return Err(Error::NegativeCounter);
        }
        let whole = v < EXACT && (v as u64) as f64 == v;
        Ok(self.write(|old| {
            let reset = v < old.as_f64();
            if whole {
                self.int.store(v as u64, Relaxed);
                self.frac.set(0.0);
            } else {
                self.int.store(0, Relaxed);
                self.frac.set(v);
            }
            reset
        }))
    }

    /// Lowers the value by `v` (>= 0, finite) in place: KX's `.prom.updval[id;-;v]`, which
    /// takes back an earlier increment (KX's exporter.q adds 1 to an error counter before
    /// a request and subtracts it after a successful one). Not a reset: the caller keeps
    /// `_created`. A result below 0 is refused and changes nothing. Whole `v` taken from
    /// the integer cell is one atomic step; otherwise it is a read and a write.
    pub fn lower(&self, v: f64) -> Result<()> {
        if v.is_nan() {
            return Err(Error::NanValue);
        }
        if v < 0.0 {
            return Err(Error::NegativeIncrement);
        }
        if v.is_infinite() {
            return Err(Error::NotFinite);
        }
        let i = v as u64;
        if v < EXACT && i as f64 == v && self.int.fetch_update(Relaxed, Relaxed, |x| x.checked_sub(i)).is_ok() {
            return Ok(());
        }
        let cur = self.get().as_f64();
        if v > cur {
            return Err(Error::NegativeCounter);
        }
        self.set(cur - v).map(drop)
    }

    /// Replaces the value with an exact integer (beyond [`INT_LIMIT`], the nearest f64);
    /// see [`Counter::set`].
    pub fn set_int(&self, v: u64) -> bool {
        self.write(|old| {
            let reset = old.above(v);
            if v <= INT_LIMIT {
                self.int.store(v, Relaxed);
                self.frac.set(0.0);
            } else {
                self.int.store(0, Relaxed);
                self.frac.set(v as f64);
            }
            reset
        })
    }
}

/// Waits a little for a setter: spins briefly, then yields, so a preempted setter costs a
/// scheduling slice, never a livelock.
#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_negative_nan_inf() {
        let c = Counter::new();
        assert_eq!(c.inc_by(-1.0), Err(Error::NegativeIncrement));
        assert_eq!(c.inc_by(f64::NAN), Err(Error::NanValue));
        assert_eq!(c.inc_by(f64::INFINITY), Err(Error::NotFinite));
        // ±∞ alike: infinite, whatever the sign.
        assert_eq!(c.inc_by(f64::NEG_INFINITY), Err(Error::NotFinite));
        assert_eq!(c.get().as_f64(), 0.0);
    }

    #[test]
    fn integers_stay_exact_past_2_pow_53() {
        let c = Counter::new();
        c.set_int(1 << 60);
        c.inc();
        assert_eq!(c.get(), CounterValue { int: (1 << 60) + 1, frac: 0.0 });
    }

    #[test]
    fn fractions_and_whole_numbers_add_up() {
        let c = Counter::new();
        c.inc_by(0.5).unwrap();
        c.inc_by(2.0).unwrap();
        c.inc_by(0.25).unwrap();
        assert_eq!(c.get().as_f64(), 2.75);
    }

    #[test]
    fn set_lower_reports_reset() {
        let c = Counter::new();
        assert!(!c.set(10.0).unwrap());
        assert!(c.set(3.0).unwrap());
        assert!(!c.set(3.5).unwrap());
        assert_eq!(c.get().as_f64(), 3.5);
        assert_eq!(c.set(-1.0), Err(Error::NegativeCounter));
    }

    #[test]
    fn lower_takes_back_increments_and_never_goes_below_zero() {
        let c = Counter::new();
        c.inc_by(3.0).unwrap();
        c.lower(1.0).unwrap();
        assert_eq!(c.get(), CounterValue { int: 2, frac: 0.0 });
        c.inc_by(0.5).unwrap();
        c.lower(2.25).unwrap(); // more than the integer cell would give whole: read and write
        assert_eq!(c.get().as_f64(), 0.25);
        assert_eq!(c.lower(1.0), Err(Error::NegativeCounter));
        assert_eq!(c.lower(-1.0), Err(Error::NegativeIncrement));
        assert_eq!(c.lower(f64::NAN), Err(Error::NanValue));
        assert_eq!(c.lower(f64::INFINITY), Err(Error::NotFinite));
        assert_eq!(c.get().as_f64(), 0.25, "refused lowering changes nothing");
    }

    #[test]
    fn concurrent_raise_and_lower_are_exact() {
        // KX's before/after hooks on an error counter, from several threads.
        let c = std::sync::Arc::new(Counter::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        c.inc();
                        c.lower(1.0).unwrap();
                    }
                    c.inc();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get().as_f64(), 4.0);
    }

    /// The repro: 2^63-2, then 1025 increments of 2^53-1 (the integer cell would
    /// wrap at 2^64 and the total drop to 9007199254739965).
    #[test]
    fn never_wraps_past_the_integer_range() {
        let c = Counter::new();
        c.set_int(9_223_372_036_854_775_806);
        let mut last = c.get().as_f64();
        for _ in 0..1025 {
            c.inc_by(9_007_199_254_740_991.0).unwrap();
            let now = c.get().as_f64();
            assert!(now >= last, "decreased from {last} to {now}");
            last = now;
        }
        let want = 9_223_372_036_854_775_806.0 + 1025.0 * 9_007_199_254_740_991.0;
        assert!((last - want).abs() / want < 1e-12, "{last} vs {want}");
        // inc_int with any u64 spills too.
        c.inc_int(u64::MAX).unwrap();
        assert!(c.get().as_f64() >= last + u64::MAX as f64 * 0.999);
        // The integer cell itself is left at or below its limit.
        assert!(c.get().int <= INT_LIMIT);
    }

    #[test]
    fn exact_up_to_the_limit() {
        let c = Counter::new();
        c.set_int(INT_LIMIT - 3);
        c.inc_by(3.0).unwrap();
        assert_eq!(c.get(), CounterValue { int: INT_LIMIT, frac: 0.0 });
        c.inc_by(1.0).unwrap();
        assert_eq!(c.get(), CounterValue { int: INT_LIMIT, frac: 1.0 });
    }

    /// One rule: the value stays finite, whether the increment is infinite or the sum is.
    #[test]
    fn total_stays_finite() {
        let c = Counter::new();
        c.inc_by(f64::MAX).unwrap();
        assert_eq!(c.inc_by(f64::MAX), Err(Error::NotFinite));
        assert_eq!(c.get().as_f64(), f64::MAX);
        assert_eq!(c.inc_int(u64::MAX), Ok(()), "rounds away: still finite");
        assert_eq!(c.get().as_f64(), f64::MAX);
        assert_eq!(c.set(f64::NEG_INFINITY), Err(Error::NotFinite));
    }

    /// Reads while another thread sets: thread A sets k, then k+0.5, for k = 1, 2, …;
    /// every read must be one of those values and never lower than the one before. With
    /// the two cells stored one after the other (no sequence word), reads here saw such
    /// values (0, or 43.5 after 53.5) within a second in every run; this one reads for 1 s.
    #[test]
    fn reads_while_setting_see_only_values_it_had() {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        let c = std::sync::Arc::new(Counter::new());
        c.set(1.0).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let writer = {
            let (c, stop) = (c.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut k = 1u64;
                while !stop.load(Relaxed) {
                    c.set(k as f64).unwrap();
                    c.set(k as f64 + 0.5).unwrap();
                    k += 1;
                }
            })
        };
        let (mut last, mut bad) = (1.0f64, None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < deadline {
            for _ in 0..1000 {
                let v = c.get().as_f64();
                if v < last || (v * 2.0).fract() != 0.0 || v < 1.0 {
                    bad = Some((last, v));
                }
                last = v;
            }
            if bad.is_some() {
                break;
            }
        }
        stop.store(true, Relaxed);
        writer.join().unwrap();
        assert_eq!(bad, None, "a read saw a value the counter never had (previous, read)");
        assert!(last > 1000.0, "the writer barely ran: {last}");
    }

    #[test]
    fn concurrent_increments_are_exact() {
        let c = std::sync::Arc::new(Counter::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        c.inc();
                        c.inc_by(0.5).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get().as_f64(), 400_000.0 + 200_000.0);
    }
}
