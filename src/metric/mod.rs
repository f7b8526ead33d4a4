//! Metric values: one small file per type, no names, no labels, no I/O.

pub mod counter;
pub mod exemplar;
pub mod gauge;
pub mod histogram;
pub mod native;
pub mod summary;
pub mod summary_core;

pub use counter::{Counter, CounterValue};
pub use gauge::Gauge;
pub use exemplar::Exemplar;
pub use histogram::{validate_buckets, Histogram};
pub use native::{NativeParams, NativeSnapshot};
pub use summary::{Summary, SummaryParams};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The Prometheus metric types qprom stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Info,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            _ => return None,
        })
    }
}

/// Type parameters of a family (or of one series, as KX's `addmetric` allows).
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    None,
    Buckets(Arc<[f64]>),
    /// A native histogram, with classic buckets too when the bounds are not empty (only
    /// `+Inf` when they are).
    Native(Arc<[f64]>, NativeParams),
    Summary(SummaryParams),
}

/// Prometheus' default buckets (client_golang's DefBuckets), in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Params {
    /// The parameters a new family of type `t` gets when none are given.
    pub fn default_for(t: MetricType) -> Params {
        match t {
            MetricType::Histogram => Params::Buckets(DEFAULT_BUCKETS.as_slice().into()),
            MetricType::Summary => Params::Summary(SummaryParams::default()),
            _ => Params::None,
        }
    }

    pub fn fits(&self, t: MetricType) -> bool {
        matches!(
            (self, t),
            (Params::Buckets(_) | Params::Native(..), MetricType::Histogram)
                | (Params::Summary(_), MetricType::Summary)
                | (Params::None, MetricType::Counter | MetricType::Gauge | MetricType::Info)
        )
    }
}

/// The value cell of one series.
#[derive(Debug)]
pub enum Value {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
    Summary(Summary),
    /// Info series have the constant value 1; their content is their labels.
    Info,
}

impl Value {
    pub fn new(t: MetricType, params: &Params) -> Value {
        match (t, params) {
            (MetricType::Counter, _) => Value::Counter(Counter::new()),
            (MetricType::Gauge, _) => Value::Gauge(Gauge::new()),
            (MetricType::Histogram, Params::Buckets(b)) => Value::Histogram(Histogram::new(b.clone())),
            (MetricType::Histogram, Params::Native(b, n)) => Value::Histogram(Histogram::with_native(b.clone(), Some(n.clone()))),
            (MetricType::Histogram, _) => {
                Value::Histogram(Histogram::new(DEFAULT_BUCKETS.as_slice().into()))
            }
            (MetricType::Summary, Params::Summary(p)) => Value::Summary(Summary::new(p.clone())),
            (MetricType::Summary, _) => Value::Summary(Summary::new(SummaryParams::default())),
            (MetricType::Info, _) => Value::Info,
        }
    }

    pub fn metric_type(&self) -> MetricType {
        match self {
            Value::Counter(_) => MetricType::Counter,
            Value::Gauge(_) => MetricType::Gauge,
            Value::Histogram(_) => MetricType::Histogram,
            Value::Summary(_) => MetricType::Summary,
            Value::Info => MetricType::Info,
        }
    }
}

/// An f64 in an AtomicU64 (its bit pattern), updated by compare-and-swap.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub fn new(v: f64) -> Self {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
    #[inline]
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed)
    }
    #[inline]
    pub fn add(&self, d: f64) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |b| Some((f64::from_bits(b) + d).to_bits()));
    }
    /// Applies `f` atomically; `f` returning None leaves the value unchanged and fails.
    pub fn try_update(&self, mut f: impl FnMut(f64) -> Option<f64>) -> Result<f64, f64> {
        self.0
            .fetch_update(Relaxed, Relaxed, |b| f(f64::from_bits(b)).map(f64::to_bits))
            .map(f64::from_bits)
            .map_err(f64::from_bits)
    }
}
