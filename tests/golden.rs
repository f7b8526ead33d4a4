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

/// Exemplars: after a counter's `_total` and after bucket lines in OpenMetrics (label
/// values escaped as label values are), never in text 0.0.4; `_count`/`_sum` unchanged.
#[test]
fn exemplars_openmetrics_only() {
    use qprom::metric::Exemplar;
    let ex = |pairs: &[(&str, &str)], v: f64, ts: f64| {
        Exemplar::new(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), v, ts).unwrap()
    };
    let r = Registry::new();
    r.register(&FamilyDesc::new("jobs_total", MetricType::Counter, "Jobs.", &["q"])).unwrap();
    let c = r.get_or_create("jobs_total", &["a"], None).unwrap();
    c.inc_with_exemplar(2.0, ex(&[("trace_id", "x\"y\\z\nw"), ("user", "é")], 2.0, 1700000001.25)).unwrap();
    c.inc(1.0).unwrap(); // a plain increment keeps the exemplar
    r.get_or_create("jobs_total", &["b"], None).unwrap().inc(1.0).unwrap();
    let mut d = FamilyDesc::new("lat_seconds", MetricType::Histogram, "", &[]);
    d.params = Some(Params::Buckets(vec![0.1, 1.0].into()));
    r.register(&d).unwrap();
    let h = r.get_or_create("lat_seconds", &[] as &[&str], None).unwrap();
    h.observe(0.05).unwrap();
    h.observe_with_exemplar(0.5, ex(&[("user", "bob")], 0.5, 1700000002.0)).unwrap();
    h.observe_with_exemplar(0.7, ex(&[("user", "carol")], 0.7, 1700000003.5)).unwrap();
    h.observe_with_exemplar(2.5, ex(&[("fn", ".q.slow")], 2.5, 1700000004.0)).unwrap();
    let got = render(&r, Format::OpenMetrics);
    let want = r#"# TYPE jobs counter
# HELP jobs Jobs.
jobs_total{q="a"} 3 # {trace_id="x\"y\\z\nw",user="é"} 2 1700000001.25
jobs_created{q="a"} 1700000000.5
jobs_total{q="b"} 1
jobs_created{q="b"} 1700000000.5
# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.1"} 1
lat_seconds_bucket{le="1"} 3 # {user="carol"} 0.7 1700000003.5
lat_seconds_bucket{le="+Inf"} 4 # {fn=".q.slow"} 2.5 1700000004
lat_seconds_count 4
lat_seconds_sum 3.75
lat_seconds_created 1700000000.5
# EOF
"#;
    assert_eq!(got, want);
    let text = render(&r, Format::Text);
    assert!(!text.contains(" # "), "no exemplars in text 0.0.4:\n{text}");
    assert!(text.contains("\njobs_total{q=\"a\"} 3\n") && text.contains("\nlat_seconds_bucket{le=\"1\"} 3\n"), "{text}");
}
