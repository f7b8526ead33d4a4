//! Quantile engine behind the Prometheus summary type: a ring of relative-error sketches.
//!
//! # Sketch
//! Each sub-window ("slot") holds a DDSketch-style sketch: exact zero count, and for positive
//! and negative values (by magnitude) a dense array of counts per logarithmic bin. The bin key
//! of a magnitude `x` is `floor(MULT * L(x))`, where `L` is a cheap approximation of `log2`
//! read off the float's bits: `L(x) = e + m(4 - m)/3` for `x = 2^e * (1 + m)`, `m` in `[0, 1)`
//! (DDSketch's quadratically interpolated mapping). No `ln` on the hot path.
//!
//! Why the bound holds: `L` is continuous and increasing, and its slope against the true `log2`
//! is `(4 - 2m)(1 + m) ln2 / 3 >= (4/3) ln2`. A bin is `1/MULT` wide in `L`, so it is at most
//! `3/(4 ln2 MULT)` wide in `log2`; with `MULT = 3 / (4 ln gamma)`, `gamma = (1+a)/(1-a)`, every
//! bin `[lo, hi)` has `hi/lo <= gamma`. Reporting the harmonic mean `2 lo hi/(lo + hi)` is then
//! within `(gamma-1)/(gamma+1) = a` of anything in the bin. `MULT` is rounded up by ~1e-9
//! relative, which absorbs float rounding in the key and in the bin bounds. Bin bounds are
//! computed by inverting `L` exactly (`m = 2 - sqrt(4 - 3f)`); that only runs at query time.
//!
//! # Guarantee (a = [`SummaryCore::RELATIVE_ERROR`] = 0.01)
//! Let the window hold `n >= 1` observations, sorted ascending as `v[0..n]`, and let
//! `x = v[floor(q * (n - 1))]` (the DDSketch rank definition; `q = 0` is the minimum, `q = 1`
//! the maximum). The reported `x̂` satisfies `|x̂ - x| <= a * |x|` provided `|x|` is a normal
//! float (>= 2.2e-308) and is not in the collapsed range of its sign (below). `x = 0` is
//! reported exactly, so are `q = 0` and `q = 1` (the window's exact min and max are tracked).
//! Every estimate is clamped into `[min, max]` of the window, which can only reduce the error.
//! Subnormal magnitudes: `|x̂ - x| <= 2a|x|` (the bin's value is rounded to a subnormal).
//!
//! # Bounded memory, and what collapsing costs
//! A bin array spans at most [`MAX_BINS`] = 2048 consecutive keys, about 16.4 decades
//! (124.6 bins per decade). When a sub-window sees magnitudes of one sign spanning more than
//! that, the array keeps the 2048 keys ending at the largest magnitude and folds everything
//! smaller into its lowest bin (like DDSketch's CollapsingLowestDenseStore). Let `tau` be the
//! lower edge of the highest such floor bin among the merged sub-windows of that sign (about
//! `largest magnitude / 10^16.4`). Then: quantiles whose exact value has `|x| >= tau` keep the
//! full guarantee above (cumulative counts are exact from the floor bin upward); those with
//! `|x| < tau` are reported with the right sign and `(1-a)|x| <= |x̂| < tau * gamma`, i.e. tiny
//! magnitudes are overestimated up to the collapse threshold. Only the extreme low-magnitude
//! tail of data spanning more than 16 decades is affected.
//!
//! Memory per series is at most `N * (size_of::<Slot>() + 2 * 2048 * 8)` bytes (~32.1 KiB per
//! slot, ~161 KiB for N = 5), reached only by data spanning >= 16 decades of both signs. Data
//! spanning `D` decades of one sign needs about `N * 125 * D * 8` bytes, times up to ~1.6 for
//! growth slack (e.g. 6 decades, N = 5: ~30-47 KiB; measured 41 KiB).
//! Arrays are allocated lazily, keep their capacity when a slot is recycled, and never exceed
//! `MAX_BINS`, so neither `observe` nor `quantiles` allocates in steady state.
//!
//! # Window (N = age_buckets clamped to 1..=1024, d = max(1, max_age_nanos / N) ns)
//! Time is cut into absolute slots `[k d, (k+1) d)`; an observation goes to the slot of its
//! timestamp. A query at time `t` in slot `K` merges slots `K-N+1 ..= K`, i.e. observations made
//! in the last `(N-1) d + (t - K d)` ns: between `(N-1)/N` and all of `max_age` (up to the
//! integer rounding of `d`), as with client_golang's MaxAge/AgeBuckets. N = 1 means a tumbling
//! window that empties every `max_age`.
//! The clock is clamped to the latest time seen by `observe` or `quantiles`: a call whose
//! `now_nanos` is earlier than the current slot's start acts as if made in the current slot.

