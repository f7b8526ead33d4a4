//! Generates random registries and renders each in the three formats, with the expected
//! samples (and OpenMetrics exemplars) as JSON, for tests/expo/check.py (promtool, the
//! Python client's parsers, and protobuf decoded with prometheus-client's metrics.proto:
//! tests/host/metrics_pb.py).
//!
//! The expected names and values are computed here from what the generator chose (names
//! and their suffixes, counter integers, bucket counts and quantiles by brute force over
//! the observations), never read back from the registry or the store.
//!
//! Usage: expo_cases OUT_DIR N_CASES [SEED]

use qprom::expo::{Encoder, Format};
use qprom::metric::{Exemplar, MetricType, Params, SummaryParams, Value};
use qprom::registry::{FamilyDesc, Registry};
use std::fmt::Write as _;
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const PIECES: &[&str] = &["a", "b", "Z", "0", " ", "\"", "\\", "\n", "é", "日本", "|", "{", "}", "=", ",", "#", "\t", "😀", "\\n"];

fn text(r: &mut Rng, max: usize) -> String {
    (0..r.below(max + 1)).map(|_| *r.pick(PIECES)).collect()
}

fn ident(r: &mut Rng, first: &[u8], rest: &[u8], len: usize) -> String {
    let mut s = String::new();
    s.push(*r.pick(first) as char);
    for _ in 0..r.below(len) {
        s.push(*r.pick(rest) as char);
    }
    s
}

fn value(r: &mut Rng) -> f64 {
    match r.below(8) {
        0 => f64::INFINITY,
        1 => f64::NEG_INFINITY,
        2 => (r.next() % 1000) as f64,
        3 => (r.next() >> 4) as f64, // integers far above 2^53
        4 => -((r.next() % 100_000) as f64) / 8.0,
        5 => f64::from_bits(r.next() >> 2) * if r.below(2) == 0 { 1.0 } else { -1.0 },
        6 => 0.0,
        _ => (r.next() % 1_000_000) as f64 / 1000.0,
    }
}

/// Expected content of one format.
#[derive(Default)]
struct Expect {
    samples: String,
    families: String,
}

