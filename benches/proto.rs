//! `make bench`: the protobuf exposition (src/expo/proto.rs) beside our text render and
//! beside the two Rust clients' protobuf encoders, in one run: prometheus-client 0.25.2
//! (`prometheus_protobuf::encode_to_vec`, prost structs built per scrape) and prometheus
//! 0.14 (`gather()` + `ProtobufEncoder`). Also what a steady-state protobuf render
//! allocates, and the bytes each writes.
//!
//! Before timing, every protobuf body is decoded (with our message structs) and the series
//! and values compared, so that the times compare the same work.
//!
//! Harness as benches/store.rs: each case calibrated to ~SAMPLE_MS per sample, samples
//! interleaved across the cases of a row, median of SAMPLES.

use qprom::expo::proto::{decode_all, MetricFamily};
use qprom::expo::{Encoder, Format};
use qprom::metric::{MetricType, NativeParams, Params};
use qprom::registry::{FamilyDesc, Registry};
use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

#[path = "common/alloc.rs"]
mod alloc;
use alloc::{ALLOCS, BYTES, COUNTING};
#[path = "common/fixtures.rs"]
mod fixtures;
use fixtures::{observations, Labels, BOUNDS, LABEL_NAMES};

const SAMPLES: usize = 7;
const SAMPLE_MS: u64 = 300;

fn labels(i: usize) -> (String, String) {
    (format!("m{}", i % 1000), format!("c{}", i / 1000))
}


type Case<'a> = Box<dyn FnMut() -> usize + 'a>;

