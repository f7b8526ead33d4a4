//! Fixtures both benches use, so that their rows compare the same shapes: bucket bounds,
//! label names, prometheus-client's label set for them, and the observations.

use prometheus_client::encoding::EncodeLabelSet;

/// 10 finite bucket bounds (+Inf implicit), as PERF.md's "10 buckets".
pub const BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
pub const LABEL_NAMES: [&str; 2] = ["method", "code"];

/// prometheus-client's idiomatic label set: a derived struct of owned strings.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Labels {
    pub method: String,
    pub code: String,
}

/// Observations spread log-uniformly over 1 ms..10 s so every bucket is hit; fixed seed.
pub fn observations() -> Vec<f64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            10f64.powf(-3.0 + 4.0 * u)
        })
        .collect()
}
