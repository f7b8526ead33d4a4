//! Cardinality limits: creating a series beyond a family's limit fails with one clear
//! error, is counted (by its family, and in `qprom_series_limit_hits_total{family}`), changes
//! nothing else, and costs no memory however often it is tried. (tests/registry.rs has
//! the basic refusal; `examples/soak.rs` has the same under load with scrapes.)
//!
//! Tests that measure RSS re-run themselves alone in a child process, so that the other
//! tests of this binary, running in parallel threads, cannot move the number.

mod common;
use common::isolated;
use qprom::error::Error;
use qprom::http::{HttpConfig, Server};
use qprom::metric::MetricType;
use qprom::registry::{FamilyDesc, Registry, DEFAULT_SERIES_LIMIT};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

fn limited(reg: &Registry, name: &str, t: MetricType, labels: &[&str], limit: usize) {
    let mut d = FamilyDesc::new(name, t, "help", labels);
    d.series_limit = Some(limit);
    reg.register(&d).unwrap();
}

/// Resident set size in bytes (VmRSS).
fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

/// RSS may not grow by more than this between the warm point and the end of a loop:
/// over 900,000 refusals a leak of 2.4 bytes per refusal fails, over 250,000 churned
/// series one of 8.4 bytes per series; a single-threaded child process otherwise moves
/// by a few pages (measured: 0 KiB).
const RSS_DELTA_MAX: u64 = 2 << 20;

#[test]
fn a_million_new_label_sets_stay_at_the_limit_counted_and_free() {
    if !isolated("a_million_new_label_sets_stay_at_the_limit_counted_and_free") {
        return;
    }
    const LIMIT: usize = 1000;
    const ATTEMPTS: u64 = 1_000_000;
    const WARM: u64 = 100_000;
    let reg = Registry::new();
    limited(&reg, "req_total", MetricType::Counter, &["user", "path"], LIMIT);
    for i in 0..LIMIT {
        reg.get_or_create("req_total", &[format!("u{i}"), "/".into()], None).unwrap().inc(1.0).unwrap();
    }
    let fam = reg.family("req_total").unwrap();
    let before = reg.counts();
    let mut label = String::with_capacity(64);
    let mut rss_warm = 0;
    for n in 0..ATTEMPTS {
        if n == WARM {
            rss_warm = rss();
        }
        label.clear();
        write!(label, "attacker{n}").unwrap();
        // Through the family in hand (the q exports' path) and by name, alternately.
        let r = if n % 2 == 0 {
            reg.get_or_create_in(&fam, &[label.as_str(), "/x"], None)
        } else {
            reg.get_or_create("req_total", &[label.as_str(), "/x"], None)
        };
        let e = r.unwrap_err();
        assert_eq!(e, Error::SeriesLimit, "attempt {n}");
        assert_eq!(e.message(), "prom: too many series");
    }
    let rss_end = rss();
    assert_eq!(fam.series_limit_hits(), ATTEMPTS, "every refusal counted, once");
    assert_eq!(reg.series_limit_hits(), ATTEMPTS, "the registry's total is the families' sum");
    assert_eq!(fam.len(), LIMIT);
    assert_eq!(reg.counts(), before, "nothing else changed");
    assert_eq!(fam.get(&["attacker7", "/x"]).unwrap_err(), Error::UnknownSeries, "refusals leave no trace");
    // The family's existing series are untouched and still work.
    let mut total = 0.0;
    fam.for_each_series(|s| total += s.get());
    assert_eq!(total, LIMIT as f64);
    reg.get_or_create("req_total", &["u3", "/"], None).unwrap().inc(1.0).unwrap();
    assert_eq!(fam.series_limit_hits(), ATTEMPTS, "using an existing series is not a hit");
    // Room made by a removal is taken by exactly one new series.
    reg.remove_series("req_total", &["u0", "/"]).unwrap();
    reg.get_or_create("req_total", &["late", "/"], None).unwrap();
    assert_eq!(reg.get_or_create("req_total", &["later", "/"], None).unwrap_err(), Error::SeriesLimit);
    assert_eq!(fam.series_limit_hits(), ATTEMPTS + 1);
    println!(
        "RSS after {WARM} refusals {} KiB, after {ATTEMPTS} {} KiB (delta {} KiB, at most {} KiB)",
        rss_warm >> 10,
        rss_end >> 10,
        (rss_end as i64 - rss_warm as i64) / 1024,
        RSS_DELTA_MAX >> 10
    );
    assert!(
        rss_end <= rss_warm + RSS_DELTA_MAX,
        "RSS grew by {} KiB over {} refusals",
        (rss_end - rss_warm) >> 10,
        ATTEMPTS - WARM
    );
}

