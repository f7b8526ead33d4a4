//! The store side of KX's addmetric on an existing series (issue #19 item 3): an
//! unlabelled metric has its series from definition, and `addmetric[m;();params;…]` must
//! give it `params`, keeping its handle, or refuse; never keep other params silently.

use qprom::error::Error;
use qprom::metric::{MetricType, Params, SummaryParams, Value};
use qprom::registry::{FamilyDesc, Registry};
use std::time::Duration;

fn quantiles(q: &[f64]) -> Params {
    Params::Summary(SummaryParams::new(q, Duration::from_secs(600), 5).unwrap())
}

#[test]
fn reconfigure_keeps_the_handle_and_takes_the_params() {
    let r = Registry::new();
    let fam = r.register(&FamilyDesc::new("size_updates", MetricType::Summary, "size of updates", &[])).unwrap();
    let none: [&str; 0] = [];
    let h = fam.get(&none).unwrap().handle();
    let s = r.reconfigure_series(&fam, &none, &quantiles(&[0.25, 0.5, 0.75])).unwrap();
    assert_eq!(s.handle(), h);
    drop(s);
    r.with_handle(h, |s| match &s.value {
        Value::Summary(sm) => assert_eq!(&sm.params().quantiles[..], &[0.25, 0.5, 0.75]),
        _ => panic!("not a summary"),
    })
    .unwrap();
    // the family's view (scrapes) and the handle's are the same series
    fam.with_series(&none, |s| assert_eq!(s.handle(), h)).unwrap();
    r.with_handle(h, |s| s.observe(10.0)).unwrap().unwrap();
    assert_eq!(fam.get(&none).unwrap().get(), 10.0);
}

#[test]
fn reconfigure_refuses_a_series_with_data_or_held_elsewhere() {
    let r = Registry::new();
    let fam = r.register(&FamilyDesc::new("lat_seconds", MetricType::Histogram, "h", &["a"])).unwrap();
    let buckets = Params::Buckets(qprom::metric::validate_buckets(&[1.0, 2.0]).unwrap());
    let held = r.get_or_create("lat_seconds", &["x"], None).unwrap();
    assert_eq!(r.reconfigure_series(&fam, &["x"], &buckets).unwrap_err(), Error::ParamsFixed);
    drop(held);
    r.get_or_create("lat_seconds", &["x"], None).unwrap().observe(0.5).unwrap();
    assert_eq!(r.reconfigure_series(&fam, &["x"], &buckets).unwrap_err(), Error::ParamsFixed);
    assert_eq!(fam.get(&["x"]).unwrap().get(), 0.5, "a refusal changes nothing");
    assert_eq!(r.reconfigure_series(&fam, &["y"], &buckets).unwrap_err(), Error::UnknownSeries);
    assert_eq!(r.reconfigure_series(&fam, &["x"], &Params::None).unwrap_err(), Error::InvalidParams);
}
