//! Counter: a monotonically increasing value.
//!
//! Two atomics: whole increments below 2^53 go to an integer cell with a plain
//! `fetch_add` (q sends longs; this keeps the common path one atomic add and makes
//! integer counts exact up to 2^64, past f64's 2^53), and fractional or huge increments
//! go to an f64 cell updated by compare-and-swap.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::AtomicF64;

const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

#[derive(Debug, Default)]
pub struct Counter {
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
}

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `v` (must be >= 0 and finite).
    #[inline]
    pub fn inc_by(&self, v: f64) -> Result<()> {
        // Whole numbers first, without f64::fract (a libm call on baseline x86-64):
        // the cast round-trips exactly only for integral values in range.
        let i = v as u64;
        if (0.0..EXACT).contains(&v) && i as f64 == v {
            self.int.fetch_add(i, Relaxed);
            return Ok(());
        }
        if v.is_nan() {
            return Err(Error::NanValue);
        }
        if v < 0.0 {
            return Err(Error::NegativeIncrement);
        }
        if v == f64::INFINITY {
            return Err(Error::NotFinite);
        }
        self.frac.add(v);
        Ok(())
    }

    /// Adds a whole number: one atomic add, exact, wrapping is impossible in practice
    /// (2^64 increments) and saturates rather than wraps if it ever happened.
    #[inline]
    pub fn inc_int(&self, v: u64) {
        let old = self.int.fetch_add(v, Relaxed);
        if old.checked_add(v).is_none() {
            self.int.store(u64::MAX, Relaxed);
        }
    }

    #[inline]
    pub fn inc(&self) {
        self.int.fetch_add(1, Relaxed);
    }

    pub fn get(&self) -> CounterValue {
        CounterValue { int: self.int.load(Relaxed), frac: self.frac.get() }
    }

    /// Replaces the value (>= 0, finite). Returns true when the new value is lower than
    /// the old one: the caller treats that as a reset (a new `_created`), never a decrease.
    pub fn set(&self, v: f64) -> Result<bool> {
        if v.is_nan() {
            return Err(Error::NanValue);
        }
        if v < 0.0 {
            return Err(Error::NegativeCounter);
        }
        if v.is_infinite() {
            return Err(Error::NotFinite);
        }
        let reset = v < self.get().as_f64();
        if v < EXACT && (v as u64) as f64 == v {
            self.int.store(v as u64, Relaxed);
            self.frac.set(0.0);
        } else {
            self.int.store(0, Relaxed);
            self.frac.set(v);
        }
        Ok(reset)
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

    /// Replaces the value with an exact integer; see [`Counter::set`].
    pub fn set_int(&self, v: u64) -> bool {
        let reset = (v as f64) < self.get().as_f64() || v < self.int.load(Relaxed);
        self.int.store(v, Relaxed);
        self.frac.set(0.0);
        reset
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
        assert_eq!(c.inc_by(f64::NEG_INFINITY), Err(Error::NegativeIncrement));
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

    #[test]
    fn saturates_instead_of_wrapping() {
        let c = Counter::new();
        c.set_int(u64::MAX - 1);
        c.inc_int(5);
        assert_eq!(c.get().int, u64::MAX);
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
