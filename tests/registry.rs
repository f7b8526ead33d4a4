//! The store's contract: identity of series, validation, limits, removal, handles, threads.

use qprom::error::Error;
use qprom::metric::{MetricType, Params};
use qprom::registry::{FamilyDesc, Registry};
use std::sync::Arc;

fn reg_with(name: &str, t: MetricType, labels: &[&str]) -> Registry {
    let r = Registry::new();
    r.register(&FamilyDesc::new(name, t, "help", labels)).unwrap();
    r
}

#[test]
fn label_tuples_are_compared_not_joined() {
    let r = reg_with("c_total", MetricType::Counter, &["a", "b"]);
    let tuples = [["ab", "c"], ["a", "bc"], ["a|b", "c"], ["a", "b|c"]];
    for (i, t) in tuples.iter().enumerate() {
        r.get_or_create("c_total", t, None).unwrap().inc((i + 1) as f64).unwrap();
    }
    assert_eq!(r.family("c_total").unwrap().len(), 4);
    for (i, t) in tuples.iter().enumerate() {
        assert_eq!(r.family("c_total").unwrap().get(t).unwrap().get(), (i + 1) as f64);
    }
}

#[test]
fn name_validation() {
    let r = Registry::new();
    for bad in ["", "1abc", "a-b", "a b", "é", "a\n"] {
        let e = r.register(&FamilyDesc::new(bad, MetricType::Gauge, "", &[])).unwrap_err();
        assert_eq!(e, Error::InvalidMetricName, "{bad:?}");
    }
    for good in ["a", ":a", "a:b_c9", "a_"] {
        r.register(&FamilyDesc::new(good, MetricType::Gauge, "", &[])).unwrap();
    }
    // OpenMetrics 1.0 reserves family and label names beginning with an underscore.
    for bad in ["_a", "_", "__a", "_a_total"] {
        let e = r.register(&FamilyDesc::new(bad, MetricType::Counter, "", &[])).unwrap_err();
        assert_eq!(e, Error::ReservedMetricName, "{bad:?}");
    }
    let lbl = |l: &'static str, t| r.register(&FamilyDesc::new("x", t, "", &[l])).unwrap_err();
    assert_eq!(lbl("1a", MetricType::Gauge), Error::InvalidLabelName);
    assert_eq!(lbl("a:b", MetricType::Gauge), Error::InvalidLabelName);
    assert_eq!(lbl("", MetricType::Gauge), Error::InvalidLabelName);
    assert_eq!(lbl("__x", MetricType::Gauge), Error::ReservedLabelName);
    assert_eq!(lbl("_x", MetricType::Gauge), Error::ReservedLabelName);
    assert_eq!(lbl("le", MetricType::Histogram), Error::ReservedLabelName);
    assert_eq!(lbl("quantile", MetricType::Summary), Error::ReservedLabelName);
    assert_eq!(
        r.register(&FamilyDesc::new("x", MetricType::Gauge, "", &["a", "a"])).unwrap_err(),
        Error::DuplicateLabelName
    );
    // Many names: the duplicate is found wherever it is (a sorted copy, not all pairs).
    let many: Vec<String> = (0..40_000).map(|i| format!("l{i}")).collect();
    let mut names: Vec<&str> = many.iter().map(String::as_str).collect();
    r.register(&FamilyDesc::new("wide", MetricType::Gauge, "", &names)).unwrap();
    names.push("l20000");
    assert_eq!(
        r.register(&FamilyDesc::new("wide2", MetricType::Gauge, "", &names)).unwrap_err(),
        Error::DuplicateLabelName
    );
    // le is an ordinary label on a gauge.
    r.register(&FamilyDesc::new("y", MetricType::Gauge, "", &["le"])).unwrap();
    assert!(r.family("x").is_err(), "failed registrations leave nothing behind");
}

#[test]
fn re_registration() {
    let r = reg_with("m", MetricType::Gauge, &["a"]);
    let f1 = r.family("m").unwrap();
    let f2 = r.register(&FamilyDesc::new("m", MetricType::Gauge, "other help", &["a"])).unwrap();
    assert!(Arc::ptr_eq(&f1, &f2));
    assert_eq!(r.register(&FamilyDesc::new("m", MetricType::Counter, "", &["a"])).unwrap_err(), Error::TypeConflict);
    assert_eq!(r.register(&FamilyDesc::new("m", MetricType::Gauge, "", &["b"])).unwrap_err(), Error::LabelConflict);
    assert_eq!(r.register(&FamilyDesc::new("m", MetricType::Gauge, "", &[])).unwrap_err(), Error::LabelConflict);
    assert_eq!(r.family("m").unwrap().metric_type(), MetricType::Gauge);
}

#[test]
fn sample_name_collisions() {
    let r = reg_with("x", MetricType::Counter, &[]);
    assert_eq!(r.register(&FamilyDesc::new("x_total", MetricType::Gauge, "", &[])).unwrap_err(), Error::NameCollision);
    assert_eq!(r.register(&FamilyDesc::new("x_created", MetricType::Gauge, "", &[])).unwrap_err(), Error::NameCollision);
    r.register(&FamilyDesc::new("h", MetricType::Histogram, "", &[])).unwrap();
    assert_eq!(r.register(&FamilyDesc::new("h_bucket", MetricType::Gauge, "", &[])).unwrap_err(), Error::NameCollision);
    assert_eq!(r.register(&FamilyDesc::new("h_count", MetricType::Counter, "", &[])).unwrap_err(), Error::NameCollision);
    r.unregister("h").unwrap();
    r.register(&FamilyDesc::new("h_bucket", MetricType::Gauge, "", &[])).unwrap();
}

