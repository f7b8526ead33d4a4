//! Native histograms: Prometheus' sparse exponential buckets.
//!
//! Bucket `k` of schema `s` holds values in `(base^(k-1), base^k]`, `base = 2^(2^-s)`,
//! `s` from -4 (base 65536) to 8 (base 1.0027); values with `|v| <= zero_threshold` go to
//! the zero bucket. Only buckets that received an observation exist, so one histogram
//! covers microseconds to hours with a relative error bounded by the schema, in memory
//! bounded by `max_buckets`. Semantics follow client_golang's `NativeHistogram*` options.
//!
//! The cells live in the classic [`super::Histogram`]'s two sets (see its module docs):
//! this file holds the parameters, the bucket arithmetic and the per-set sparse tables.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::{Acquire, Relaxed, Release}};
use std::time::{Duration, Instant};

/// client_golang's `DefNativeHistogramZeroThreshold` (2^-128).
pub const DEFAULT_ZERO_THRESHOLD: f64 = 2.938735877055719e-39;
/// Our default for `max_buckets` (client_golang has none: 0 = unlimited there; OpenTelemetry's
/// exponential histogram defaults to 160). A fixed bound keeps the tables fixed-size.
pub const DEFAULT_MAX_BUCKETS: u32 = 160;
/// The largest `max_buckets` accepted.
pub const MAX_MAX_BUCKETS: u32 = 32_768;
pub const MIN_SCHEMA: i32 = -4;
pub const MAX_SCHEMA: i32 = 8;

/// What `.prom.create`'s `native*` keys give.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeParams {
    /// Initial schema, -4..=8 (lowered at run time when `max_buckets` is exceeded).
    pub schema: i32,
    /// `|v| <=` this goes to the zero bucket; >= 0, finite.
    pub zero_threshold: f64,
    /// Buckets (positive + negative, not counting the zero bucket) before the limit acts.
    pub max_buckets: u32,
    /// When the limit is exceeded: reset the histogram if this long has passed since its
    /// creation or last reset (zero: never reset), else halve the resolution.
    pub min_reset: Duration,
}

impl Default for NativeParams {
    fn default() -> Self {
        NativeParams { schema: 3, zero_threshold: DEFAULT_ZERO_THRESHOLD, max_buckets: DEFAULT_MAX_BUCKETS, min_reset: Duration::ZERO }
    }
}

impl NativeParams {
    /// client_golang's `NativeHistogramBucketFactor`: the coarsest schema (smallest s)
    /// whose bucket growth `2^(2^-s)` is at most `factor` (8 when even schema 8's is
    /// larger, -4 for factors of 65536 and more). The factor must be finite and > 1.
    pub fn schema_for_factor(factor: f64) -> Result<i32> {
        if !(factor.is_finite() && factor > 1.0) {
            return Err(Error::InvalidNative);
        }
        // client_golang's pickSchema: -floor(log2(log2(factor))), clamped to -4..=8.
        let floor = factor.log2().log2().floor();
        Ok(if floor <= -(MAX_SCHEMA as f64) { MAX_SCHEMA } else if floor >= -(MIN_SCHEMA as f64) { MIN_SCHEMA } else { -(floor as i32) })
    }

    pub fn new(schema: i32, zero_threshold: f64, max_buckets: u32, min_reset: Duration) -> Result<NativeParams> {
        if !(MIN_SCHEMA..=MAX_SCHEMA).contains(&schema)
            || !(zero_threshold.is_finite() && zero_threshold >= 0.0)
            || !(1..=MAX_MAX_BUCKETS).contains(&max_buckets)
        {
            return Err(Error::InvalidNative);
        }
        Ok(NativeParams { schema, zero_threshold, max_buckets, min_reset })
    }

    /// `2^(2^-schema)`: the ratio of a bucket's upper to its lower bound.
    pub fn base(schema: i32) -> f64 {
        2f64.powf(2f64.powi(-schema))
    }
}

/// One consistent read of the native part, reused across scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NativeSnapshot {
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    /// (bucket index, count), index ascending, counts non-cumulative and > 0.
    pub positive: Vec<(i32, u64)>,
    pub negative: Vec<(i32, u64)>,
}