use std::fmt;

/// Most bins one sign of one slot may use.
pub const MAX_BINS: usize = 2048;
/// Keys per unit of `L` (≈ log2): `3 / (4 ln((1+a)/(1-a)))` for a = 0.01 is 37.4987499667;
/// rounded up so the design accuracy is a hair tighter than `a` (see the module doc).
const MULT: f64 = 37.49875;
const BIN_WIDTH: f64 = 1.0 / MULT;
/// Makes `MULT * L + KEY_BIAS` positive for every finite f64 so `as i64` truncation is floor.
const KEY_BIAS: f64 = 65536.0;
const MAX_AGE_BUCKETS: u32 = 1024;

/// Quantiles over a sliding time window with memory independent of observation count.
pub struct SummaryCore {
    slots: Vec<Slot>,
    /// Sub-window length `d` in ns (>= 1).
    width: u64,
    /// Index into `slots` of the current sub-window, its absolute number and its time range;
    /// cached so the hot path needs no division.
    cur: usize,
    cur_epoch: u64,
    cur_start: u64,
    cur_end: u64,
}

struct Slot {
    /// Absolute sub-window number this slot holds data for; data is live iff
    /// `cur_epoch - epoch < N`. Slots never written stay empty, so their label is irrelevant.
    epoch: u64,
    count: u64,
    zero: u64,
    min: f64,
    max: f64,
    pos: Store,
    neg: Store,
}

/// Dense counts for consecutive keys `offset ..= offset + bins.len() - 1`.
/// Invariant: `bins.len() <= MAX_BINS`, and the top key is the largest key added since the
/// last `clear` (growth upward is exact, slack is only added downward).
#[derive(Default)]
struct Store {
    bins: Vec<u64>,
    offset: i32,
}

impl SummaryCore {
    /// Relative error bound guaranteed (see the module doc for the exact statement).
    pub const RELATIVE_ERROR: f64 = 0.01;

    /// `max_age_nanos`: window length; `age_buckets`: number of sub-windows in the ring (>=1).
    /// Out-of-range arguments are clamped (age_buckets to 1..=1024, slot width to >= 1 ns).
    pub fn new(max_age_nanos: u64, age_buckets: u32) -> Self {
        let n = age_buckets.clamp(1, MAX_AGE_BUCKETS);
        let width = (max_age_nanos / u64::from(n)).max(1);
        SummaryCore {
            slots: (0..n).map(|_| Slot::new()).collect(),
            width,
            cur: 0,
            cur_epoch: 0,
            cur_start: 0,
            cur_end: width,
        }
    }

    /// Record one observation made at monotonic time `now_nanos`.
    #[inline]
    pub fn observe(&mut self, v: f64, now_nanos: u64) {
        if now_nanos < self.cur_start || now_nanos >= self.cur_end {
            self.advance(now_nanos);
        }
        let Some(slot) = self.slots.get_mut(self.cur) else {
            return;
        };
        slot.count = slot.count.wrapping_add(1);
        // Branches, not f64::min/max: new extremes are rare, so this stays predicted and avoids
        // a load-min-store dependency chain through memory on every call.
        if v < slot.min {
            slot.min = v;
        }
        if v > slot.max {
            slot.max = v;
        }
        if v > 0.0 {
            slot.pos.add(key(v));
        } else if v < 0.0 {
            slot.neg.add(key(-v));
        } else {
            // Zero (and, defensively, NaN: it lands here rather than corrupting a store).
            slot.zero = slot.zero.wrapping_add(1);
        }
    }

