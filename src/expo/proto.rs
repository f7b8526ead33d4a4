//! Protobuf exposition: the store as length-delimited `io.prometheus.client.MetricFamily`
//! messages (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//! encoding=delimited`), the only format in which Prometheus 2.x ingests native histograms.
//!
//! The messages are prometheus/client_model's `metrics.proto` (proto2) declared as Rust
//! structs with prost's derive: same field numbers, types, and `optional` presence (so a
//! 0 is sent, as client_golang sends it), repeated scalars unpacked as proto2 says. No
//! protoc and no generated code at build time. `google.protobuf.Timestamp` is declared
//! here too (two fields), so prost-types is not needed.
//!
//! What goes where, as text 0.0.4 shows it (the format Prometheus would otherwise read):
//! family names as text 0.0.4 writes them (a counter keeps its `_total`, an info family is
//! a gauge `<base>_info` of value 1); every classic bucket, `+Inf` included, cumulative;
//! `_count` and `_sum` always (protobuf has no OpenMetrics rule against a falling sum).
//! On top of text 0.0.4: exemplars (counters, classic buckets), created timestamps, units,
//! and a native histogram's sparse buckets. Families without series are left out, as
//! client_golang's Gather does.
//!
//! A family is written one Metric message at a time: its header fields, then each series
//! filled into one reused Metric and encoded as an element of the repeated `metric` field
//! (a wrapper message with only that field, so the bytes are prost's own), then its unit,
//! then the length prefix in front. The bytes are those of prost encoding the whole
//! MetricFamily (a unit test checks it), but no scrape holds a message per series, and
//! the reused messages keep their strings' and vectors' capacity (spare ones wait in
//! pools), so a steady-state scrape allocates nothing.

use crate::metric::{NativeSnapshot, Value};
use crate::registry::{Family, Series};
use crate::metric::MetricType as Mt;
use prost::Message;

/// `io.prometheus.client.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Summary = 2,
    Untyped = 3,
    Histogram = 4,
    GaugeHistogram = 5,
}

#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub struct Gauge {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Counter {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
    #[prost(message, optional, tag = "2")]
    pub exemplar: Option<Exemplar>,
    #[prost(message, optional, tag = "3")]
    pub created_timestamp: Option<Timestamp>,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub struct Quantile {
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
    #[prost(message, optional, tag = "4")]
    pub created_timestamp: Option<Timestamp>,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub struct Untyped {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    /// Overrides sample_count if > 0 (float histograms; not used here).
    #[prost(double, optional, tag = "4")]
    pub sample_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    /// Classic buckets, upper bound ascending.
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    #[prost(message, optional, tag = "15")]
    pub created_timestamp: Option<Timestamp>,
    #[prost(sint32, optional, tag = "5")]
    pub schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    pub zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    pub zero_count: Option<u64>,
    #[prost(double, optional, tag = "8")]
    pub zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    /// Each bucket's count minus the previous bucket's (the first: minus zero).
    #[prost(sint64, repeated, packed = "false", tag = "10")]
    pub negative_delta: Vec<i64>,
    #[prost(double, repeated, packed = "false", tag = "11")]
    pub negative_count: Vec<f64>,
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, packed = "false", tag = "13")]
    pub positive_delta: Vec<i64>,
    #[prost(double, repeated, packed = "false", tag = "14")]
    pub positive_count: Vec<f64>,
    /// Native-histogram exemplars (newer Prometheus); ours travel on the classic buckets,
    /// where both Prometheus 2.42 and later read them.
    #[prost(message, repeated, tag = "16")]
    pub exemplars: Vec<Exemplar>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    pub cumulative_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
    #[prost(message, optional, tag = "3")]
    pub exemplar: Option<Exemplar>,
}

/// Consecutive native buckets: `offset` is the gap to the previous span's end (for the
/// first span, the index of its first bucket), `length` the number of buckets.
#[derive(Clone, Copy, PartialEq, Message)]
pub struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    pub offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub length: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    #[prost(message, optional, boxed, tag = "4")]
    pub summary: Option<Box<Summary>>,
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Untyped>,
    #[prost(message, optional, boxed, tag = "7")]
    pub histogram: Option<Box<Histogram>>,
    #[prost(int64, optional, tag = "6")]
    pub timestamp_ms: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    #[prost(enumeration = "MetricType", optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
    #[prost(string, optional, tag = "5")]
    pub unit: Option<String>,
}