impl Expect {
    /// Starts a sample's JSON up to its value.
    fn head(&mut self, name: &str, labels: &[(&str, &str)]) {
        if !self.samples.is_empty() {
            self.samples.push(',');
        }
        let _ = write!(self.samples, "{{\"name\":{},\"labels\":{{", js(name));
        for (i, (k, val)) in labels.iter().enumerate() {
            let _ = write!(self.samples, "{}{}:{}", if i > 0 { "," } else { "" }, js(k), js(val));
        }
        self.samples.push_str("},\"value\":");
    }
    /// An integer, which check.py compares exactly with the digits written (not as f64).
    fn sample_int(&mut self, name: &str, labels: &[(&str, &str)], n: u64) {
        self.head(name, labels);
        let _ = write!(self.samples, "{n}}}");
    }
    /// An estimate within `rel * |x|` of `x`.
    fn sample_near(&mut self, name: &str, labels: &[(&str, &str)], x: f64, rel: f64) {
        self.head(name, labels);
        let _ = write!(self.samples, "{{\"near\":{x:e},\"rel\":{rel:e}}}}}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: Option<f64>) {
        self.head(name, labels);
        match v {
            None => self.samples.push_str("\"any\""),
            Some(x) if x.is_nan() => self.samples.push_str("\"NaN\""),
            Some(x) if x == f64::INFINITY => self.samples.push_str("\"+Inf\""),
            Some(x) if x == f64::NEG_INFINITY => self.samples.push_str("\"-Inf\""),
            Some(x) => {
                // Exponent form: Python reads it as a float, compared exactly.
                let _ = write!(self.samples, "{x:e}");
            }
        }
        self.samples.push('}');
    }
    /// Attaches an expected exemplar to the sample written last.
    fn exemplar(&mut self, e: &Exemplar) {
        self.samples.pop(); // the sample's closing brace
        self.samples.push_str(",\"exemplar\":{\"labels\":{");
        for (i, (k, v)) in e.labels.iter().enumerate() {
            let _ = write!(self.samples, "{}{}:{}", if i > 0 { "," } else { "" }, js(k), js(v));
        }
        let _ = write!(self.samples, "}},\"value\":{:e},\"timestamp\":{:e}}}}}", e.value, e.timestamp);
    }
    fn family(&mut self, name: &str, t: &str, help: &str) {
        if !self.families.is_empty() {
            self.families.push(',');
        }
        let _ = write!(self.families, "{{\"name\":{},\"type\":{},\"help\":{}}}", js(name), js(t), js(help));
    }
    fn json(&self) -> String {
        format!("{{\"samples\":[{}],\"families\":[{}]}}\n", self.samples, self.families)
    }
}

fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Bucket bounds and quantiles print the same way in the label as Rust's Display
/// for the values used here (no exponent range), which keeps the oracle independent.
fn num_label(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else {
        format!("{v}")
    }
}

/// A random exemplar: one or two labels, values from the same pieces as label values
/// except `"` (prometheus_client 0.26.0's OpenMetrics parser mistakes an escaped quote in
/// an exemplar label value for the end of the value; Prometheus' parser does not).
fn exemplar(r: &mut Rng, value: f64) -> Exemplar {
    let mut labels: Vec<(Box<str>, Box<str>)> = Vec::new();
    for _ in 0..1 + r.below(2) {
        let k = ident(r, b"abcdefghijklmnopqrstuvwxyz_", b"abcdefghijklmnopqrstuvwxyz0123456789_", 6);
        if !k.starts_with('_') && !labels.iter().any(|(k2, _)| **k2 == *k) {
            labels.push((k.into(), text(r, 5).replace('"', "q").into()));
        }
    }
    if labels.is_empty() {
        labels.push(("trace_id".into(), "t".into()));
    }
    let ts = 1_700_000_000.0 + r.below(1000) as f64 / 4.0;
    Exemplar::new(labels, value, ts).unwrap()
}

fn one_case(r: &mut Rng, out: &str, idx: usize) {
    let reg = Registry::new();
    let (mut txt, mut om) = (Expect::default(), Expect::default());
    let types = [MetricType::Counter, MetricType::Gauge, MetricType::Histogram, MetricType::Summary, MetricType::Info];
    for f in 0..1 + r.below(5) {
        let t = *r.pick(&types);
        let lower = b"abcdefghijklmnopqrstuvwxyz";
        let rest = b"abcdefghijklmnopqrstuvwxyz0123456789_";
        let mut name = format!("{}_{f}", ident(r, lower, rest, 8));
        if t == MetricType::Counter {
            name.push_str("_total");
        }
        let help = text(r, 6);
        let nlabels = r.below(4);
        let mut lnames: Vec<String> = Vec::new();
        while lnames.len() < nlabels {
            let l = ident(r, b"abcdefghijklmnopqrstuvwxyzABC_", rest, 6);
            // OpenMetrics 1.0 reserves label names beginning with `_`.
            if !l.starts_with('_') && !lnames.contains(&l) && l != "le" && l != "quantile" {
                lnames.push(l);
            }
        }
        let lrefs: Vec<&str> = lnames.iter().map(String::as_str).collect();
        let mut d = FamilyDesc::new(&name, t, &help, &lrefs);
        let buckets: Vec<f64> = {
            let mut b: Vec<f64> = (0..r.below(6)).map(|_| (r.next() % 100_000) as f64 / 100.0).collect();
            b.sort_by(f64::total_cmp);
            b.dedup();
            b
        };
        match t {
            MetricType::Histogram => d.params = Some(Params::Buckets(buckets.clone().into())),
            MetricType::Summary => {
                d.params = Some(Params::Summary(SummaryParams::new(&[0.5, 0.9, 0.99], Duration::from_secs(60), 3).unwrap()))
            }
            _ => {}
        }
        reg.register(&d).unwrap();
        // OpenMetrics' family name: a counter's without the `_total` the generator added;
        // the others' as generated (they end in `_<digit>`, never in a type's suffix).
        let base = name.strip_suffix("_total").unwrap_or(&name).to_string();
        match t {
            MetricType::Info => {
                txt.family(&format!("{base}_info"), "gauge", &help);
                om.family(&base, "info", &help);
            }
            MetricType::Counter => {
                txt.family(&name, "counter", &help);
                om.family(&base, "counter", &help);
            }
            _ => {
                txt.family(&name, t.as_str(), &help);
                om.family(&name, t.as_str(), &help);
            }
        }
        let nseries = if nlabels == 0 { 1 } else { 1 + r.below(4) };
        let mut seen: Vec<Vec<String>> = Vec::new();
        for _ in 0..nseries {
            let lv: Vec<String> = (0..nlabels).map(|_| text(r, 5)).collect();
            if seen.contains(&lv) {
                continue;
            }
            seen.push(lv.clone());
            let s = reg.get_or_create(&name, &lv, None).unwrap();
            let pairs: Vec<(&str, &str)> = lrefs.iter().copied().zip(lv.iter().map(String::as_str)).collect();
            let with = |extra: (&'static str, &str)| -> Vec<(String, String)> {
                let mut v: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
                v.push((extra.0.to_string(), extra.1.to_string()));
                v
            };
            match &s.value {
                Value::Counter(c) => {
                    match r.below(3) {
                        0 => {
                            // Integers up to 2^63, far above 2^53: every digit must survive.
                            let n = r.next() >> 1;
                            c.set_int(n);
                            txt.sample_int(&name, &pairs, n);
                            om.sample_int(&format!("{base}_total"), &pairs, n);
                        }
                        1 => {
                            let x = (r.next() % 10_000) as f64 / 16.0;
                            txt.sample(&name, &pairs, Some(x));
                            om.sample(&format!("{base}_total"), &pairs, Some(x));
                            if r.below(2) == 0 {
                                let e = exemplar(r, x);
                                om.exemplar(&e);
                                s.inc_with_exemplar(x, e).unwrap();
                            } else {
                                s.inc(x).unwrap();
                            }
                        }
                        _ => {
                            txt.sample(&name, &pairs, Some(0.0));
                            om.sample(&format!("{base}_total"), &pairs, Some(0.0));
                        }
                    }
                    om.sample(&format!("{base}_created"), &pairs, None);
                }
                Value::Gauge(_) => {
                    let v = value(r);
                    s.set(v).unwrap();
                    txt.sample(&name, &pairs, Some(v));
                    om.sample(&name, &pairs, Some(v));
                }
                Value::Info => {
                    txt.sample(&format!("{base}_info"), &pairs, Some(1.0));
                    om.sample(&format!("{base}_info"), &pairs, Some(1.0));
                }
                Value::Histogram(_) | Value::Summary(_) => {
                    // Mostly non-negative (durations, sizes); sometimes negative, to cover
                    // OpenMetrics' rules for negative sums and quantiles.
                    let shift = if r.below(4) == 0 { 100.0 } else { 0.0 };
                    let obs: Vec<f64> = (0..r.below(20)).map(|_| (r.next() % 200_000) as f64 / 100.0 - shift).collect();
                    let mut sum = 0.0;
                    // The latest exemplar per classic bucket (first bound >= v; +Inf last).
                    let mut bucket_ex: Vec<Option<Exemplar>> = vec![None; buckets.len() + 1];
                    for o in &obs {
                        if t == MetricType::Histogram && r.below(3) == 0 {
                            let e = exemplar(r, *o);
                            bucket_ex[buckets.partition_point(|b| *b < *o)] = Some(e.clone());
                            s.observe_with_exemplar(*o, e).unwrap();
                        } else {
                            s.observe(*o).unwrap();
                        }
                        sum += o;
                    }
                    for (is_om, e) in [(false, &mut txt), (true, &mut om)] {
                        let negative = obs.iter().any(|o| *o < 0.0);
                        if t == MetricType::Histogram {
                            for (i, b) in buckets.iter().copied().chain([f64::INFINITY]).enumerate() {
                                let n = obs.iter().filter(|o| **o <= b).count();
                                let l = with(("le", &num_label(b)));
                                let lr: Vec<(&str, &str)> = l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                                e.sample(&format!("{name}_bucket"), &lr, Some(n as f64));
                                if let (true, Some(x)) = (is_om, &bucket_ex[i]) {
                                    e.exemplar(x);
                                }
                            }
                        } else {
                            let mut sorted = obs.clone();
                            sorted.sort_by(f64::total_cmp);
                            for (q, qs) in [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")] {
                                let l = with(("quantile", qs));
                                let lr: Vec<(&str, &str)> = l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                                if sorted.is_empty() {
                                    e.sample(&name, &lr, Some(f64::NAN));
                                } else {
                                    // summary_core's guarantee: within 1 % of the observation
                                    // of rank floor(q (n-1)) (0 exactly; magnitudes here are
                                    // 0.01..2000, no collapsed range). Negative estimates are
                                    // hidden in OpenMetrics; an estimate has its exact's sign.
                                    let exact = sorted[(q * (sorted.len() - 1) as f64) as usize];
                                    if !(is_om && exact < 0.0) {
                                        e.sample_near(&name, &lr, exact, 0.01);
                                    }
                                }
                            }
                        }
                        if !(is_om && negative) {
                            e.sample(&format!("{name}_count"), &pairs, Some(obs.len() as f64));
                            e.sample(&format!("{name}_sum"), &pairs, Some(sum));
                        }
                    }
                    om.sample(&format!("{name}_created"), &pairs, None);
                }
            }
        }
    }
    let mut enc = Encoder::new();
    for (fmt, ext, e) in [(Format::Text, "txt", &txt), (Format::OpenMetrics, "om", &om)] {
        let path = format!("{out}/case{idx:04}.{ext}");
        std::fs::write(&path, enc.encode(&reg, fmt)).unwrap();
        std::fs::write(format!("{path}.json"), e.json()).unwrap();
    }
    // Protobuf: checked against the text 0.0.4 samples and the OpenMetrics exemplars.
    std::fs::write(format!("{out}/case{idx:04}.pb"), enc.encode(&reg, Format::Protobuf)).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).map(String::as_str).unwrap_or("target/expo-cases");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let seed: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    println!("expo_cases: {n} cases in {out}, seed {seed}");
    let mut r = Rng(seed | 1);
    std::fs::create_dir_all(out).unwrap();
    for i in 0..n {
        one_case(&mut r, out, i);
    }
}