    /// For each q in `qs` write the estimated quantile of the window ending at `now_nanos` into
    /// `out[i]`; NaN when the window is empty or q is NaN. q outside [0,1] is clamped.
    /// Cost: O((key span of the merged window) * N + len(qs) * #bins resolving a q); no allocation.
    pub fn quantiles(&mut self, qs: &[f64], now_nanos: u64, out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = f64::NAN);
        if now_nanos >= self.cur_end {
            self.advance(now_nanos);
        }
        let n_slots = self.slots.len() as u64;
        let cur_epoch = self.cur_epoch;
        let live = move |s: &&Slot| cur_epoch.wrapping_sub(s.epoch) < n_slots;

        let (mut n, mut zero, mut min, mut max) = (0u64, 0u64, f64::INFINITY, f64::NEG_INFINITY);
        let (mut neg_range, mut pos_range) = (None, None);
        for s in self.slots.iter().filter(live) {
            n = n.saturating_add(s.count);
            zero = zero.saturating_add(s.zero);
            min = min.min(s.min);
            max = max.max(s.max);
            neg_range = union(neg_range, s.neg.range());
            pos_range = union(pos_range, s.pos.range());
        }
        if n == 0 {
            return;
        }
        let rank = |q: f64| ((q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64).min(n - 1);

        // One ascending sweep: negatives by decreasing magnitude, zeros, positives by increasing
        // magnitude. A q is resolved by the first bin whose cumulative count exceeds its rank.
        let mut cum = 0u64;
        let mut next = resolve(qs, out, &rank, 0, 0.0);
        if let Some((lo, hi)) = neg_range {
            for k in (lo..=hi).rev() {
                if next == u64::MAX {
                    break;
                }
                let c = self
                    .slots
                    .iter()
                    .filter(live)
                    .fold(0u64, |a, s| a.saturating_add(s.neg.get(k)));
                cum = cum.saturating_add(c);
                if c > 0 && cum > next {
                    next = resolve(qs, out, &rank, cum, -bin_value(k));
                }
            }
        }
        cum = cum.saturating_add(zero);
        if zero > 0 && cum > next {
            next = resolve(qs, out, &rank, cum, 0.0);
        }
        if let Some((lo, hi)) = pos_range {
            for k in lo..=hi {
                if next == u64::MAX {
                    break;
                }
                let c = self
                    .slots
                    .iter()
                    .filter(live)
                    .fold(0u64, |a, s| a.saturating_add(s.pos.get(k)));
                cum = cum.saturating_add(c);
                if c > 0 && cum > next {
                    next = resolve(qs, out, &rank, cum, bin_value(k));
                }
            }
        }

        for (&q, o) in qs.iter().zip(out.iter_mut()) {
            if q.is_nan() {
                continue;
            }
            let r = rank(q);
            *o = if r == 0 {
                min
            } else if r == n - 1 || o.is_nan() {
                max // (o.is_nan(): unreachable unless counts saturated; max is the safe answer)
            } else {
                // Not f64::clamp: it panics if min > max, which NaN inputs could cause.
                o.max(min).min(max)
            };
        }
    }

    /// Approximate heap bytes held now.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self
                .slots
                .iter()
                .map(|s| {
                    (s.pos.bins.capacity() + s.neg.bins.capacity()) * std::mem::size_of::<u64>()
                })
                .sum::<usize>()
    }

    /// Moves the clock to `now` (never backwards), recycling the slot of a new sub-window.
    #[cold]
    fn advance(&mut self, now: u64) {
        if now < self.cur_start {
            return; // time went backwards: stay in the current slot
        }
        let epoch = now / self.width;
        if epoch <= self.cur_epoch {
            return; // only when cur_end saturated at u64::MAX
        }
        let n = self.slots.len().max(1) as u64;
        self.cur_epoch = epoch;
        self.cur = (epoch % n) as usize;
        self.cur_start = epoch.saturating_mul(self.width);
        self.cur_end = self.cur_start.saturating_add(self.width);
        if let Some(s) = self.slots.get_mut(self.cur) {
            // Whatever it held is from epoch - N or older: out of the window.
            s.clear(epoch);
        }
    }
}