#[test]
fn churn_at_the_limit_reuses_slots_and_memory() {
    if !isolated("churn_at_the_limit_reuses_slots_and_memory") {
        return;
    }
    const LIMIT: usize = 1000;
    const ROUNDS: u64 = 300_000;
    const WARM: u64 = 50_000;
    let reg = Registry::new();
    limited(&reg, "sess_seconds", MetricType::Histogram, &["id"], LIMIT);
    let mut live = std::collections::VecDeque::new();
    for i in 0..LIMIT as u64 {
        let s = reg.get_or_create("sess_seconds", &[format!("s{i}")], None).unwrap();
        live.push_back((format!("s{i}"), s.handle()));
    }
    let mut rss_warm = 0;
    for n in LIMIT as u64..LIMIT as u64 + ROUNDS {
        if n == LIMIT as u64 + WARM {
            rss_warm = rss();
        }
        let (old, h) = live.pop_front().unwrap();
        reg.remove_series("sess_seconds", &[&old]).unwrap();
        assert_eq!(reg.with_handle(h, |_| ()).unwrap_err(), Error::UnknownSeries, "stale handle of {old}");
        let name = format!("s{n}");
        let s = reg.get_or_create("sess_seconds", &[&name], None).unwrap();
        s.observe(0.5).unwrap();
        // The handle's low 32 bits are its slot: freed slots are reused, so the slot
        // table never outgrows the live series.
        assert!((s.handle() & 0xffff_ffff) < LIMIT as u64, "slot {} for {name}", s.handle() & 0xffff_ffff);
        live.push_back((name, s.handle()));
    }
    let rss_end = rss();
    assert_eq!(reg.family("sess_seconds").unwrap().len(), LIMIT);
    assert_eq!(reg.series_limit_hits(), 0, "churn within the limit is never refused");
    println!(
        "RSS after {WARM} churned series {} KiB, after {ROUNDS} {} KiB (at most +{} KiB)",
        rss_warm >> 10,
        rss_end >> 10,
        RSS_DELTA_MAX >> 10
    );
    assert!(rss_end <= rss_warm + RSS_DELTA_MAX, "RSS grew by {} KiB", (rss_end - rss_warm) >> 10);
}

#[test]
fn concurrent_creators_get_exactly_the_limit() {
    const LIMIT: usize = 1000;
    const THREADS: u64 = 4;
    const EACH: u64 = 50_000;
    let reg = Arc::new(Registry::new());
    limited(&reg, "c_total", MetricType::Counter, &["k"], LIMIT);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let reg = reg.clone();
            std::thread::spawn(move || {
                let (mut created, mut refused) = (0u64, 0u64);
                for i in 0..EACH {
                    match reg.get_or_create("c_total", &[format!("t{t}-{i}")], None) {
                        Ok(s) => {
                            s.inc(1.0).unwrap();
                            created += 1;
                        }
                        Err(Error::SeriesLimit) => refused += 1,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                (created, refused)
            })
        })
        .collect();
    let (created, refused) = threads.into_iter().map(|h| h.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(created, LIMIT as u64);
    assert_eq!(refused, THREADS * EACH - LIMIT as u64);
    let fam = reg.family("c_total").unwrap();
    assert_eq!(fam.series_limit_hits(), refused, "racing refusals all counted");
    assert_eq!(reg.series_limit_hits(), refused);
    assert_eq!(fam.len(), LIMIT);
    let mut total = 0.0;
    fam.for_each_series(|s| total += s.get());
    assert_eq!(total, LIMIT as f64, "every created series is the one its creator updated");
}

#[test]
fn limits_are_per_family_and_only_refusals_count() {
    let reg = Registry::new();
    limited(&reg, "a", MetricType::Gauge, &["k"], 2);
    limited(&reg, "b", MetricType::Summary, &["k"], 3);
    for k in ["x", "y"] {
        reg.get_or_create("a", &[k], None).unwrap();
    }
    assert_eq!(reg.get_or_create("a", &["z"], None).unwrap_err(), Error::SeriesLimit);
    // A full family does not stop another one.
    for k in ["x", "y", "z"] {
        reg.get_or_create("b", &[k], None).unwrap().observe(1.0).unwrap();
    }
    assert_eq!(reg.get_or_create("b", &["w"], None).unwrap_err(), Error::SeriesLimit);
    let hits = |name: &str| reg.family(name).unwrap().series_limit_hits();
    assert_eq!((hits("a"), hits("b")), (1, 1), "each family counts its own refusals");
    assert_eq!(reg.series_limit_hits(), 2, "hits are summed across families");
    // Other errors on a full family are not limit hits, and report themselves.
    assert_eq!(reg.get_or_create("a", &["z", "extra"], None).unwrap_err(), Error::LabelCount);
    assert_eq!(reg.get_or_create("nope", &["z"], None).unwrap_err(), Error::UnknownMetric);
    assert_eq!(reg.family("a").unwrap().get(&["z"]).unwrap_err(), Error::UnknownSeries);
    reg.get_or_create("a", &["x"], None).unwrap().set(3.0).unwrap();
    assert_eq!((hits("a"), hits("b")), (1, 1));
    assert_eq!(reg.counts().1, 5);
}

#[test]
fn default_limit_and_registry_wide_default() {
    let reg = Registry::new();
    assert_eq!(reg.default_series_limit(), DEFAULT_SERIES_LIMIT);
    reg.register(&FamilyDesc::new("d", MetricType::Counter, "", &["k"])).unwrap();
    let fam = reg.family("d").unwrap();
    assert_eq!(fam.series_limit(), DEFAULT_SERIES_LIMIT);
    for i in 0..DEFAULT_SERIES_LIMIT {
        reg.get_or_create_in(&fam, &[i.to_string()], None).unwrap();
    }
    assert_eq!(reg.get_or_create_in(&fam, &["one more"], None).unwrap_err(), Error::SeriesLimit);
    // A new default applies to families registered from then on, not to existing ones.
    reg.set_default_series_limit(2).unwrap();
    assert_eq!(reg.set_default_series_limit(0).unwrap_err(), Error::InvalidSeriesLimit);
    assert_eq!(reg.default_series_limit(), 2);
    reg.register(&FamilyDesc::new("e", MetricType::Gauge, "", &["k"])).unwrap();
    assert_eq!(reg.family("e").unwrap().series_limit(), 2);
    assert_eq!(fam.series_limit(), DEFAULT_SERIES_LIMIT);
    reg.get_or_create("e", &["1"], None).unwrap();
    reg.get_or_create("e", &["2"], None).unwrap();
    assert_eq!(reg.get_or_create("e", &["3"], None).unwrap_err(), Error::SeriesLimit);
    assert_eq!((fam.series_limit_hits(), reg.family("e").unwrap().series_limit_hits()), (1, 1));
    assert_eq!(reg.series_limit_hits(), 2);
    let mut d = FamilyDesc::new("f", MetricType::Gauge, "", &["k"]);
    d.series_limit = Some(0);
    assert_eq!(reg.register(&d).unwrap_err(), Error::InvalidSeriesLimit);
}

/// GET /metrics over a plain socket; the listener closes the connection after answering.
fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 "), "{}", &out[..out.len().min(200)]);
    out
}

fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Series in a text 0.0.4 body, counted from its sample lines: one line per counter or
/// gauge series, and a histogram series by its `_count` line (its `_bucket` and `_sum`
/// lines left out). Good for bodies without summaries or gauges named `*_sum`/`*_bucket`.
fn series_in(body: &str) -> usize {
    let head_end = body.find("\r\n\r\n").map_or(0, |i| i + 4);
    body[head_end..]
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .filter(|name| !name.ends_with("_bucket") && !name.ends_with("_sum"))
        .count()
}

#[test]
fn refusals_show_in_the_scrape_and_refused_series_do_not() {
    let reg = Arc::new(Registry::new());
    limited(&reg, "tenant_requests_total", MetricType::Counter, &["tenant"], 3);
    let cfg = HttpConfig { bind: "127.0.0.1".into(), process_metrics: false, ..HttpConfig::default() };
    let srv = Server::start(cfg, reg.clone(), None).unwrap();
    limited(&reg, "calm_total", MetricType::Counter, &["k"], 1);
    const TENANT: &str = "qprom_series_limit_hits_total{family=\"tenant_requests_total\"}";
    const CALM: &str = "qprom_series_limit_hits_total{family=\"calm_total\"}";
    let body = scrape(srv.local_port());
    // Every labelled family has its series from the first scrape, so increase() sees the first hit.
    assert_eq!(sample(&body, TENANT), Some(0.0));
    assert_eq!(sample(&body, CALM), Some(0.0));
    assert_eq!(sample(&body, "qprom_series_limit_hits_total{family=\"qprom_scrapes_total\"}"), Some(0.0));
    assert_eq!(sample(&body, "qprom_series_limit_hits_total"), None, "no unlabelled total");
    let unlabelled = "qprom_series_limit_hits_total{family=\"qprom_series\"}";
    assert_eq!(sample(&body, unlabelled), None, "a family without labels is never refused");
    let series0 = sample(&body, "qprom_series").expect("qprom_series present");
    assert_eq!(series0, series_in(&body) as f64, "as many as the scrape shows");
    for i in 0..10 {
        let r = reg.get_or_create("tenant_requests_total", &[format!("t{i}")], None);
        assert_eq!(r.is_ok(), i < 3, "tenant {i}");
    }
    reg.get_or_create("calm_total", &["only"], None).unwrap();
    let body = scrape(srv.local_port());
    assert_eq!(sample(&body, TENANT), Some(7.0), "the flooded family is the one named");
    assert_eq!(sample(&body, CALM), Some(0.0), "a family at its limit but not refused has no hit");
    assert_eq!(sample(&body, "tenant_requests_total{tenant=\"t2\"}"), Some(0.0));
    assert!(!body.contains("tenant=\"t3\""), "a refused series is never exposed");
    assert_eq!(sample(&body, "qprom_series"), Some(series0 + 4.0), "10 attempts, 3 accepted, and calm's one");
    assert_eq!(series_in(&body), series0 as usize + 4);
    // The series of an unregistered family goes with it; one registered anew starts at 0.
    reg.unregister("calm_total").unwrap();
    reg.unregister("tenant_requests_total").unwrap();
    limited(&reg, "tenant_requests_total", MetricType::Counter, &["tenant"], 3);
    let body = scrape(srv.local_port());
    assert_eq!(sample(&body, CALM), None, "{body}");
    assert_eq!(sample(&body, TENANT), Some(0.0));
    srv.stop();
}