impl NativeSnapshot {
    pub fn clear(&mut self) {
        self.schema = 0;
        self.zero_threshold = 0.0;
        self.zero_count = 0;
        self.positive.clear();
        self.negative.clear();
    }
}

/// `x = frac * 2^exp` with `frac` in [0.5, 1) (C's frexp), for finite `x > 0`.
#[inline]
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    if e == 0 {
        // Subnormal: scale into the normal range first.
        let (f, e2) = frexp(x * 2f64.powi(64));
        return (f, e2 - 64);
    }
    (f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52)), e - 1022)
}

/// Schema 8's bucket bounds within one power of two, `2^(i/256 - 1)` for i in 0..256, and
/// 1.0 at 256; and per 1/2048th of [0.5, 1) (the mantissa's top 10 bits), the first bound
/// at or above the cell's start. Schema 8's buckets are wider than a cell, so a cell holds
/// at most one bound: one lookup and one comparison find a bucket, without branches.
#[derive(Debug)]
struct Tables {
    bounds: [f64; 257],
    first: [u16; 1024],
}

fn tables() -> &'static Tables {
    static T: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let bounds: [f64; 257] = std::array::from_fn(|i| if i == 256 { 1.0 } else { (i as f64 / 256.0 - 1.0).exp2() });
        let first = std::array::from_fn(|c| {
            let lo = 0.5 + c as f64 / 2048.0;
            bounds.partition_point(|b| *b < lo) as u16
        });
        Tables { bounds, first }
    })
}

/// The index of the bucket holding `v > 0` in `schema`: the k with
/// `base^(k-1) < v <= base^k`, as client_golang and Prometheus compute it. Every
/// schema's bounds are also schema 8's, so schema 8's bucket is found and widened.
#[inline]
pub fn bucket_key(v: f64, schema: i32) -> i32 {
    key_in(tables(), v, schema)
}

#[inline]
fn key_in(t: &Tables, v: f64, schema: i32) -> i32 {
    let (frac, exp) = frexp(v);
    let cell = ((frac.to_bits() >> 42) & 0x3ff) as usize;
    let i = t.first[cell] as usize;
    let i = i + (t.bounds[i] < frac) as usize;
    widen(i as i32 + (exp - 1) * 256, 8, schema)
}

/// Bucket `k` of schema `from` as a bucket of the wider schema `to` (`to <= from`).
#[inline]
pub fn widen(k: i32, from: i32, to: i32) -> i32 {
    let d = from - to;
    (k + (1 << d) - 1) >> d
}

/// A slot key: the sign in the top bit, the bucket index in the 31 below it.
const EMPTY: u32 = 0xC000_0000; // sign set, index -2^30: no f64 reaches it
/// An `order` entry not written yet.
const NONE: u32 = u32::MAX;
#[inline]
fn pack(neg: bool, k: i32) -> u32 {
    (k as u32 & 0x7FFF_FFFF) | (neg as u32) << 31
}
#[inline]
fn unpack(p: u32) -> (bool, i32) {
    (p >> 31 != 0, ((p << 1) as i32) >> 1)
}

/// One set's sparse buckets: an open-addressing table whose slots are claimed by
/// compare-and-swap and never released while the set is hot, so observers never lock.
/// Rewritten (wider schema, or zeroed) only while the set is frozen and complete.
#[derive(Debug)]
struct Table {
    keys: Box<[AtomicU32]>,
    counts: Box<[AtomicU64]>,
    /// Slots claimed.
    used: AtomicU32,
    /// The claimed slots' indices, in claim order (NONE until written), so that reads
    /// visit the buckets that exist, not the whole table.
    order: Box<[AtomicU32]>,
    zero: AtomicU64,
    schema: AtomicI32,
}

impl Table {
    fn new(cap: usize, schema: i32) -> Table {
        Table {
            keys: (0..cap).map(|_| AtomicU32::new(EMPTY)).collect(),
            counts: (0..cap).map(|_| AtomicU64::new(0)).collect(),
            used: AtomicU32::new(0),
            order: (0..cap).map(|_| AtomicU32::new(NONE)).collect(),
            zero: AtomicU64::new(0),
            schema: AtomicI32::new(schema),
        }
    }