/// `google.protobuf.Timestamp` (proto3: zero fields are not sent).
#[derive(Clone, Copy, PartialEq, Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// From unix seconds, to the nanosecond that an f64 holds (nanos in 0..1e9).
    pub fn from_unix(secs: f64) -> Timestamp {
        if !secs.is_finite() {
            return Timestamp { seconds: 0, nanos: 0 };
        }
        let s = secs.floor();
        let nanos = (((secs - s) * 1e9).round() as i32).clamp(0, 999_999_999);
        Timestamp { seconds: s as i64, nanos }
    }
}

/// The kinds of [`Metric`] message, each with its own reusable message in [`State`].
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// MetricFamily's field 4 alone: encoded, one element of its repeated `metric`, byte for
/// byte as MetricFamily writes each. So a family streams out one Metric message at a
/// time, and no scrape holds a message per series.
#[derive(Clone, PartialEq, Message)]
struct OneMetric {
    #[prost(message, optional, tag = "4")]
    metric: Option<Metric>,
}

/// The messages of the previous scrape, kept for the next (see the module docs), and the
/// snapshot scratch space.
#[derive(Debug, Default)]
pub struct State {
    /// Fields 1-3 of the family being written (name, help, type); `metric` stays empty.
    head: MetricFamily,
    /// Field 5 (unit), written after the metrics as MetricFamily orders its fields.
    tail: MetricFamily,
    /// One reusable Metric per [`Kind`], so that each keeps its type's message.
    one: [OneMetric; 4],
    labels: Vec<LabelPair>,
    exemplars: Vec<Exemplar>,
    buckets: Vec<Bucket>,
    quantiles: Vec<Quantile>,
    strings: Vec<String>,
    counts: Vec<u64>,
    qv: Vec<f64>,
    native: NativeSnapshot,
}

/// Bytes reserved for a family's length prefix: enough for any length below 2^35.
const PREFIX: usize = 5;

/// Moves `v`'s elements beyond `n` to `pool`, or brings it up to `n` from `pool`.
fn resize_pooled<T: Default>(v: &mut Vec<T>, n: usize, pool: &mut Vec<T>) {
    while v.len() > n {
        pool.extend(v.pop());
    }
    while v.len() < n {
        v.push(pool.pop().unwrap_or_default());
    }
}

/// Sets a string field in place (keeping its capacity), or clears it into `pool`.
fn set_str(slot: &mut Option<String>, v: Option<&str>, pool: &mut Vec<String>) {
    match v {
        Some(v) => {
            let s = slot.get_or_insert_with(|| pool.pop().unwrap_or_default());
            s.clear();
            s.push_str(v);
        }
        None => pool.extend(slot.take()),
    }
}

fn set_pair(p: &mut LabelPair, k: &str, v: &str, pool: &mut Vec<String>) {
    set_str(&mut p.name, Some(k), pool);
    set_str(&mut p.value, Some(v), pool);
}

