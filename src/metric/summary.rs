//! Summary: quantiles over a sliding max-age window, plus all-time `_sum` and `_count`.
//!
//! The quantile engine ([`SummaryCore`]) keeps a ring of relative-error sketches, so the
//! memory of a series does not grow with the number of observations.

use super::summary_core::SummaryCore;
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

/// Defaults as client_golang's: a 10-minute window in 5 age buckets.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
pub const DEFAULT_AGE_BUCKETS: u32 = 5;
pub const DEFAULT_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

#[derive(Debug, Clone, PartialEq)]
pub struct SummaryParams {
    pub quantiles: Arc<[f64]>,
    pub max_age: Duration,
    pub age_buckets: u32,
}

impl Default for SummaryParams {
    fn default() -> Self {
        SummaryParams {
            quantiles: DEFAULT_QUANTILES.as_slice().into(),
            max_age: DEFAULT_MAX_AGE,
            age_buckets: DEFAULT_AGE_BUCKETS,
        }
    }
}

impl SummaryParams {
    pub fn new(quantiles: &[f64], max_age: Duration, age_buckets: u32) -> Result<Self> {
        if quantiles.iter().any(|q| !(0.0..=1.0).contains(q))
            || quantiles.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(Error::InvalidQuantiles);
        }
        if max_age.is_zero() || max_age.as_nanos() > u64::MAX as u128 || !(1..=1024).contains(&age_buckets) {
            return Err(Error::InvalidWindow);
        }
        Ok(SummaryParams { quantiles: quantiles.into(), max_age, age_buckets })
    }
}

#[derive(Debug)]
pub struct Summary {
    params: SummaryParams,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    core: SummaryCore,
    sum: f64,
    count: u64,
    /// A negative value was ever observed (see Histogram's field of the same name).
    negative: bool,
}

impl Summary {
    pub fn new(params: SummaryParams) -> Self {
        let core = SummaryCore::new(params.max_age.as_nanos() as u64, params.age_buckets);
        Summary { params, state: Mutex::new(State { core, sum: 0.0, count: 0, negative: false }) }
    }

    pub fn params(&self) -> &SummaryParams {
        &self.params
    }

    #[inline]
    pub fn observe(&self, v: f64) -> Result<()> {
        if v.is_nan() {
            return Err(Error::NanValue);
        }
        if v.is_infinite() {
            return Err(Error::NotFinite);
        }
        let now = crate::sys::monotonic_coarse_nanos();
        let mut s = self.state.lock();
        s.core.observe(v, now);
        s.sum += v;
        s.count += 1;
        s.negative |= v < 0.0;
        Ok(())
    }

    /// Quantile estimates (NaN for an empty window) into `out`; returns (count, sum),
    /// all from one consistent moment.
    pub fn snapshot_into(&self, out: &mut Vec<f64>) -> (u64, f64) {
        let (count, sum, _) = self.snapshot_with_sign(out);
        (count, sum)
    }

    /// [`Summary::snapshot_into`], plus whether a negative value was ever observed.
    pub fn snapshot_with_sign(&self, out: &mut Vec<f64>) -> (u64, f64, bool) {
        let now = crate::sys::monotonic_coarse_nanos();
        out.clear();
        out.resize(self.params.quantiles.len(), f64::NAN);
        let mut s = self.state.lock();
        let State { core, sum, count, negative } = &mut *s;
        core.quantiles(&self.params.quantiles, now, out);
        (*count, *sum, *negative)
    }

    pub fn count_sum(&self) -> (u64, f64) {
        let s = self.state.lock();
        (s.count, s.sum)
    }
}
