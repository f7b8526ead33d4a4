//! Golden expositions: every type, both formats, byte for byte.

use qprom::expo::{Encoder, Format};
use qprom::metric::{MetricType, Params, SummaryParams};
use qprom::registry::{FamilyDesc, Registry};
use std::time::Duration;

fn render(reg: &Registry, fmt: Format) -> String {
    // Fixed creation times make `_created` deterministic.
    reg.for_each_family(|f| f.for_each_series(|s| s.set_created(1700000000.5)));
    String::from_utf8(Encoder::new().encode(reg, fmt).to_vec()).unwrap()
}

fn sample_registry() -> Registry {
    let r = Registry::new();
    let mut d = FamilyDesc::new("http_requests_total", MetricType::Counter, "Requests \"served\"\\ by\nhandler.", &["handler", "code"]);
    r.register(&d).unwrap();
    r.get_or_create("http_requests_total", &["a\"b\\c\nd", "200"], None).unwrap().inc(3.0).unwrap();
    r.get_or_create("http_requests_total", &["é", "500"], None).unwrap().inc(0.5).unwrap();

    d = FamilyDesc::new("temp_celsius", MetricType::Gauge, "Temperature.", &[]);
    d.unit = "celsius";
    r.register(&d).unwrap();
    r.get_or_create("temp_celsius", &[] as &[&str], None).unwrap().set(-12.25).unwrap();

    d = FamilyDesc::new("latency_seconds", MetricType::Histogram, "Latency.", &["h"]);
    d.params = Some(Params::Buckets(vec![0.1, 1.0].into()));
    r.register(&d).unwrap();
    let h = r.get_or_create("latency_seconds", &["pg"], None).unwrap();
    for v in [0.05, 0.5, 0.5, 3.0] {
        h.observe(v).unwrap();
    }

    d = FamilyDesc::new("size_bytes", MetricType::Summary, "", &[]);
    d.params = Some(Params::Summary(SummaryParams::new(&[0.5, 1.0], Duration::from_secs(60), 2).unwrap()));
    r.register(&d).unwrap();
    let s = r.get_or_create("size_bytes", &[] as &[&str], None).unwrap();
    for v in [10.0, 20.0, 30.0] {
        s.observe(v).unwrap();
    }

    r.register(&FamilyDesc::new("build", MetricType::Info, "Build.", &["version"])).unwrap();
    r.get_or_create("build", &["1.0"], None).unwrap();
    r
}

#[test]
fn text_0_0_4() {
    let got = render(&sample_registry(), Format::Text);
    let want = r#"# HELP build_info Build.
# TYPE build_info gauge
build_info{version="1.0"} 1
# HELP http_requests_total Requests "served"\\ by\nhandler.
# TYPE http_requests_total counter
http_requests_total{handler="a\"b\\c\nd",code="200"} 3
http_requests_total{handler="é",code="500"} 0.5
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{h="pg",le="0.1"} 1
latency_seconds_bucket{h="pg",le="1"} 3
latency_seconds_bucket{h="pg",le="+Inf"} 4
latency_seconds_count{h="pg"} 4
latency_seconds_sum{h="pg"} 4.05
# TYPE size_bytes summary
size_bytes{quantile="0.5"} Q50
size_bytes{quantile="1"} Q100
size_bytes_count 3
size_bytes_sum 60
# HELP temp_celsius Temperature.
# TYPE temp_celsius gauge
temp_celsius -12.25
"#;
    assert_eq!(got, with_quantiles(want, &got));
}

#[test]
fn openmetrics_1_0_0() {
    let got = render(&sample_registry(), Format::OpenMetrics);
    let want = r#"# TYPE build info
# HELP build Build.
build_info{version="1.0"} 1
# TYPE http_requests counter
# HELP http_requests Requests \"served\"\\ by\nhandler.
http_requests_total{handler="a\"b\\c\nd",code="200"} 3
http_requests_created{handler="a\"b\\c\nd",code="200"} 1700000000.5
http_requests_total{handler="é",code="500"} 0.5
http_requests_created{handler="é",code="500"} 1700000000.5
# TYPE latency_seconds histogram
# HELP latency_seconds Latency.
latency_seconds_bucket{h="pg",le="0.1"} 1
latency_seconds_bucket{h="pg",le="1"} 3
latency_seconds_bucket{h="pg",le="+Inf"} 4
latency_seconds_count{h="pg"} 4
latency_seconds_sum{h="pg"} 4.05
latency_seconds_created{h="pg"} 1700000000.5
# TYPE size_bytes summary
size_bytes{quantile="0.5"} Q50
size_bytes{quantile="1"} Q100
size_bytes_count 3
size_bytes_sum 60
size_bytes_created 1700000000.5
# TYPE temp_celsius gauge
# UNIT temp_celsius celsius
# HELP temp_celsius Temperature.
temp_celsius -12.25
# EOF
"#;
    assert_eq!(got, with_quantiles(want, &got));
}

/// Quantile estimates carry the sketch's relative error: check them within the bound,
/// then splice the rendered values into the golden text so the rest compares exactly.
fn with_quantiles(want: &str, got: &str) -> String {
    let q = |tag: &str| -> String {
        let line = got.lines().find(|l| l.starts_with(tag)).expect(tag);
        line.rsplit(' ').next().unwrap().to_string()
    };
    let q50 = q("size_bytes{quantile=\"0.5\"}");
    let q100 = q("size_bytes{quantile=\"1\"}");
    let rel = qprom::metric::summary_core::SummaryCore::RELATIVE_ERROR;
    assert!((q50.parse::<f64>().unwrap() - 20.0).abs() <= 20.0 * rel, "{q50}");
    assert!((q100.parse::<f64>().unwrap() - 30.0).abs() <= 30.0 * rel, "{q100}");
    want.replace("Q50", &q50).replace("Q100", &q100)
}

#[test]
fn big_integers_exact_and_specials() {
    let r = Registry::new();
    r.register(&FamilyDesc::new("c_total", MetricType::Counter, "", &[])).unwrap();
    let c = r.get_or_create("c_total", &[] as &[&str], None).unwrap();
    if let qprom::metric::Value::Counter(c) = &c.value {
        c.set_int((1 << 60) + 1);
    }
    r.register(&FamilyDesc::new("g", MetricType::Gauge, "", &["k"])).unwrap();
    r.get_or_create("g", &["inf"], None).unwrap().set(f64::INFINITY).unwrap();
    r.get_or_create("g", &["ninf"], None).unwrap().set(f64::NEG_INFINITY).unwrap();
    r.get_or_create("g", &["big"], None).unwrap().set(1e17).unwrap();
    r.get_or_create("g", &["tiny"], None).unwrap().set(1.5e-9).unwrap();
    let got = render(&r, Format::Text);
    assert!(got.contains("\nc_total 1152921504606846977\n"), "{got}");
    assert!(got.contains("g{k=\"inf\"} +Inf\n"));
    assert!(got.contains("g{k=\"ninf\"} -Inf\n"));
    assert!(got.contains("g{k=\"big\"} 100000000000000000\n"));
    assert!(got.contains("g{k=\"tiny\"} 1.5e-9\n"));
}