    /// Adds `n` to bucket `p`; true when this claimed a new slot.
    #[inline]
    fn add(&self, p: u32, n: u64) -> bool {
        let mask = self.keys.len() - 1;
        // Fibonacci hashing: neighbouring buckets land far apart, so runs stay short.
        let mut i = (p.wrapping_mul(0x9E37_79B9) >> 16) as usize & mask;
        let mut claimed = false;
        for _ in 0..self.keys.len() {
            let k = self.keys[i].load(Relaxed);
            let found = if k == p {
                true
            } else if k == EMPTY {
                match self.keys[i].compare_exchange(EMPTY, p, Relaxed, Relaxed) {
                    Ok(_) => {
                        claimed = true;
                        true
                    }
                    Err(now) => now == p,
                }
            } else {
                false
            };
            if found {
                if claimed {
                    // Listed before the count below publishes it: a reader that finds the
                    // set's counts complete has seen every slot's entry (an entry not yet
                    // written reads NONE, and its slot's count is then missing).
                    let pos = self.used.fetch_add(1, Relaxed) as usize;
                    if let Some(o) = self.order.get(pos) {
                        o.store(i as u32, Relaxed);
                    }
                }
                // Release: for a native-only histogram this is the observation's "done"
                // signal (see Histogram::observe), publishing the slot's key with it.
                self.counts[i].fetch_add(n, Release);
                return claimed;
            }
            i = (i + 1) & mask;
        }
        // Full: cannot happen while fewer than `capacity - max_buckets` threads race
        // past the limit at once (each then limits before observing again). The count
        // must not be lost (the set would never add up): it goes to the first slot.
        self.counts[(p.wrapping_mul(0x9E37_79B9) >> 16) as usize & mask].fetch_add(n, Release);
        false
    }

    /// The claimed slots (of a complete set: every entry written).
    fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        let n = (self.used.load(Acquire) as usize).min(self.order.len());
        self.order[..n].iter().map(|o| o.load(Acquire) as usize).filter(|i| *i < self.keys.len())
    }

    /// The observations the set holds, read with acquire (its completeness check): short
    /// while a claimed slot's entry is not yet written, as its count is then not read.
    fn total(&self) -> u64 {
        self.slots().fold(self.zero.load(Acquire), |a, i| a.wrapping_add(self.counts[i].load(Acquire)))
    }

    /// Appends (bucket in schema `to`, count) per claimed slot to `pos`/`neg`, unsorted.
    fn collect(&self, to: i32, pos: &mut Vec<(i32, u64)>, neg: &mut Vec<(i32, u64)>) {
        let from = self.schema.load(Relaxed);
        for i in self.slots() {
            let (n, key) = unpack(self.keys[i].load(Relaxed));
            let e = (widen(key, from, to), self.counts[i].load(Relaxed));
            if n { neg.push(e) } else { pos.push(e) }
        }
    }

    /// Empties the table (the set must be frozen and complete).
    fn clear(&self, schema: i32) {
        for i in self.slots().collect::<Vec<_>>() {
            self.keys[i].store(EMPTY, Relaxed);
            self.counts[i].store(0, Relaxed);
        }
        for o in self.order.iter() {
            o.store(NONE, Relaxed);
        }
        self.used.store(0, Relaxed);
        self.zero.store(0, Relaxed);
        self.schema.store(schema, Relaxed);
    }
}

/// Sorts by bucket and adds up equal buckets, dropping empty ones.
fn normalise(v: &mut Vec<(i32, u64)>) {
    v.sort_unstable_by_key(|e| e.0);
    let mut w = 0;
    for r in 0..v.len() {
        let e = v[r];
        if w > 0 && v[w - 1].0 == e.0 {
            v[w - 1].1 += e.1;
        } else {
            v[w] = e;
            w += 1;
        }
    }
    v.truncate(w);
    v.retain(|e| e.1 > 0);
}

/// What the cold set's table held when it was frozen (as [`super::histogram`]'s copy of
/// the classic cells), in its schema: one entry per claimed slot, so no key twice, in
/// slot order (sorting waits for a read that shows the buckets).
#[derive(Debug, Default)]
pub(super) struct Copy {
    schema: i32,
    zero: u64,
    pos: Vec<(i32, u64)>,
    neg: Vec<(i32, u64)>,
}