impl fmt::Debug for SummaryCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SummaryCore")
            .field("age_buckets", &self.slots.len())
            .field("slot_nanos", &self.width)
            .field("cur_epoch", &self.cur_epoch)
            .field("heap_bytes", &self.heap_bytes())
            .finish_non_exhaustive()
    }
}

impl Slot {
    fn new() -> Self {
        Slot {
            epoch: 0,
            count: 0,
            zero: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            pos: Store::default(),
            neg: Store::default(),
        }
    }

    fn clear(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.count = 0;
        self.zero = 0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
        self.pos.bins.clear(); // keeps capacity: no allocation when the slot refills
        self.neg.bins.clear();
    }
}

impl Store {
    #[inline]
    fn add(&mut self, key: i32) {
        let idx = usize::try_from(i64::from(key) - i64::from(self.offset));
        if let Some(c) = idx.ok().and_then(|i| self.bins.get_mut(i)) {
            *c = c.wrapping_add(1);
        } else {
            self.add_outside(key);
        }
    }

    fn get(&self, key: i32) -> u64 {
        usize::try_from(i64::from(key) - i64::from(self.offset))
            .ok()
            .and_then(|i| self.bins.get(i))
            .copied()
            .unwrap_or(0)
    }

    fn range(&self) -> Option<(i32, i32)> {
        let len = i32::try_from(self.bins.len()).ok()?;
        (len > 0).then(|| (self.offset, self.offset.saturating_add(len - 1)))
    }

    /// Key not covered by `bins`: grow (up exactly, down with slack) within MAX_BINS, else
    /// fold the lowest keys into the floor bin.
    #[cold]
    fn add_outside(&mut self, key: i32) {
        const CAP: i64 = MAX_BINS as i64;
        let len = self.bins.len();
        let (key, lo) = (i64::from(key), i64::from(self.offset));
        let hi = lo + len as i64 - 1;
        if len == 0 {
            self.reserve(1);
            self.bins.push(1);
            self.offset = key as i32;
        } else if key > hi {
            // The top follows the maximum; keys more than CAP below it fold into the floor.
            let new_lo = lo.max(key - CAP + 1);
            let drop = ((new_lo - lo) as usize).min(len);
            let folded = self
                .bins
                .drain(..drop)
                .fold(0u64, |a, c| a.saturating_add(c));
            let need = (key - new_lo + 1) as usize;
            self.reserve(need);
            self.bins.resize(need, 0);
            self.offset = new_lo as i32;
            if let Some(c) = self.bins.first_mut() {
                *c = c.saturating_add(folded);
            }
            if let Some(c) = self.bins.last_mut() {
                *c = c.wrapping_add(1);
            }
        } else {
            // key < lo: prepend with ~25% slack (amortises the shift) but never beyond CAP;
            // a key more than CAP below the top is counted in the floor bin.
            let floor = hi - CAP + 1;
            let new_lo = floor.max(key - (len as i64 / 4 + 8));
            let shift = (lo - new_lo) as usize;
            self.reserve(len + shift);
            self.bins.resize(len + shift, 0);
            self.bins.copy_within(0..len, shift);
            self.bins.iter_mut().take(shift).for_each(|c| *c = 0);
            self.offset = new_lo as i32;
            let idx = (key.max(floor) - new_lo) as usize;
            if let Some(c) = self.bins.get_mut(idx) {
                *c = c.wrapping_add(1);
            }
        }
    }

    /// Like `Vec::reserve` but growing by 1.25x (memory matters more than the rare realloc:
    /// capacity is kept across slot reuse) and capped at MAX_BINS, so the heap stays bounded.
    fn reserve(&mut self, need: usize) {
        let cap = self.bins.capacity();
        if need > cap {
            let want = need.max(cap + cap / 4 + 16).min(MAX_BINS).max(need);
            self.bins.reserve_exact(want - self.bins.len());
        }
    }
}

