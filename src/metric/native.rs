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
use std::time::Duration;

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
    /// client_golang's `NativeHistogramBucketFactor`: the largest schema whose bucket
    /// growth `2^(2^-s)` is at most `factor` (8 for factors below that of schema 8). The
    /// factor must be finite and > 1.
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

/// The native part of a histogram.
#[derive(Debug)]
pub struct Native {
    params: NativeParams,
}

impl Native {
    pub fn new(params: NativeParams) -> Native {
        Native { params }
    }
    pub fn params(&self) -> &NativeParams {
        &self.params
    }
}