/// The native part of a histogram.
#[derive(Debug)]
pub struct Native {
    params: NativeParams,
    tables: &'static Tables,
    sets: [Table; 2],
    /// When the histogram was created or last reset (for `min_reset`).
    last_reset: parking_lot::Mutex<Instant>,
}

impl Native {
    pub fn new(params: NativeParams) -> Native {
        // Room for the limit plus the threads that may each claim one slot past it.
        let cap = (2 * params.max_buckets as usize + 64).next_power_of_two();
        let s = params.schema;
        Native { tables: tables(), sets: [Table::new(cap, s), Table::new(cap, s)], last_reset: parking_lot::Mutex::new(Instant::now()), params }
    }

    pub fn params(&self) -> &NativeParams {
        &self.params
    }

    pub(super) fn new_copy(&self) -> Copy {
        Copy { schema: self.params.schema, ..Copy::default() }
    }

    /// Records `v` (finite) in set `set`, which the caller has registered in and not yet
    /// completed. True when the set now holds more buckets than allowed.
    #[inline]
    pub(super) fn observe(&self, set: usize, v: f64) -> bool {
        let t = &self.sets[set];
        let a = v.abs();
        if a <= self.params.zero_threshold {
            t.zero.fetch_add(1, Release);
            return false;
        }
        let k = key_in(self.tables, a, t.schema.load(Relaxed));
        t.add(pack(v < 0.0, k), 1) && t.used.load(Relaxed) > self.params.max_buckets
    }

    /// The frozen, complete set `x` plus the copy of the other: into `out` (schema the
    /// wider of the two), then the copy becomes set `x`'s content. Returns the bucket count.
    /// `out`: None when only the classic part is wanted (text, OpenMetrics, `_count`):
    /// then the set is only copied, with no sorting. Returns the snapshot's bucket count.
    pub(super) fn read(&self, x: usize, copy: &mut Copy, out: Option<&mut NativeSnapshot>) -> usize {
        let t = &self.sets[x];
        let sx = t.schema.load(Relaxed);
        let xz = t.zero.load(Relaxed);
        let mut buckets = 0;
        if let Some(out) = out {
            let to = sx.min(copy.schema);
            out.schema = to;
            out.zero_threshold = self.params.zero_threshold;
            out.zero_count = xz + copy.zero;
            out.positive.clear();
            out.negative.clear();
            for (src, dst) in [(&copy.pos, &mut out.positive), (&copy.neg, &mut out.negative)] {
                dst.extend(src.iter().map(|&(k, c)| (widen(k, copy.schema, to), c)));
            }
            t.collect(to, &mut out.positive, &mut out.negative);
            normalise(&mut out.positive);
            normalise(&mut out.negative);
            buckets = out.positive.len() + out.negative.len();
        }
        // The set's own content, in its own schema, becomes the copy.
        copy.pos.clear();
        copy.neg.clear();
        t.collect(sx, &mut copy.pos, &mut copy.neg);
        copy.schema = sx;
        copy.zero = xz;
        buckets
    }

    /// The observations set `x` holds (zero bucket and every slot), read with acquire:
    /// once it reaches the set's registered count, every observation is complete.
    pub(super) fn total(&self, x: usize) -> u64 {
        self.sets[x].total()
    }

    /// Whether either set holds more buckets than allowed.
    pub(super) fn over(&self) -> bool {
        self.sets.iter().any(|t| t.used.load(Relaxed) > self.params.max_buckets)
    }

    /// Whether the limit should reset the histogram (rather than widen its buckets), and
    /// if so notes the reset time.
    pub(super) fn take_reset(&self) -> bool {
        if self.params.min_reset.is_zero() {
            return false;
        }
        let mut last = self.last_reset.lock();
        if last.elapsed() < self.params.min_reset {
            return false;
        }
        *last = Instant::now();
        true
    }