/// Smallest range covering both.
fn union(a: Option<(i32, i32)>, b: Option<(i32, i32)>) -> Option<(i32, i32)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (x, None) | (None, x) => x,
    }
}

/// Writes `value` to every unresolved `out[i]` whose rank is below `cum`; returns the smallest
/// rank still unresolved (u64::MAX if none). Unresolved is encoded as NaN in `out`.
fn resolve(qs: &[f64], out: &mut [f64], rank: &dyn Fn(f64) -> u64, cum: u64, value: f64) -> u64 {
    let mut next = u64::MAX;
    for (&q, o) in qs.iter().zip(out.iter_mut()) {
        if q.is_nan() || !o.is_nan() {
            continue;
        }
        let r = rank(q);
        if r < cum {
            *o = value;
        } else {
            next = next.min(r);
        }
    }
    next
}

/// Bin key of a magnitude `x > 0` (finite): `floor(MULT * L(x))`.
#[inline]
fn key(x: f64) -> i32 {
    let mut bits = x.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
    if exp == -1023 {
        // Subnormal: scale into the normal range exactly (2^64), then undo in the exponent.
        bits = (x * 18446744073709551616.0).to_bits();
        exp = ((bits >> 52) & 0x7ff) as i64 - 1023 - 64;
    }
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | 1.0f64.to_bits()) - 1.0;
    let l = exp as f64 + m * (4.0 - m) * (1.0 / 3.0);
    // `as` saturates, so even a non-finite input cannot overflow; keys are within ±41_000.
    ((l * MULT + KEY_BIAS) as i64).wrapping_sub(KEY_BIAS as i64) as i32
}

/// `L^-1(y)` as `(1 + m, e)` with the value being `(1 + m) * 2^e`.
fn l_inv(y: f64) -> (f64, i32) {
    let e = y.floor();
    let f = y - e;
    (3.0 - (4.0 - 3.0 * f).max(0.0).sqrt(), e as i32)
}

/// Representative value of bin `k`: harmonic mean of its bounds, which has relative error
/// `(hi-lo)/(hi+lo) <= a` against any value in the bin. Computed on mantissas and exponents
/// separately so the top bin (upper bound beyond f64::MAX) does not overflow early.
fn bin_value(k: i32) -> f64 {
    let (m0, e0) = l_inv(f64::from(k) * BIN_WIDTH);
    let (m1, e1) = l_inv((f64::from(k) + 1.0) * BIN_WIDTH);
    let b = ldexp(m1, e1.saturating_sub(e0));
    ldexp(2.0 * m0 * b / (m0 + b), e0)
}