impl State {
    /// Appends one family as a length-delimited MetricFamily to `out` (nothing for a family
    /// without series).
    pub fn family(&mut self, out: &mut Vec<u8>, fam: &Family) {
        if fam.is_empty() {
            return;
        }
        let st = self;
        let t = fam.metric_type();
        let (kind, ty) = match t {
            Mt::Counter => (Kind::Counter, MetricType::Counter),
            Mt::Gauge | Mt::Info => (Kind::Gauge, MetricType::Gauge),
            Mt::Histogram => (Kind::Histogram, MetricType::Histogram),
            Mt::Summary => (Kind::Summary, MetricType::Summary),
        };
        let mf = &mut st.head;
        {
            let name = mf.name.get_or_insert_with(String::new);
            name.clear();
            if t == Mt::Info {
                // Text 0.0.4 has no info type: a gauge `<base>_info` of value 1.
                name.push_str(fam.base_name());
                name.push_str("_info");
            } else {
                name.push_str(fam.name());
            }
        }
        set_str(&mut mf.help, Some(fam.help()), &mut st.strings);
        mf.r#type = Some(ty as i32);
        // Length prefix, header, metrics, unit; the prefix is filled in at the end.
        let start = out.len();
        out.extend_from_slice(&[0; PREFIX]);
        // Encoding into a Vec cannot fail (prost only refuses a buffer without room).
        let _ = mf.encode(out);
        let names = fam.label_names();
        fam.for_each_series(|s| {
            let one = &mut st.one[kind as usize];
            let m = one.metric.get_or_insert_with(Metric::default);
            resize_pooled(&mut m.label, names.len(), &mut st.labels);
            for ((p, k), v) in m.label.iter_mut().zip(names.iter()).zip(s.labels().iter()) {
                set_pair(p, k, v, &mut st.strings);
            }
            match &s.value {
                Value::Counter(c) => {
                    let pc = m.counter.get_or_insert_with(Counter::default);
                    pc.value = Some(c.get().as_f64());
                    pc.created_timestamp = Some(Timestamp::from_unix(s.created()));
                    set_exemplar(&mut pc.exemplar, s, 0, &mut st.exemplars, &mut st.labels, &mut st.strings);
                }
                Value::Gauge(g) => m.gauge = Some(Gauge { value: Some(g.get()) }),
                Value::Info => m.gauge = Some(Gauge { value: Some(1.0) }),
                Value::Histogram(h) => {
                    let ph = m.histogram.get_or_insert_with(Box::default);
                    let (sum, _) = h.snapshot_full(&mut st.counts, &mut st.native);
                    let bounds = h.bounds();
                    ph.sample_count = Some(st.counts.last().copied().unwrap_or(0));
                    ph.sample_sum = Some(sum);
                    ph.created_timestamp = Some(Timestamp::from_unix(s.created()));
                    resize_pooled(&mut ph.bucket, st.counts.len(), &mut st.buckets);
                    for (i, (b, c)) in ph.bucket.iter_mut().zip(st.counts.iter()).enumerate() {
                        b.cumulative_count = Some(*c);
                        b.upper_bound = Some(bounds.get(i).copied().unwrap_or(f64::INFINITY));
                        set_exemplar(&mut b.exemplar, s, i, &mut st.exemplars, &mut st.labels, &mut st.strings);
                    }
                    if h.native_params().is_some() {
                        native_fields(ph, &st.native);
                    } else {
                        ph.schema = None;
                        ph.zero_threshold = None;
                        ph.zero_count = None;
                        for v in [&mut ph.positive_span, &mut ph.negative_span] {
                            v.clear();
                        }
                        for v in [&mut ph.positive_delta, &mut ph.negative_delta] {
                            v.clear();
                        }
                    }
                }
                Value::Summary(sm) => {
                    let ps = m.summary.get_or_insert_with(Box::default);
                    let (count, sum, _) = sm.snapshot_with_sign(&mut st.qv);
                    ps.sample_count = Some(count);
                    ps.sample_sum = Some(sum);
                    ps.created_timestamp = Some(Timestamp::from_unix(s.created()));
                    resize_pooled(&mut ps.quantile, st.qv.len(), &mut st.quantiles);
                    for ((pq, q), v) in ps.quantile.iter_mut().zip(sm.params().quantiles.iter()).zip(st.qv.iter()) {
                        *pq = Quantile { quantile: Some(*q), value: Some(*v) };
                    }
                }
            }
            let _ = one.encode(out);
        });
        set_str(&mut st.tail.unit, Some(fam.unit()).filter(|u| !u.is_empty()), &mut st.strings);
        let _ = st.tail.encode(out);
        let len = out.len() - start - PREFIX;
        let n = prost::length_delimiter_len(len);
        let mut prefix = [0u8; PREFIX];
        let _ = prost::encode_length_delimiter(len, &mut &mut prefix[..]);
        out[start..start + n].copy_from_slice(&prefix[..n]);
        // Close the gap a short prefix left (one move of this family's bytes).
        out.copy_within(start + PREFIX.., start + n);
        out.truncate(out.len() - (PREFIX - n));
    }
}

/// A native histogram's schema, zero bucket, spans and deltas.
fn native_fields(ph: &mut Histogram, n: &NativeSnapshot) {
    ph.schema = Some(n.schema);
    ph.zero_threshold = Some(n.zero_threshold);
    ph.zero_count = Some(n.zero_count);
    spans_and_deltas(&n.positive, &mut ph.positive_span, &mut ph.positive_delta);
    spans_and_deltas(&n.negative, &mut ph.negative_span, &mut ph.negative_delta);
    // client_golang's rule: without it, a native histogram with no observations and a zero
    // threshold of 0 would look like a classic one to the scraper.
    if n.zero_threshold == 0.0 && n.zero_count == 0 && ph.positive_span.is_empty() && ph.negative_span.is_empty() {
        ph.positive_span.push(BucketSpan { offset: Some(0), length: Some(0) });
    }
}

/// Spans and deltas of sparse buckets (index ascending, counts > 0), as client_golang's
/// makeBuckets writes them: a gap of one or two empty buckets is sent as zero-count
/// buckets inside the span (cheaper than a new span), a longer one starts a new span.
pub fn spans_and_deltas(buckets: &[(i32, u64)], spans: &mut Vec<BucketSpan>, deltas: &mut Vec<i64>) {
    spans.clear();
    deltas.clear();
    let mut prev = 0i64;
    let mut next = 0i64;
    for (n, &(i, c)) in buckets.iter().enumerate() {
        let gap = i as i64 - next;
        let mut len = 1;
        if n == 0 || gap > 2 {
            spans.push(BucketSpan { offset: Some(gap as i32), length: Some(0) });
        } else {
            for _ in 0..gap {
                deltas.push(-prev);
                prev = 0;
            }
            len += gap as u32;
        }
        let c = c as i64;
        deltas.push(c - prev);
        prev = c;
        if let Some(BucketSpan { length: Some(l), .. }) = spans.last_mut() {
            *l += len;
        }
        next = i as i64 + 1;
    }
}