    /// The schema the limit moves to: one wider than the widest in use, or None at -4.
    pub(super) fn wider(&self, copy: &Copy) -> Option<i32> {
        let s = self.sets[0].schema.load(Relaxed).min(self.sets[1].schema.load(Relaxed)).min(copy.schema);
        (s > MIN_SCHEMA).then_some(s - 1)
    }

    /// Rewrites the frozen, complete set `x` (and the copy, which holds its content) in
    /// `schema`, or empties both when `reset`.
    pub(super) fn rewrite(&self, x: usize, copy: &mut Copy, schema: i32, reset: bool) {
        let t = &self.sets[x];
        if reset {
            t.clear(self.params.schema);
            *copy = self.new_copy();
            return;
        }
        let zero = t.zero.load(Relaxed);
        copy.pos.clear();
        copy.neg.clear();
        t.collect(schema, &mut copy.pos, &mut copy.neg);
        normalise(&mut copy.pos);
        normalise(&mut copy.neg);
        t.clear(schema);
        t.zero.store(zero, Relaxed);
        for (v, neg) in [(&copy.pos, false), (&copy.neg, true)] {
            for &(k, c) in v.iter() {
                t.add(pack(neg, k), c);
            }
        }
        copy.schema = schema;
        copy.zero = zero;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::histogram::Histogram;

    fn native(schema: i32, max: u32, min_reset: Duration) -> Histogram {
        Histogram::with_native(Vec::new().into(), Some(NativeParams::new(schema, DEFAULT_ZERO_THRESHOLD, max, min_reset).unwrap()))
    }

    fn snap(h: &Histogram) -> (NativeSnapshot, Vec<u64>, f64) {
        let (mut out, mut n) = (Vec::new(), NativeSnapshot::default());
        let (sum, _) = h.snapshot_full(&mut out, &mut n);
        (n, out, sum)
    }

    /// Every bucket holds what its definition says, (base^(k-1), base^k], compared with
    /// the bounds computed independently by powf; exact powers of two close bucket 2^s*e.
    #[test]
    fn bucket_key_matches_the_definition() {
        let mut x = 0x2545F4914F6CDD1Du64;
        for schema in MIN_SCHEMA..=MAX_SCHEMA {
            let base = NativeParams::base(schema);
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = ((x >> 11) as f64 / (1u64 << 53) as f64 * 80.0 - 40.0).exp2();
                let k = bucket_key(v, schema);
                let (lo, hi) = (base.powi(k - 1), base.powi(k));
                // powi's own rounding: allow one part in 1e12 at the edges.
                assert!(v > lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12), "schema {schema} v {v} k {k} ({lo}, {hi}]");
            }
            for e in -20..20 {
                let v = 2f64.powi(e);
                let want = if schema >= 0 { e << schema } else { widen(e, 0, schema) };
                assert_eq!(bucket_key(v, schema), want, "schema {schema} 2^{e}");
            }
        }
        // Subnormals and the largest finite value have buckets too.
        assert!(bucket_key(f64::MIN_POSITIVE / 1024.0, 8) < bucket_key(f64::MIN_POSITIVE, 8));
        assert_eq!(bucket_key(f64::MAX, 0), 1024);
    }

    #[test]
    fn schema_from_factor_as_client_golang() {
        for (f, s) in [(1.1, 3), (2.0, 0), (1.0027, 8), (1.0001, 8), (4.0, -1), (65536.0, -4), (1e300, -4), (1.09051, 3), (1.0905, 4)] {
            assert_eq!(NativeParams::schema_for_factor(f), Ok(s), "factor {f}");
        }
        for f in [1.0, 0.5, f64::NAN, f64::INFINITY, -2.0] {
            assert_eq!(NativeParams::schema_for_factor(f), Err(Error::InvalidNative));
        }
        assert_eq!(NativeParams::new(9, 0.0, 10, Duration::ZERO), Err(Error::InvalidNative));
        assert_eq!(NativeParams::new(0, -1.0, 10, Duration::ZERO), Err(Error::InvalidNative));
        assert_eq!(NativeParams::new(0, 0.0, 0, Duration::ZERO), Err(Error::InvalidNative));
        assert_eq!(NativeParams::new(0, f64::NAN, 1, Duration::ZERO), Err(Error::InvalidNative));
    }

    #[test]
    fn sparse_buckets_zero_bucket_and_signs() {
        let h = native(0, 160, Duration::ZERO);
        for v in [1.0, 1.5, 2.0, 3.0, 0.0, 1e-40, -1.0, -5.0, 1000.0] {
            h.observe(v).unwrap();
        }
        let (n, classic, sum) = snap(&h);
        assert_eq!(classic, vec![9]);
        assert_eq!(sum, 1.0 + 1.5 + 2.0 + 3.0 + 1e-40 - 1.0 - 5.0 + 1000.0);
        assert_eq!((n.schema, n.zero_count), (0, 2));
        assert_eq!(n.positive, vec![(0, 1), (1, 2), (2, 1), (10, 1)]);
        assert_eq!(n.negative, vec![(0, 1), (3, 1)]);
        // A second read (the other set now holds the copy) gives the same, plus new values.
        h.observe(1.0).unwrap();
        let (n2, classic2, _) = snap(&h);
        assert_eq!(classic2, vec![10]);
        assert_eq!(n2.positive, vec![(0, 2), (1, 2), (2, 1), (10, 1)]);
        assert_eq!(snap(&h).0, n2);
    }

    /// Over the limit, the resolution halves until the buckets fit; nothing is lost.
    #[test]
    fn limit_widens_the_schema() {
        let h = native(3, 8, Duration::ZERO);
        let vals: Vec<f64> = (0..400).map(|i| 1.0 + i as f64 * 2.5).collect();
        for v in &vals {
            h.observe(*v).unwrap();
        }
        let (n, classic, sum) = snap(&h);
        let buckets = n.positive.len();
        assert!(buckets <= 8, "{buckets} buckets at schema {}", n.schema);
        assert!(n.schema < 3 && n.schema >= MIN_SCHEMA);
        assert_eq!(n.positive.iter().map(|e| e.1).sum::<u64>(), vals.len() as u64);
        assert_eq!(classic, vec![vals.len() as u64]);
        assert_eq!(sum, vals.iter().sum::<f64>());
        // Each value is still in the bucket its schema puts it in.
        let mut want: Vec<(i32, u64)> = Vec::new();
        for v in &vals {
            let k = bucket_key(*v, n.schema);
            match want.iter_mut().find(|e| e.0 == k) {
                Some(e) => e.1 += 1,
                None => want.push((k, 1)),
            }
        }
        want.sort();
        assert_eq!(n.positive, want);
    }

    /// With a minimum reset duration that has passed, the limit resets instead (keeping
    /// the observation that crossed it).
    #[test]
    fn limit_resets_after_min_reset() {
        let h = native(3, 4, Duration::from_nanos(1));
        std::thread::yield_now();
        for i in 0..5 {
            h.observe(2f64.powi(i)).unwrap();
        }
        let (n, classic, sum) = snap(&h);
        // The 5th bucket crossed the limit: reset, then 16 recorded again.
        assert_eq!(classic, vec![1]);
        assert_eq!(sum, 16.0);
        assert_eq!((n.schema, n.positive.clone()), (3, vec![(32, 1)]));
    }

    /// Observers on two threads and a reader: every native snapshot adds up to the classic
    /// count of the same read, and ends holding every observation, through schema changes.
    #[test]
    fn consistent_under_concurrent_observes_and_limits() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let h = Arc::new(native(8, 20, Duration::ZERO));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let (h, stop) = (h.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Relaxed) && n < 400_000 {
                        let v = ((n * 7 + t) % 1000) as f64 * 0.37 - 20.0;
                        h.observe(v).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !writers.iter().all(|w| w.is_finished()) {
            let (n, classic, _) = snap(&h);
            let native_total = n.zero_count + n.positive.iter().chain(n.negative.iter()).map(|e| e.1).sum::<u64>();
            assert_eq!(native_total, classic[0]);
        }
        stop.store(true, Relaxed);
        let total: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        let (n, classic, _) = snap(&h);
        assert_eq!(classic[0], total);
        assert_eq!(n.zero_count + n.positive.iter().chain(n.negative.iter()).map(|e| e.1).sum::<u64>(), total);
        assert!(n.schema < 8);
    }
}