/// Median ms per call of each case, samples interleaved.
fn measure(cases: &mut [Case]) -> Vec<f64> {
    let iters: Vec<u64> = cases
        .iter_mut()
        .map(|c| {
            let mut n = 1u64;
            loop {
                let t = Instant::now();
                (0..n).for_each(|_| {
                    black_box(c());
                });
                if t.elapsed() >= Duration::from_millis(SAMPLE_MS / 4) {
                    break (n * 4).max(1);
                }
                n *= 2;
            }
        })
        .collect();
    let mut samples = vec![Vec::new(); cases.len()];
    for _ in 0..SAMPLES {
        for ((c, n), s) in cases.iter_mut().zip(&iters).zip(&mut samples) {
            let t = Instant::now();
            (0..*n).for_each(|_| {
                black_box(c());
            });
            s.push(t.elapsed().as_secs_f64() * 1e3 / *n as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// Allocations of one call, after a warm-up call (steady state).
fn allocs_of(c: &mut Case) -> u64 {
    c();
    ALLOCS.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    black_box(c());
    COUNTING.store(false, Relaxed);
    ALLOCS.load(Relaxed)
}

/// Bytes a first render by a new Encoder allocates beyond its output: what the encoder
/// keeps for the next renders (the message structs, their strings and vectors).
fn kept_bytes(reg: &Registry, fmt: Format) -> u64 {
    let mut e = Encoder::new();
    BYTES.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let out = e.encode(reg, fmt).len();
    COUNTING.store(false, Relaxed);
    // The output buffer grows by doubling: count what it holds at most.
    BYTES.load(Relaxed).saturating_sub(2 * out as u64)
}

/// Series and values of a protobuf body, canonical: one line per sample as text 0.0.4
/// names them, labels sorted, the `+Inf` bucket implied (an encoder may leave it out),
/// native buckets as absolute (index, count).
fn canonical(body: &[u8]) -> Vec<String> {
    let fams: Vec<MetricFamily> = decode_all(body).expect("decodes");
    let mut out = Vec::new();
    for f in &fams {
        let name = f.name.clone().unwrap_or_default();
        for m in &f.metric {
            let mut l: Vec<(String, String)> =
                m.label.iter().map(|p| (p.name.clone().unwrap_or_default(), p.value.clone().unwrap_or_default())).collect();
            l.sort();
            if let Some(c) = &m.counter {
                out.push(format!("{name}{l:?} {:?}", c.value.unwrap_or(0.0)));
            }
            if let Some(h) = &m.histogram {
                for b in h.bucket.iter().filter(|b| b.upper_bound.unwrap_or(0.0).is_finite()) {
                    out.push(format!("{name}_bucket{l:?} le={:?} {}", b.upper_bound.unwrap_or(0.0), b.cumulative_count.unwrap_or(0)));
                }
                out.push(format!("{name}_count{l:?} {}", h.sample_count.unwrap_or(0)));
                out.push(format!("{name}_sum{l:?} {:?}", h.sample_sum.unwrap_or(0.0)));
                let native = |spans: &[qprom::expo::proto::BucketSpan], deltas: &[i64]| {
                    let (mut idx, mut c, mut d, mut v) = (0i32, 0i64, deltas.iter(), Vec::new());
                    for s in spans {
                        idx += s.offset.unwrap_or(0);
                        for _ in 0..s.length.unwrap_or(0) {
                            c += d.next().copied().unwrap_or(0);
                            if c != 0 {
                                v.push((idx, c));
                            }
                            idx += 1;
                        }
                    }
                    v
                };
                if h.schema.unwrap_or(0) != 0 || !h.positive_span.is_empty() {
                    out.push(format!(
                        "{name}_native{l:?} schema={} zero={} pos={:?} neg={:?}",
                        h.schema.unwrap_or(0),
                        h.zero_count.unwrap_or(0),
                        native(&h.positive_span, &h.positive_delta),
                        native(&h.negative_span, &h.negative_delta)
                    ));
                }
            }
        }
    }
    out.sort_unstable();
    out
}

fn check_same(what: &str, bodies: &[(&str, &[u8])]) {
    let reference = canonical(bodies[0].1);
    assert!(!reference.is_empty());
    for (name, b) in &bodies[1..] {
        let got = canonical(b);
        if got != reference {
            let a: Vec<_> = reference.iter().filter(|s| got.binary_search(s).is_err()).take(3).collect();
            let b: Vec<_> = got.iter().filter(|s| reference.binary_search(s).is_err()).take(3).collect();
            panic!("{what}: {name} differs from {}: only in {}: {a:?}; only in {name}: {b:?}", bodies[0].0, bodies[0].0);
        }
    }
    println!("{what}: the same {} samples from {}", reference.len(), bodies.iter().map(|b| b.0).collect::<Vec<_>>().join(", "));
}

struct Fixture {
    reg: Registry,
    client: prometheus_client::registry::Registry,
    prom: Option<prometheus::Registry>,
}

fn counters(n: usize) -> Fixture {
    let reg = Registry::new();
    let mut d = FamilyDesc::new("r_total", MetricType::Counter, "Benchmark metric.", &LABEL_NAMES);
    d.series_limit = Some(200_000);
    reg.register(&d).unwrap();
    let mut client = prometheus_client::registry::Registry::default();
    let pcf = prometheus_client::metrics::family::Family::<Labels, prometheus_client::metrics::counter::Counter>::default();
    client.register("r", "Benchmark metric", pcf.clone());
    let prom = prometheus::Registry::new();
    let pv = prometheus::CounterVec::new(prometheus::Opts::new("r_total", "Benchmark metric."), &LABEL_NAMES).unwrap();
    prom.register(Box::new(pv.clone())).unwrap();
    for i in 0..n {
        let (m, c) = labels(i);
        let v = (i as u64 * 7919) % 1_000_003 + 1;
        reg.get_or_create("r_total", &[&m, &c], None).unwrap().inc(v as f64).unwrap();
        pcf.get_or_create(&Labels { method: m.clone(), code: c.clone() }).inc_by(v);
        pv.with_label_values(&[&m, &c]).inc_by(v as f64);
    }
    Fixture { reg, client, prom: Some(prom) }
}

fn histograms(n: usize, native: bool) -> Fixture {
    let obs = observations();
    let reg = Registry::new();
    let mut d = FamilyDesc::new("rh_seconds", MetricType::Histogram, "Benchmark metric.", &LABEL_NAMES);
    d.series_limit = Some(200_000);
    d.params = Some(if native {
        Params::Native(Vec::new().into(), NativeParams::default())
    } else {
        Params::Buckets(BOUNDS.as_slice().into())
    });
    reg.register(&d).unwrap();
    let mut client = prometheus_client::registry::Registry::default();
    type PcHist = prometheus_client::metrics::histogram::Histogram;
    fn classic() -> PcHist {
        PcHist::new(BOUNDS)
    }
    fn nat() -> PcHist {
        // Schema 3, zero threshold 2^-128: NativeParams::default().
        PcHist::new_native(prometheus_client::metrics::histogram::NativeHistogramConfig::with_schema(3))
    }
    let pcf = prometheus_client::metrics::family::Family::<Labels, PcHist, fn() -> PcHist>::new_with_constructor(
        if native { nat } else { classic },
    );
    client.register("rh_seconds", "Benchmark metric", pcf.clone());
    let prom = (!native).then(|| {
        let r = prometheus::Registry::new();
        let pv = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new("rh_seconds", "Benchmark metric.").buckets(BOUNDS.to_vec()),
            &LABEL_NAMES,
        )
        .unwrap();
        r.register(Box::new(pv.clone())).unwrap();
        (r, pv)
    });
    for i in 0..n {
        let (m, c) = labels(i);
        let s = reg.get_or_create("rh_seconds", &[&m, &c], None).unwrap();
        let h = pcf.get_or_create_owned(&Labels { method: m.clone(), code: c.clone() });
        let ph = prom.as_ref().map(|(_, pv)| pv.with_label_values(&[&m, &c]));
        for k in 0..5 {
            let v = obs[(i * 5 + k) & 1023];
            s.observe(v).unwrap();
            h.observe(v);
            if let Some(ph) = &ph {
                ph.observe(v);
            }
        }
    }
    Fixture { reg, client, prom: prom.map(|(r, _)| r) }
}

struct Result {
    what: String,
    ours_pb: f64,
    ours_text: f64,
    client_pb: f64,
    prom_pb: Option<f64>,
    allocs: [u64; 3],
    bytes: [usize; 4],
    kept: [u64; 2],
}

fn run(what: &str, f: &Fixture) -> Result {
    let client_pb = || prometheus_client::encoding::prometheus_protobuf::encode_to_vec(&f.client).unwrap();
    let prom_pb = |r: &prometheus::Registry| {
        use prometheus::Encoder as _;
        let mut b = Vec::new();
        prometheus::ProtobufEncoder::new().encode(&r.gather(), &mut b).unwrap();
        b
    };
    {
        let mut enc = Encoder::new();
        let ours = enc.encode(&f.reg, Format::Protobuf).to_vec();
        let theirs = client_pb();
        let mut bodies: Vec<(&str, &[u8])> = vec![("ours", &ours), ("prometheus-client", &theirs)];
        let tikv = f.prom.as_ref().map(prom_pb);
        if let Some(t) = &tikv {
            bodies.push(("prometheus", t));
        }
        check_same(what, &bodies);
    }
    let mut cases: Vec<Case> = vec![
        Box::new({
            let mut e = Encoder::new();
            move || e.encode(&f.reg, Format::Protobuf).len()
        }),
        Box::new({
            let mut e = Encoder::new();
            move || e.encode(&f.reg, Format::Text).len()
        }),
        Box::new(move || client_pb().len()),
    ];
    if let Some(r) = &f.prom {
        cases.push(Box::new(move || prom_pb(r).len()));
    }
    let mut bytes = [0usize; 4];
    for (b, c) in bytes.iter_mut().zip(cases.iter_mut()) {
        *b = c();
    }
    let allocs = [allocs_of(&mut cases[0]), allocs_of(&mut cases[1]), allocs_of(&mut cases[2])];
    let kept = [kept_bytes(&f.reg, Format::Protobuf), kept_bytes(&f.reg, Format::Text)];
    let t = measure(&mut cases);
    Result { what: what.into(), ours_pb: t[0], ours_text: t[1], client_pb: t[2], prom_pb: t.get(3).copied(), allocs, bytes, kept }
}

fn main() {
    let started = Instant::now();
    println!("qprom protobuf exposition benchmark: median of {SAMPLES} samples of ~{SAMPLE_MS} ms each, per case.");
    println!("Peers: prometheus-client 0.25.2 (prometheus_protobuf::encode_to_vec), prometheus 0.14 (gather + ProtobufEncoder).\n");
    let results = [
        run("render 100k counters", &counters(100_000)),
        run("render 10k histograms (10 buckets)", &histograms(10_000, false)),
        run("render 10k native histograms (schema 3)", &histograms(10_000, true)),
    ];
    println!();
    println!(
        "{:<40} | {:>10} | {:>10} | {:>10} | {:>10} | {:>9} | {:>10} | {:>10}",
        "protobuf render", "ours", "ours text", "p-client", "prometheus", "vs text", "vs client", "vs prom"
    );
    for r in &results {
        let p = r.prom_pb.map_or("–".to_string(), |x| format!("{x:.2} ms"));
        let pr = r.prom_pb.map_or("–".to_string(), |x| format!("{:.2}×", r.ours_pb / x));
        println!(
            "{:<40} | {:>7.2} ms | {:>7.2} ms | {:>7.2} ms | {:>10} | {:>8.2}× | {:>9.2}× | {:>10}",
            r.what,
            r.ours_pb,
            r.ours_text,
            r.client_pb,
            p,
            r.ours_pb / r.ours_text,
            r.ours_pb / r.client_pb,
            pr
        );
    }
    println!();
    for r in &results {
        println!(
            "{}: allocations per render (steady state): ours protobuf {}, ours text {}, prometheus-client {}; bytes: ours protobuf {}, ours text {}, prometheus-client {}{}",
            r.what,
            r.allocs[0],
            r.allocs[1],
            r.allocs[2],
            r.bytes[0],
            r.bytes[1],
            r.bytes[2],
            if r.bytes[3] > 0 { format!(", prometheus {}", r.bytes[3]) } else { String::new() }
        );
    }
    for r in &results {
        println!(
            "{}: memory an encoder keeps between renders beyond its output buffer: protobuf {:.1} MB, text {:.1} MB",
            r.what,
            r.kept[0] as f64 / 1e6,
            r.kept[1] as f64 / 1e6
        );
    }
    let zero = results.iter().all(|r| r.allocs[0] == 0);
    println!("steady-state protobuf render allocates nothing: {}", if zero { "MET" } else { "MISSED" });
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
}
