//! Profiling aid: renders 10k histograms (2 labels, 10 buckets) in a loop.
//! `cargo run --release --no-default-features --example render_hist -- [iterations]`
use qprom::expo::{Encoder, Format};
use qprom::metric::{MetricType, Params};
use qprom::registry::{FamilyDesc, Registry};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let reg = Registry::new();
    let mut d = FamilyDesc::new("rh_seconds", MetricType::Histogram, "h", &["method", "code"]);
    d.params = Some(Params::Buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0].into()));
    d.series_limit = Some(20_000);
    reg.register(&d).unwrap();
    for i in 0..10_000 {
        let s = reg.get_or_create("rh_seconds", &[format!("m{}", i % 7), format!("{}", 200 + i)], None).unwrap();
        for k in 0..5 {
            s.observe(((i * 5 + k) % 1000) as f64 / 997.0).unwrap();
        }
    }
    let mut enc = Encoder::new();
    let t = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        bytes += enc.encode(&reg, Format::Text).len();
    }
    println!("{:.2} ms per render ({} bytes)", t.elapsed().as_secs_f64() * 1e3 / n as f64, bytes / n);
}
