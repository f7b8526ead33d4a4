//! Issue 13, item 2: every read of a counter or gauge (get, and the text and OpenMetrics
//! encoders that the listener, the textfile writer and push all use) sees a value the
//! metric had, and a metric only set upward never reads lower, while another thread sets it.
//!
//! Each test reads for a fixed second (no sleeps: the reader loops, the writer runs until
//! told to stop). Before the counter's seqlock, the counter test failed here in every run
//! within the first fraction of that second; a gauge is one atomic word and always passed.

use qprom::expo::{Encoder, Format};
use qprom::metric::MetricType;
use qprom::registry::{FamilyDesc, Registry};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sets `name` to k, then k + 0.5, for k = 1, 2, … on another thread while `read` runs
/// for a second; every value read must be one of those and never lower than the last.
fn check_reads(mtype: MetricType, name: &str, mut read: impl FnMut(&Registry) -> f64) {
    let reg = Arc::new(Registry::new());
    reg.register(&FamilyDesc::new(name, mtype, "", &[])).unwrap();
    let s = reg.get_or_create(name, &[] as &[&str], None).unwrap();
    s.set(1.0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut k = 1u64;
            while !stop.load(Relaxed) {
                s.set(k as f64).unwrap();
                s.set(k as f64 + 0.5).unwrap();
                k += 1;
            }
        })
    };
    let (mut last, mut reads, mut bad) = (1.0f64, 0u64, None);
    let deadline = Instant::now() + Duration::from_secs(1);
    while bad.is_none() && Instant::now() < deadline {
        for _ in 0..100 {
            let v = read(&reg);
            if v < last || (v * 2.0).fract() != 0.0 {
                bad = Some((last, v));
            }
            last = v;
            reads += 1;
        }
    }
    stop.store(true, Relaxed);
    writer.join().unwrap();
    assert_eq!(bad, None, "{name}: a read saw a value it never had (previous, read) after {reads} reads");
    assert!(last > 100.0, "{name}: the writer barely ran ({last})");
}

/// The value on the sample line `<sample> <value>` of an exposition.
fn sample(text: &[u8], sample: &str) -> f64 {
    let text = std::str::from_utf8(text).unwrap();
    let line = text.lines().find(|l| l.split(' ').next() == Some(sample)).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn counter_reads_while_set() {
    check_reads(MetricType::Counter, "t_total", |r| r.family("t_total").unwrap().get(&[] as &[&str]).unwrap().get());
}

#[test]
fn counter_renders_while_set() {
    let (mut enc, mut om) = (Encoder::new(), false);
    check_reads(MetricType::Counter, "r_total", move |r| {
        om = !om;
        sample(enc.encode(r, if om { Format::OpenMetrics } else { Format::Text }), "r_total")
    });
}

#[test]
fn gauge_reads_and_renders_while_set() {
    let (mut enc, mut n) = (Encoder::new(), 0u32);
    check_reads(MetricType::Gauge, "g", move |r| {
        n += 1;
        match n % 3 {
            0 => r.family("g").unwrap().get(&[] as &[&str]).unwrap().get(),
            1 => sample(enc.encode(r, Format::Text), "g"),
            _ => sample(enc.encode(r, Format::OpenMetrics), "g"),
        }
    });
}