/// The exemplar of slot `i` of `s` into `slot`, or none.
fn set_exemplar(
    slot: &mut Option<Exemplar>,
    s: &Series,
    i: usize,
    pool: &mut Vec<Exemplar>,
    labels: &mut Vec<LabelPair>,
    strings: &mut Vec<String>,
) {
    let e = s.exemplar(i);
    let Some(e) = e else {
        pool.extend(slot.take());
        return;
    };
    let pe = slot.get_or_insert_with(|| pool.pop().unwrap_or_default());
    resize_pooled(&mut pe.label, e.labels.len(), labels);
    for (p, (k, v)) in pe.label.iter_mut().zip(e.labels.iter()) {
        set_pair(p, k, v, strings);
    }
    pe.value = Some(e.value);
    pe.timestamp = Some(Timestamp::from_unix(e.timestamp));
}

/// Decodes a delimited body (tests, and whoever wants to look at one).
pub fn decode_all(mut body: &[u8]) -> Result<Vec<MetricFamily>, prost::DecodeError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        out.push(MetricFamily::decode_length_delimited(&mut body)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expo::{Encoder, Format};
    use crate::metric::{Exemplar as Ex, NativeParams, Params, SummaryParams};
    use crate::metric::MetricType as T;
    use crate::registry::{FamilyDesc, Registry};
    use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model as peer;
    use std::time::Duration;

    fn ex(pairs: &[(&str, &str)], v: f64, ts: f64) -> Ex {
        Ex::new(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), v, ts).unwrap()
    }

    fn registry() -> Registry {
        let r = Registry::new();
        let mut d = FamilyDesc::new("req_total", T::Counter, "Requests \"served\".", &["h", "code"]);
        r.register(&d).unwrap();
        let c = r.get_or_create("req_total", &["a\"b\\c\nd", "200"], None).unwrap();
        c.inc_with_exemplar(3.0, ex(&[("trace_id", "abc"), ("user", "al\"ice")], 3.0, 1700000001.25)).unwrap();
        r.get_or_create("req_total", &["é", "500"], None).unwrap().inc(0.5).unwrap();
        d = FamilyDesc::new("temp_celsius", T::Gauge, "", &[]);
        d.unit = "celsius";
        r.register(&d).unwrap();
        r.get_or_create("temp_celsius", &[] as &[&str], None).unwrap().set(-12.25).unwrap();
        d = FamilyDesc::new("lat_seconds", T::Histogram, "Latency.", &["h"]);
        d.params = Some(Params::Buckets(vec![0.1, 1.0].into()));
        r.register(&d).unwrap();
        let h = r.get_or_create("lat_seconds", &["pg"], None).unwrap();
        for v in [0.05, 0.5, 0.5] {
            h.observe(v).unwrap();
        }
        h.observe_with_exemplar(3.0, ex(&[("user", "bob")], 3.0, 1700000002.0)).unwrap();
        h.observe_with_exemplar(0.7, ex(&[("user", "carol")], 0.7, 1700000003.5)).unwrap();
        d = FamilyDesc::new("size_bytes", T::Summary, "Sizes.", &[]);
        d.params = Some(Params::Summary(SummaryParams::new(&[0.5, 1.0], Duration::from_secs(60), 2).unwrap()));
        r.register(&d).unwrap();
        let s = r.get_or_create("size_bytes", &[] as &[&str], None).unwrap();
        for v in [10.0, 20.0, 30.0] {
            s.observe(v).unwrap();
        }
        r.register(&FamilyDesc::new("build", T::Info, "Build.", &["version"])).unwrap();
        r.get_or_create("build", &["1.0"], None).unwrap();
        r.register(&FamilyDesc::new("empty_total", T::Counter, "No series.", &["x"])).unwrap();
        d = FamilyDesc::new("nat_seconds", T::Histogram, "Native.", &[]);
        d.params = Some(Params::Native(vec![].into(), NativeParams::default()));
        r.register(&d).unwrap();
        let n = r.get_or_create("nat_seconds", &[] as &[&str], None).unwrap();
        for v in [0.0, 1e-6, 0.003, 0.5, 2.0, 2.0, 3600.0] {
            n.observe(v).unwrap();
        }
        r.for_each_family(|f| f.for_each_series(|s| s.set_created(1700000000.5)));
        r
    }

    fn pairs(l: &[LabelPair]) -> Vec<(String, String)> {
        l.iter().map(|p| (p.name.clone().unwrap_or_default(), p.value.clone().unwrap_or_default())).collect()
    }

    fn ts(t: &Option<Timestamp>) -> Option<(i64, i32)> {
        t.map(|t| (t.seconds, t.nanos))
    }

    /// The values of our decoded messages, as a text to compare with the peer's decoding.
    fn canon(fams: &[MetricFamily]) -> Vec<String> {
        let mut out = Vec::new();
        for f in fams {
            out.push(format!("F {:?} {:?} {:?} {:?}", f.name, f.help, f.r#type, f.unit.clone().unwrap_or_default()));
            for m in &f.metric {
                let mut l = format!("M {:?}", pairs(&m.label));
                let e = |e: &Option<Exemplar>| e.as_ref().map(|e| (pairs(&e.label), e.value, ts(&e.timestamp)));
                if let Some(c) = &m.counter {
                    l += &format!(" counter {:?} {:?} {:?}", c.value, e(&c.exemplar), ts(&c.created_timestamp));
                }
                if let Some(g) = &m.gauge {
                    l += &format!(" gauge {:?}", g.value);
                }
                if let Some(s) = &m.summary {
                    let q: Vec<_> = s.quantile.iter().map(|q| (q.quantile, q.value)).collect();
                    l += &format!(" summary {:?} {:?} {q:?} {:?}", s.sample_count, s.sample_sum, ts(&s.created_timestamp));
                }
                if let Some(h) = &m.histogram {
                    let b: Vec<_> = h.bucket.iter().map(|b| (b.cumulative_count, b.upper_bound, e(&b.exemplar))).collect();
                    let sp = |s: &[BucketSpan]| s.iter().map(|s| (s.offset.unwrap_or(0), s.length.unwrap_or(0))).collect::<Vec<_>>();
                    l += &format!(
                        " histogram {:?} {:?} {b:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                        h.sample_count,
                        h.sample_sum,
                        ts(&h.created_timestamp),
                        h.schema,
                        h.zero_threshold,
                        h.zero_count,
                        sp(&h.positive_span),
                        h.positive_delta,
                        sp(&h.negative_span),
                        h.negative_delta
                    );
                }
                out.push(l);
            }
        }
        out
    }

    /// The same, from prometheus-client's types (prost-build from its metrics.proto, proto3:
    /// absent fields read as zero, which our canonical form writes as present).
    fn canon_peer(fams: &[peer::MetricFamily]) -> Vec<String> {
        let mut out = Vec::new();
        let pairs = |l: &[peer::LabelPair]| l.iter().map(|p| (p.name.clone(), p.value.clone())).collect::<Vec<_>>();
        macro_rules! ts {
            ($t:expr) => {
                $t.as_ref().map(|t| (t.seconds, t.nanos))
            };
        }
        for f in fams {
            let unit = f.unit.clone();
            out.push(format!("F {:?} {:?} {:?} {unit:?}", Some(&f.name), Some(&f.help), Some(f.r#type)));
            for m in &f.metric {
                let mut l = format!("M {:?}", pairs(&m.label));
                let e = |e: &Option<peer::Exemplar>| e.as_ref().map(|e| (pairs(&e.label), Some(e.value), ts!(e.timestamp)));
                if let Some(c) = &m.counter {
                    l += &format!(" counter {:?} {:?} {:?}", Some(c.value), e(&c.exemplar), ts!(c.start_timestamp));
                }
                if let Some(g) = &m.gauge {
                    l += &format!(" gauge {:?}", Some(g.value));
                }
                if let Some(s) = &m.summary {
                    let q: Vec<_> = s.quantile.iter().map(|q| (Some(q.quantile), Some(q.value))).collect();
                    l += &format!(" summary {:?} {:?} {q:?} {:?}", Some(s.sample_count), Some(s.sample_sum), ts!(s.start_timestamp));
                }
                if let Some(h) = &m.histogram {
                    let b: Vec<_> = h.bucket.iter().map(|b| (Some(b.cumulative_count), Some(b.upper_bound), e(&b.exemplar))).collect();
                    let sp = |s: &[peer::BucketSpan]| s.iter().map(|s| (s.offset, s.length)).collect::<Vec<_>>();
                    let native = !h.positive_span.is_empty() || h.zero_threshold > 0.0;
                    let o = |x| if native { Some(x) } else { None };
                    l += &format!(
                        " histogram {:?} {:?} {b:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                        Some(h.sample_count),
                        Some(h.sample_sum),
                        ts!(h.start_timestamp),
                        o(h.schema),
                        native.then_some(h.zero_threshold),
                        native.then_some(h.zero_count),
                        sp(&h.positive_span),
                        h.positive_delta,
                        sp(&h.negative_span),
                        h.negative_delta
                    );
                }
                out.push(l);
            }
        }
        out
    }

    fn render(r: &Registry) -> Vec<u8> {
        Encoder::new().encode(r, Format::Protobuf).to_vec()
    }

    #[test]
    fn round_trip_every_type() {
        let r = registry();
        let body = render(&r);
        let fams = decode_all(&body).unwrap();
        let names: Vec<_> = fams.iter().map(|f| f.name.clone().unwrap()).collect();
        // Sorted as the text encoder sorts (by registered name); the empty family left out.
        assert_eq!(names, ["build_info", "lat_seconds", "nat_seconds", "req_total", "size_bytes", "temp_celsius"]);
        let text = String::from_utf8(Encoder::new().encode(&r, Format::Text).to_vec()).unwrap();
        let text_order: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap()).filter(|n| *n != "empty_total").collect();
        assert_eq!(names, text_order);

        let f = |n: &str| fams.iter().find(|f| f.name.as_deref() == Some(n)).unwrap();
        let info = f("build_info");
        assert_eq!(info.r#type, Some(MetricType::Gauge as i32));
        assert_eq!(pairs(&info.metric[0].label), [("version".to_string(), "1.0".to_string())]);
        assert_eq!(info.metric[0].gauge.unwrap().value, Some(1.0));

        let c = f("req_total");
        assert_eq!((c.r#type, c.help.as_deref()), (Some(MetricType::Counter as i32), Some("Requests \"served\".")));
        assert_eq!(pairs(&c.metric[0].label), [("h".into(), "a\"b\\c\nd".into()), ("code".into(), "200".into())]);
        let cc = c.metric[0].counter.as_ref().unwrap();
        assert_eq!(cc.value, Some(3.0));
        assert_eq!(cc.created_timestamp, Some(Timestamp { seconds: 1700000000, nanos: 500_000_000 }));
        let e = cc.exemplar.as_ref().unwrap();
        assert_eq!(pairs(&e.label), [("trace_id".into(), "abc".into()), ("user".into(), "al\"ice".into())]);
        assert_eq!((e.value, e.timestamp), (Some(3.0), Some(Timestamp { seconds: 1700000001, nanos: 250_000_000 })));
        assert_eq!(c.metric[1].counter.as_ref().unwrap().exemplar, None);
        assert_eq!(c.metric[1].counter.as_ref().unwrap().value, Some(0.5));

        let g = f("temp_celsius");
        assert_eq!((g.unit.as_deref(), g.metric[0].gauge.unwrap().value), (Some("celsius"), Some(-12.25)));
        assert!(g.metric[0].label.is_empty() && g.metric[0].counter.is_none());

        let h = f("lat_seconds").metric[0].histogram.as_ref().unwrap();
        assert_eq!((h.sample_count, h.sample_sum), (Some(5), Some(0.05 + 0.5 + 0.5 + 3.0 + 0.7)));
        let b: Vec<_> = h.bucket.iter().map(|b| (b.cumulative_count.unwrap(), b.upper_bound.unwrap())).collect();
        assert_eq!(b, [(1, 0.1), (4, 1.0), (5, f64::INFINITY)]);
        assert_eq!(h.bucket[0].exemplar, None);
        assert_eq!(pairs(&h.bucket[1].exemplar.as_ref().unwrap().label), [("user".into(), "carol".into())]);
        assert_eq!(h.bucket[2].exemplar.as_ref().unwrap().value, Some(3.0));
        assert_eq!((h.schema, h.zero_threshold, h.positive_span.len()), (None, None, 0), "classic: no native fields");

        let s = f("size_bytes").metric[0].summary.as_ref().unwrap();
        assert_eq!((s.sample_count, s.sample_sum), (Some(3), Some(60.0)));
        assert_eq!(s.quantile.iter().map(|q| q.quantile.unwrap()).collect::<Vec<_>>(), [0.5, 1.0]);
        assert_eq!(s.quantile[1].value, Some(30.0));

        let n = f("nat_seconds").metric[0].histogram.as_ref().unwrap();
        assert_eq!(n.schema, Some(3));
        assert_eq!(n.zero_threshold, Some(crate::metric::native::DEFAULT_ZERO_THRESHOLD));
        assert_eq!(n.sample_count, Some(7));
        assert_eq!(n.bucket.len(), 1, "only the +Inf bucket without classic bounds");
        // The native buckets decode to what the histogram's snapshot holds.
        let mut want = NativeSnapshot::default();
        let Value::Histogram(hh) = &r.family("nat_seconds").unwrap().get(&[] as &[&str]).unwrap().value else { panic!() };
        hh.snapshot_full(&mut Vec::new(), &mut want);
        assert_eq!(n.zero_count, Some(want.zero_count));
        // Bucket k of schema 3 holds (2^((k-1)/8), 2^(k/8)]: k = ceil(8 log2 v).
        assert_eq!(want.zero_count, 1);
        assert_eq!(want.positive, [(-159, 1), (-67, 1), (-8, 1), (8, 2), (95, 1)]);
        assert_eq!(expand(&n.positive_span, &n.positive_delta), want.positive);
        assert_eq!(expand(&n.negative_span, &n.negative_delta), want.negative);

        // prometheus-client's types, prost-build from the .proto, read the same values.
        let mut b = &body[..];
        let mut theirs = Vec::new();
        while !b.is_empty() {
            theirs.push(peer::MetricFamily::decode_length_delimited(&mut b).unwrap());
        }
        assert_eq!(canon(&fams), canon_peer(&theirs));
    }

    /// Absolute (index, count) of the non-empty buckets, from spans and deltas as the spec
    /// defines them (written independently of `spans_and_deltas`).
    fn expand(spans: &[BucketSpan], deltas: &[i64]) -> Vec<(i32, u64)> {
        let mut out = Vec::new();
        let (mut idx, mut count, mut d) = (0i32, 0i64, deltas.iter());
        for (k, s) in spans.iter().enumerate() {
            idx += s.offset.unwrap();
            if k > 0 {
                // Offsets after the first are gaps after the previous span's end.
            }
            for _ in 0..s.length.unwrap() {
                count += d.next().unwrap();
                assert!(count >= 0);
                if count > 0 {
                    out.push((idx, count as u64));
                }
                idx += 1;
            }
        }
        assert!(d.next().is_none(), "a delta outside every span");
        out
    }

    #[test]
    fn spans_for_sparse_layouts() {
        let run = |b: &[(i32, u64)]| {
            let (mut s, mut d) = (Vec::new(), Vec::new());
            spans_and_deltas(b, &mut s, &mut d);
            (s.iter().map(|s| (s.offset.unwrap(), s.length.unwrap())).collect::<Vec<_>>(), d)
        };
        // Negative start; a gap of one is filled, one of three starts a span, as is a far one.
        let b = [(-3, 1), (-2, 2), (0, 5), (1, 1), (5, 3), (100, 1)];
        assert_eq!(run(&b), (vec![(-3, 5), (3, 1), (94, 1)], vec![1, 1, -2, 5, -4, 2, -2]));
        // A gap of exactly two is filled with two zero buckets.
        assert_eq!(run(&[(7, 4), (10, 4)]), (vec![(7, 4)], vec![4, -4, 0, 4]));
        assert_eq!(run(&[]), (vec![], vec![]));
        assert_eq!(run(&[(0, u32::MAX as u64 + 7)]), (vec![(0, 1)], vec![u32::MAX as i64 + 7]));
        // Pseudo-random layouts round-trip through the spec's reading.
        let mut x = 0x2545f4914f6cdd1du64;
        for _ in 0..500 {
            let mut b = Vec::new();
            let mut i = (x % 50) as i32 - 25;
            for _ in 0..(x >> 8) % 30 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push((i, 1 + (x >> 40) % 1000));
                i += 1 + [0, 0, 1, 2, 3, 40][(x % 6) as usize];
            }
            let (mut s, mut d) = (Vec::new(), Vec::new());
            spans_and_deltas(&b, &mut s, &mut d);
            assert_eq!(expand(&s, &d), b);
            assert!(s.iter().skip(1).all(|s| s.offset.unwrap() > 2), "gaps of <= 2 stay inside a span");
        }
    }

    #[test]
    fn native_fields_negative_zero_and_noop() {
        let mut ph = Histogram::default();
        let snap = NativeSnapshot {
            schema: -2,
            zero_threshold: 0.001,
            zero_count: 4,
            positive: vec![(1, 2), (2, 1)],
            negative: vec![(-5, 1), (0, 3)],
        };
        native_fields(&mut ph, &snap);
        assert_eq!((ph.schema, ph.zero_threshold, ph.zero_count), (Some(-2), Some(0.001), Some(4)));
        assert_eq!(expand(&ph.negative_span, &ph.negative_delta), snap.negative);
        assert_eq!(expand(&ph.positive_span, &ph.positive_delta), snap.positive);
        // Empty with a zero threshold: Prometheus already sees it as native.
        let empty = NativeSnapshot { schema: 0, zero_threshold: 1e-9, ..Default::default() };
        native_fields(&mut ph, &empty);
        assert!(ph.positive_span.is_empty() && ph.negative_span.is_empty());
        // Empty, zero threshold 0: a no-op span, else it would read as a classic histogram.
        let empty = NativeSnapshot::default();
        native_fields(&mut ph, &empty);
        assert_eq!(ph.positive_span, [BucketSpan { offset: Some(0), length: Some(0) }]);
        assert!(ph.positive_delta.is_empty());
        // Only a zero count: no no-op span needed.
        native_fields(&mut ph, &NativeSnapshot { zero_count: 1, ..Default::default() });
        assert!(ph.positive_span.is_empty());
    }

    #[test]
    fn wire_bytes_of_a_small_family() {
        // One gauge without labels, byte for byte: what metrics.proto's field numbers and
        // proto2 presence give (a 0 value is sent).
        let r = Registry::new();
        r.register(&FamilyDesc::new("g", T::Gauge, "", &[])).unwrap();
        r.get_or_create("g", &[] as &[&str], None).unwrap();
        let body = render(&r);
        // len, name(1)="g", help(2)="", type(3)=GAUGE, metric(4){gauge(2){value(1)=0.0}}
        let want = [
            0x14, 0x0a, 0x01, b'g', 0x12, 0x00, 0x18, 0x01, 0x22, 0x0b, 0x12, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(body, want[..]);
    }

    #[test]
    fn messages_are_reused_across_scrapes_and_families() {
        let r = registry();
        let mut enc = Encoder::new();
        let first = enc.encode(&r, Format::Protobuf).to_vec();
        // Same registry, same bytes, with the pools in play (families of other kinds had
        // the messages in between).
        assert_eq!(enc.encode(&r, Format::Protobuf), &first[..]);
        // An exemplar gone from the store is gone from the next render (pooled, not kept).
        let r2 = Registry::new();
        r2.register(&FamilyDesc::new("req_total", T::Counter, "", &["h", "code"])).unwrap();
        r2.get_or_create("req_total", &["x", "1"], None).unwrap();
        let f = decode_all(enc.encode(&r2, Format::Protobuf)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].metric.len(), 1);
        assert_eq!(f[0].metric[0].counter.as_ref().unwrap().exemplar, None);
        assert_eq!(f[0].help.as_deref(), Some(""));
        assert_eq!(f[0].unit, None);
        assert_eq!(decode_all(enc.encode(&r, Format::Protobuf)).unwrap(), decode_all(&first).unwrap());
    }

    #[test]
    fn streamed_families_are_prosts_own_encoding() {
        // Decoded and encoded again whole by prost: the same bytes, so the streaming (header,
        // one metric at a time, unit last, prefix moved into place) changes nothing.
        let r = registry();
        let body = render(&r);
        let mut again = Vec::new();
        for f in decode_all(&body).unwrap() {
            f.encode_length_delimited(&mut again).unwrap();
        }
        assert_eq!(again, body);
        // A family over 127 bytes (a two-byte prefix) and one over 16383 (three bytes).
        let big = Registry::new();
        let mut d = FamilyDesc::new("b_total", T::Counter, "x", &["i"]);
        d.unit = "";
        big.register(&d).unwrap();
        for i in 0..2000 {
            big.get_or_create("b_total", &[i.to_string()], None).unwrap().inc(i as f64).unwrap();
        }
        d = FamilyDesc::new("m_bytes", T::Gauge, "", &["i"]);
        d.unit = "bytes";
        big.register(&d).unwrap();
        for i in 0..5 {
            big.get_or_create("m_bytes", &[i.to_string()], None).unwrap().set(1.0).unwrap();
        }
        let body = render(&big);
        let fams = decode_all(&body).unwrap();
        assert_eq!((fams[0].metric.len(), fams[1].metric.len(), fams[1].unit.as_deref()), (2000, 5, Some("bytes")));
        let mut again = Vec::new();
        fams.iter().for_each(|f| f.encode_length_delimited(&mut again).unwrap());
        assert_eq!(again, body);
        assert!(body.len() > 16384);
    }

    #[test]
    fn timestamps() {
        assert_eq!(Timestamp::from_unix(1.5), Timestamp { seconds: 1, nanos: 500_000_000 });
        assert_eq!(Timestamp::from_unix(-1.25), Timestamp { seconds: -2, nanos: 750_000_000 });
        assert_eq!(Timestamp::from_unix(f64::NAN), Timestamp { seconds: 0, nanos: 0 });
        assert!(Timestamp::from_unix(1700000000.9999999999).nanos <= 999_999_999);
    }
}