#[test]
fn units_must_be_the_name_suffix() {
    let r = Registry::new();
    let mut d = FamilyDesc::new("req_seconds_total", MetricType::Counter, "", &[]);
    d.unit = "seconds";
    r.register(&d).unwrap();
    for (name, unit) in [("req_total", "seconds"), ("seconds", "seconds"), ("a_b-c", "b-c"), ("ab_c", "b_c x")] {
        let mut d = FamilyDesc::new(name, MetricType::Gauge, "", &[]);
        d.unit = unit;
        assert!(r.register(&d).is_err(), "{name} {unit}");
    }
    // OpenMetrics 1.0: an info family's unit must be empty (a valid suffix or not).
    let mut d = FamilyDesc::new("build_bytes_info", MetricType::Info, "", &["v"]);
    d.unit = "bytes";
    assert_eq!(r.register(&d).unwrap_err(), Error::InfoUnit);
    assert!(r.family("build_bytes_info").is_err());
}

#[test]
fn params_are_checked() {
    let r = Registry::new();
    let mut d = FamilyDesc::new("h", MetricType::Histogram, "", &[]);
    d.params = Some(Params::None);
    assert_eq!(r.register(&d).unwrap_err(), Error::InvalidParams);
    d.params = Some(Params::Buckets(vec![1.0, 2.0].into()));
    r.register(&d).unwrap();
    let g = reg_with("g", MetricType::Gauge, &["a"]);
    assert_eq!(g.get_or_create("g", &["x"], Some(&Params::Buckets(vec![1.0].into()))).unwrap_err(), Error::InvalidParams);
}

#[test]
fn label_count_and_types() {
    let r = reg_with("c", MetricType::Counter, &["a"]);
    assert_eq!(r.get_or_create("c", &["x", "y"], None).unwrap_err(), Error::LabelCount);
    assert_eq!(r.get_or_create("c", &[] as &[&str], None).unwrap_err(), Error::LabelCount);
    assert_eq!(r.get_or_create("nope", &["x"], None).unwrap_err(), Error::UnknownMetric);
    let s = r.get_or_create("c", &["x"], None).unwrap();
    assert_eq!(s.observe(1.0), Err(Error::WrongType));
    assert_eq!(s.dec(1.0), Err(Error::CounterDecrease));
    assert_eq!(s.inc(-1.0), Err(Error::NegativeIncrement));
    assert_eq!(s.get(), 0.0);
}

#[test]
fn series_limit_refuses_and_counts() {
    let r = Registry::new();
    let mut d = FamilyDesc::new("g", MetricType::Gauge, "", &["i"]);
    d.series_limit = Some(3);
    r.register(&d).unwrap();
    for i in 0..3 {
        r.get_or_create("g", &[i.to_string()], None).unwrap();
    }
    assert_eq!(r.get_or_create("g", &["3"], None).unwrap_err(), Error::SeriesLimit);
    assert_eq!(r.series_limit_hits(), 1);
    r.get_or_create("g", &["1"], None).unwrap(); // existing series are still found
    r.remove_series("g", &["0"]).unwrap();
    r.get_or_create("g", &["3"], None).unwrap();
    assert_eq!(r.family("g").unwrap().len(), 3);
    assert_eq!(r.set_default_series_limit(0), Err(Error::InvalidSeriesLimit));
}

#[test]
fn removal_and_stale_handles() {
    let r = reg_with("g", MetricType::Gauge, &["k"]);
    let names: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
    let handles: Vec<u64> = names.iter().map(|n| r.get_or_create("g", &[n], None).unwrap().handle()).collect();
    for (i, h) in handles.iter().enumerate() {
        r.with_handle(*h, |s| s.set(i as f64)).unwrap().unwrap();
    }
    // Remove every other series: swap-removal must keep the index right for the rest.
    for n in names.iter().step_by(2) {
        r.remove_series("g", &[n]).unwrap();
    }
    assert_eq!(r.remove_series("g", &["s0"]).unwrap_err(), Error::UnknownSeries);
    for (i, n) in names.iter().enumerate() {
        let got = r.family("g").unwrap().get(&[n]).map(|s| s.get());
        if i % 2 == 0 {
            assert_eq!(got, Err(Error::UnknownSeries));
            assert_eq!(r.with_handle(handles[i], |_| ()).unwrap_err(), Error::UnknownSeries);
        } else {
            assert_eq!(got, Ok(i as f64));
            assert_eq!(r.with_handle(handles[i], |s| s.get()), Ok(i as f64));
        }
    }
    // A slot reused by a new series does not answer to the old handle.
    let fresh = r.get_or_create("g", &["new"], None).unwrap().handle();
    assert!(!handles.contains(&fresh));
    r.unregister("g").unwrap();
    assert_eq!(r.with_handle(fresh, |_| ()).unwrap_err(), Error::UnknownSeries);
    assert_eq!(r.unregister("g").unwrap_err(), Error::UnknownMetric);
    assert_eq!(r.with_handle(0, |_| ()).unwrap_err(), Error::UnknownSeries);
    assert_eq!(r.with_handle(u64::MAX, |_| ()).unwrap_err(), Error::UnknownSeries);
}

#[test]
fn concurrent_creation_and_updates_are_exact() {
    let r = Arc::new(reg_with("c_total", MetricType::Counter, &["t"]));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let key = (i % 7).to_string();
                    let f = r.family("c_total").unwrap();
                    match f.with_series(&[&key], |s| s.inc(1.0)) {
                        Ok(res) => res.unwrap(),
                        Err(_) => r.get_or_create("c_total", &[&key], None).unwrap().inc(1.0).unwrap(),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let f = r.family("c_total").unwrap();
    assert_eq!(f.len(), 7);
    let mut total = 0.0;
    f.for_each_series(|s| total += s.get());
    assert_eq!(total, 80_000.0);
}
