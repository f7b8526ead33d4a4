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
//! A scrape reuses the message structs of the previous one. prost's structs own their
//! strings and vectors; [`State`] keeps them, by kind, in pools across families and
//! scrapes, so a steady-state scrape allocates nothing: the label strings are overwritten
//! in place, the vectors keep their capacity. The cost is that copy of the label text
//! into the structs (and memory for the largest family's messages, kept between scrapes).

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
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Untyped>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
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

/// Which field of a [`Metric`] a pooled message holds (its pool).
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    fn of(m: &Metric) -> Kind {
        if m.histogram.is_some() {
            Kind::Histogram
        } else if m.summary.is_some() {
            Kind::Summary
        } else if m.counter.is_some() {
            Kind::Counter
        } else {
            Kind::Gauge
        }
    }
}

/// The messages of the previous scrape, kept for the next (see the module docs), and the
/// snapshot scratch space.
#[derive(Debug, Default)]
pub struct State {
    fam: MetricFamily,
    /// Metric messages by [`Kind`], each keeping its label pairs and its type's message.
    metrics: [Vec<Metric>; 4],
    labels: Vec<LabelPair>,
    exemplars: Vec<Exemplar>,
    buckets: Vec<Bucket>,
    quantiles: Vec<Quantile>,
    strings: Vec<String>,
    counts: Vec<u64>,
    qv: Vec<f64>,
    native: NativeSnapshot,
}

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
        // Last scrape's (or family's) metric messages back to their pools.
        for m in st.fam.metric.drain(..) {
            st.metrics[Kind::of(&m) as usize].push(m);
        }
        let t = fam.metric_type();
        let (kind, ty) = match t {
            Mt::Counter => (Kind::Counter, MetricType::Counter),
            Mt::Gauge | Mt::Info => (Kind::Gauge, MetricType::Gauge),
            Mt::Histogram => (Kind::Histogram, MetricType::Histogram),
            Mt::Summary => (Kind::Summary, MetricType::Summary),
        };
        {
            let name = st.fam.name.get_or_insert_with(String::new);
            name.clear();
            if t == Mt::Info {
                // Text 0.0.4 has no info type: a gauge `<base>_info` of value 1.
                name.push_str(fam.base_name());
                name.push_str("_info");
            } else {
                name.push_str(fam.name());
            }
        }
        set_str(&mut st.fam.help, Some(fam.help()), &mut st.strings);
        set_str(&mut st.fam.unit, Some(fam.unit()).filter(|u| !u.is_empty()), &mut st.strings);
        st.fam.r#type = Some(ty as i32);
        let names = fam.label_names();
        fam.for_each_series(|s| {
            let mut m = st.metrics[kind as usize].pop().unwrap_or_default();
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
                    let ph = m.histogram.get_or_insert_with(Histogram::default);
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
                    let ps = m.summary.get_or_insert_with(Summary::default);
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
            st.fam.metric.push(m);
        });
        // Encoding into a Vec cannot fail (prost only refuses a buffer without room).
        let _ = st.fam.encode_length_delimited(out);
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
    let e = if s.has_exemplars() { s.exemplar(i) } else { None };
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