/// `x * 2^e` with a single rounding, also for subnormal and overflowing results.
fn ldexp(x: f64, e: i32) -> f64 {
    let e = e.clamp(-2044, 2046);
    let (e1, e2) = (e / 2, e - e / 2); // both within the normal exponent range -1022..=1023
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    x * pow2(e1) * pow2(e2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: f64 = SummaryCore::RELATIVE_ERROR;
    const QS: [f64; 7] = [0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0];
    const SEC: u64 = 1_000_000_000;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform in (0, 1).
        fn unif(&mut self) -> f64 {
            ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.unif(), self.unif());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
        /// Log-uniform magnitude in [10^lo, 10^hi].
        fn log_unif(&mut self, lo: f64, hi: f64) -> f64 {
            10f64.powf(lo + (hi - lo) * self.unif())
        }
    }

    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    /// Feeds `vals` (all at time 0) and checks every quantile in QS against the exact one.
    fn check(name: &str, vals: &[f64]) {
        let mut s = SummaryCore::new(600 * SEC, 5);
        for &v in vals {
            s.observe(v, 0);
        }
        let mut sorted = vals.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut out = [0.0; QS.len()];
        s.quantiles(&QS, 1, &mut out);
        for (&q, &got) in QS.iter().zip(&out) {
            let want = exact(&sorted, q);
            assert!(
                (got - want).abs() <= A * want.abs(),
                "{name}: q={q} got {got} want {want}"
            );
        }
    }

    #[test]
    fn mult_is_safe() {
        let gamma = (1.0 + A) / (1.0 - A);
        let exact = 3.0 / (4.0 * gamma.ln());
        assert!(MULT >= exact * (1.0 + 1e-10) && MULT <= exact * (1.0 + 1e-8));
    }

    #[test]
    fn every_bin_is_narrow_enough() {
        let gamma = (1.0 + A) / (1.0 - A);
        let (lo_key, hi_key) = (key(f64::MIN_POSITIVE), key(f64::MAX));
        for k in lo_key..hi_key {
            let (m0, e0) = l_inv(f64::from(k) * BIN_WIDTH);
            let (m1, e1) = l_inv((f64::from(k) + 1.0) * BIN_WIDTH);
            let ratio = m1 / m0 * ldexp(1.0, e1 - e0);
            assert!(
                ratio <= gamma * (1.0 - 1e-10) && ratio > 1.0,
                "key {k}: ratio {ratio}"
            );
        }
    }

    #[test]
    fn mapping_error_bound() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let check = |x: f64, bound: f64| {
            let r = bin_value(key(x));
            assert!((r - x).abs() <= bound * x, "x={x:e} rep={r:e}");
        };
        for _ in 0..2_000_000 {
            let x = f64::from_bits(rng.next() & 0x7FEF_FFFF_FFFF_FFFF); // any positive normal or subnormal
            if x >= f64::MIN_POSITIVE {
                check(x, A);
            } else if x > 0.0 {
                check(x, 2.0 * A);
            }
            check(rng.log_unif(-6.0, 6.0), A);
        }
        for e in -1022..1024 {
            let p = ldexp(1.0, e);
            for x in [
                p,
                f64::from_bits(p.to_bits() + 1),
                f64::from_bits(p.to_bits() - 1),
            ] {
                if x.is_finite() && x >= f64::MIN_POSITIVE {
                    check(x, A);
                }
            }
        }
        // Top bin: its upper bound is beyond f64::MAX; the estimate is inf and gets clamped.
        assert!(bin_value(key(f64::MAX)) >= f64::MAX * (1.0 - A));
        for x in [f64::MIN_POSITIVE, 5e-324, 1e-320, 1e-310] {
            check(x, 2.0 * A);
        }
    }

    #[test]
    fn accuracy_against_exact() {
        let mut r = Rng(42);
        let n = 200_000;
        let uniform: Vec<f64> = (0..n).map(|_| r.unif() * 1000.0).collect();
        let expo: Vec<f64> = (0..n).map(|_| -r.unif().ln()).collect();
        let lognormal: Vec<f64> = (0..n).map(|_| (3.0 * r.normal()).exp()).collect();
        let log_unif: Vec<f64> = (0..n).map(|_| r.log_unif(-8.0, 8.0)).collect();
        let mixed: Vec<f64> = (0..n)
            .map(|i| match i % 4 {
                0 => 0.0,
                1 => -(2.0 * r.normal()).exp(),
                2 => r.log_unif(-5.0, 10.0),
                _ => r.unif() - 0.5,
            })
            .collect();
        let negative: Vec<f64> = lognormal.iter().map(|v| -v).collect();
        let constant = vec![3.25; 1000];
        let tiny: Vec<f64> = (0..n).map(|_| r.log_unif(-307.0, -300.0)).collect();
        let huge: Vec<f64> = (0..n).map(|_| -r.log_unif(295.0, 308.2)).collect();
        check("uniform", &uniform);
        check("exponential", &expo);
        check("lognormal", &lognormal);
        check("log-uniform 16 decades", &log_unif);
        check("mixed signs and zeros", &mixed);
        check("negative", &negative);
        check("constant", &constant);
        check("single", &[-7.5]);
        check("zeros", &[0.0, -0.0, 0.0]);
        check("tiny", &tiny);
        check("huge", &huge);
        check("small n", &uniform[..10]);
    }

    #[test]
    fn collapsed_range_is_documented_behaviour() {
        // 600 decades of positives: bins cover only the top ~16.4 decades of each slot.
        let mut r = Rng(7);
        let mut s = SummaryCore::new(600 * SEC, 5);
        let mut vals: Vec<f64> = (0..100_000).map(|_| r.log_unif(-300.0, 300.0)).collect();
        for (i, &v) in vals.iter().enumerate() {
            s.observe(v, i as u64 * 1_000_000); // 100 s: spread over several slots
        }
        vals.sort_by(f64::total_cmp);
        let mut out = [0.0; QS.len()];
        s.quantiles(&QS, 100 * SEC, &mut out);
        let tau = vals[vals.len() - 1] / 1e16;
        for (&q, &got) in QS.iter().zip(&out) {
            let x = exact(&vals, q);
            if x >= tau {
                assert!((got - x).abs() <= A * x, "q={q} got {got:e} want {x:e}");
            } else {
                assert!(
                    got >= (1.0 - A) * x && got < tau,
                    "q={q} got {got:e} want {x:e}"
                );
            }
        }
        assert_eq!(out[0], vals[0]);
        assert_eq!(out[6], vals[vals.len() - 1]);
    }

    #[test]
    fn window_expiry() {
        let max_age = 10 * SEC;
        let mut s = SummaryCore::new(max_age, 5);
        let mut out = [0.0; 3];
        s.quantiles(&[0.0, 0.5, 1.0], 0, &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "empty window");
        for _ in 0..10_000 {
            s.observe(1.0, 0);
        }
        s.observe(100.0, 2 * max_age);
        s.quantiles(&[0.5], 2 * max_age, &mut out[..1]);
        assert_eq!(out[0], 100.0);
        s.quantiles(&[0.5], 4 * max_age, &mut out[..1]);
        assert!(out[0].is_nan(), "everything expired");
    }

    #[test]
    fn window_bounds() {
        // N = 5, d = 2 s: an observation counts for between 8 s and 10 s.
        let mut s = SummaryCore::new(10 * SEC, 5);
        let mut out = [0.0];
        s.observe(5.0, 2 * SEC - 1); // last ns of slot 0
        s.quantiles(&[0.5], 10 * SEC - 1, &mut out);
        assert_eq!(out[0], 5.0, "still inside 8 s after");
        s.quantiles(&[0.5], 10 * SEC, &mut out);
        assert!(out[0].is_nan(), "gone once 5 slots passed");

        let mut s = SummaryCore::new(10 * SEC, 5);
        s.observe(1.0, 0);
        s.observe(2.0, 3 * SEC);
        s.observe(3.0, 9 * SEC);
        let mut two = [0.0; 2];
        s.quantiles(&[0.0, 1.0], 11 * SEC, &mut two);
        assert_eq!(two, [2.0, 3.0]);
        // N = 1: tumbling window.
        let mut s = SummaryCore::new(10 * SEC, 1);
        s.observe(1.0, 9 * SEC);
        s.quantiles(&[0.5], 10 * SEC, &mut out);
        assert!(out[0].is_nan());
    }

    #[test]
    fn weird_inputs_do_not_panic() {
        let mut s = SummaryCore::new(10 * SEC, 3);
        let mut out = [0.0; 4];
        s.observe(1.0, 100 * SEC);
        s.observe(2.0, 0); // time went backwards: counted in the current slot
        s.observe(3.0, 99 * SEC);
        s.quantiles(&[0.0, 0.5, 1.0, f64::NAN], 50 * SEC, &mut out);
        assert_eq!((out[0], out[2]), (1.0, 3.0));
        assert!((out[1] - 2.0).abs() <= 2.0 * A && out[3].is_nan());
        s.quantiles(&[-1.0, 2.0], 100 * SEC, &mut out[..2]); // q clamped
        assert_eq!(&out[..2], &[1.0, 3.0]);
        s.quantiles(&[0.5, 0.5], 100 * SEC, &mut out[..1]); // length mismatch
        for v in [
            f64::MAX,
            -f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::NAN,
            f64::INFINITY,
        ] {
            s.observe(v, u64::MAX);
        }
        s.quantiles(&QS, u64::MAX, &mut [0.0; 7]);
        for (max_age, n) in [(0, 0), (1, u32::MAX), (u64::MAX, 1), (3, 7)] {
            let mut s = SummaryCore::new(max_age, n);
            for t in [0, 1, u64::MAX, 5, u64::MAX - 1] {
                s.observe(1.5, t);
                s.quantiles(&QS, t, &mut [0.0; 7]);
            }
        }
        // Alternating extremes stress every store growth/collapse path.
        let mut s = SummaryCore::new(10 * SEC, 2);
        let mut r = Rng(3);
        for i in 0..200_000u64 {
            let v = f64::from_bits(r.next());
            if v.is_finite() {
                s.observe(v, i * 1000);
            }
        }
        let mut out = [0.0; 7];
        s.quantiles(&QS, 200_000_000, &mut out);
        assert!(out.iter().all(|v| v.is_finite()));
        assert!(format!("{s:?}").contains("SummaryCore"));
    }

    #[test]
    fn memory_is_bounded() {
        let bound = 5 * (std::mem::size_of::<Slot>() + 2 * MAX_BINS * 8);
        let run = |n: u64| {
            let mut s = SummaryCore::new(10 * SEC, 5);
            let mut r = Rng(11);
            for i in 0..n {
                let v = r.log_unif(-300.0, 300.0);
                let v = if i % 2 == 0 { v } else { -v };
                s.observe(v, i * (30 * SEC / n)); // three full windows of rotation
            }
            s.heap_bytes()
        };
        let (small, big) = (run(1_000), run(1_000_000));
        assert!(big <= bound, "{big} > {bound}");
        assert!(big <= small + small / 4, "{small} vs {big}");
        // A narrow distribution stays small.
        let mut s = SummaryCore::new(10 * SEC, 5);
        let mut r = Rng(5);
        for i in 0..1_000_000u64 {
            s.observe(r.log_unif(-3.0, 0.0), i * 30);
        }
        assert!(s.heap_bytes() <= 5 * (std::mem::size_of::<Slot>() + 3 * 125 * 8 * 5 / 4 + 64 * 8));
    }

    #[test]
    fn store_matches_model() {
        // Model: exact counts, with keys below `top - MAX_BINS + 1` counted at that floor.
        let mut r = Rng(1234);
        let mut st = Store::default();
        for round in 0..300 {
            st.bins.clear();
            let spread = [3u64, 100, 2000, 5000, 80_000][round % 5];
            let base = (r.next() % 80_000) as i64 - 40_000;
            let keys: Vec<i32> = (0..(r.next() % 3000))
                .map(|_| (base + (r.next() % spread) as i64 - spread as i64 / 2) as i32)
                .collect();
            for &k in &keys {
                st.add(k);
                assert!(st.bins.len() <= MAX_BINS && st.bins.capacity() <= MAX_BINS);
            }
            let Some(&top) = keys.iter().max() else {
                continue;
            };
            let floor = top - MAX_BINS as i32 + 1;
            let mut model = std::collections::BTreeMap::new();
            for &k in &keys {
                *model.entry(k.max(floor)).or_insert(0u64) += 1;
            }
            let (lo, hi) = st.range().unwrap_or((0, -1));
            assert_eq!(hi, top);
            let got: std::collections::BTreeMap<i32, u64> = (lo..=hi)
                .map(|k| (k, st.get(k)))
                .filter(|&(_, c)| c > 0)
                .collect();
            assert_eq!(got, model, "round {round}");
        }
    }

    #[test]
    fn quantiles_match_across_slots() {
        // Same data spread over time must give the same answer as all at once (merge is exact).
        let mut r = Rng(99);
        let vals: Vec<f64> = (0..50_000)
            .map(|_| (2.0 * r.normal()).exp() - 1.0)
            .collect();
        let mut a = SummaryCore::new(10 * SEC, 5);
        let mut b = SummaryCore::new(10 * SEC, 5);
        for (i, &v) in vals.iter().enumerate() {
            a.observe(v, 0);
            b.observe(v, i as u64 * 100_000); // 5 s
        }
        let (mut oa, mut ob) = ([0.0; 7], [0.0; 7]);
        a.quantiles(&QS, 5 * SEC, &mut oa);
        b.quantiles(&QS, 5 * SEC, &mut ob);
        assert_eq!(oa, ob);
    }
}
