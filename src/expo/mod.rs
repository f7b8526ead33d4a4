//! Exposition: the store rendered as Prometheus text 0.0.4, OpenMetrics 1.0.0 (with
//! exemplars), or Prometheus' delimited protobuf (`proto.rs`).
//!
//! An [`Encoder`] owns its output buffer and scratch space and is reused across scrapes,
//! so a steady-state scrape allocates nothing. Families come sorted by name; each
//! histogram and summary is read once, as one consistent snapshot, so `_count` always
//! equals the `+Inf` bucket and `_sum` belongs to the same moment.

pub mod escape;
pub mod num;
pub mod proto;

use crate::metric::{MetricType, Value};
use crate::registry::{Family, Registry, Series};
use num::{write_f64, write_u64};

/// A wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages (binary).
    Protobuf,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }
}

/// Reusable exposition writer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
    counts: Vec<u64>,
    quantiles: Vec<f64>,
    /// The protobuf messages of the last protobuf render, reused by the next.
    proto: proto::State,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Renders the whole registry; the slice is valid until the next call.
    pub fn encode(&mut self, reg: &Registry, fmt: Format) -> &[u8] {
        self.buf.clear();
        if fmt == Format::Protobuf {
            let Encoder { buf, proto, .. } = self;
            reg.for_each_family(|fam| proto.family(buf, fam));
            return &self.buf;
        }
        reg.for_each_family(|fam| self.family(fam, fmt));
        if fmt == Format::OpenMetrics {
            self.buf.extend_from_slice(b"# EOF\n");
        }
        &self.buf
    }

    /// Appends one family (without the OpenMetrics `# EOF`).
    pub fn family(&mut self, fam: &Family, fmt: Format) {
        if fmt == Format::Protobuf {
            return self.proto.family(&mut self.buf, fam);
        }
        let om = fmt == Format::OpenMetrics;
        let t = fam.metric_type();
        // Text 0.0.4 has no info type: an info family is a gauge named `<base>_info`.
        let (meta_name, meta_suffix, type_str) = match (t, om) {
            (MetricType::Info, false) => (fam.base_name(), "_info", "gauge"),
            (MetricType::Info, true) => (fam.base_name(), "", "info"),
            (_, true) => (fam.base_name(), "", t.as_str()),
            (_, false) => (fam.name(), "", t.as_str()),
        };
        let b = &mut self.buf;
        if om {
            meta(b, b"# TYPE ", meta_name, meta_suffix, type_str.as_bytes());
            if !fam.unit().is_empty() {
                meta(b, b"# UNIT ", meta_name, meta_suffix, fam.unit().as_bytes());
            }
        }
        if !fam.help().is_empty() {
            b.extend_from_slice(b"# HELP ");
            b.extend_from_slice(meta_name.as_bytes());
            b.extend_from_slice(meta_suffix.as_bytes());
            b.push(b' ');
            escape::escape_help(b, fam.help(), om);
            b.push(b'\n');
        }
        if !om {
            meta(b, b"# TYPE ", meta_name, meta_suffix, type_str.as_bytes());
        }
        let Encoder { buf, counts, quantiles, .. } = self;
        fam.for_each_series(|s| series(buf, counts, quantiles, fam, s, om));
    }

    /// Takes the buffer out (for callers that hand it to another thread), leaving an empty one.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Gives back a buffer from [`Encoder::take`] so its capacity is reused.
    pub fn give_back(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if buf.capacity() > self.buf.capacity() {
            self.buf = buf;
        }
    }
}

fn meta(b: &mut Vec<u8>, what: &[u8], name: &str, suffix: &str, val: &[u8]) {
    b.extend_from_slice(what);
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(suffix.as_bytes());
    b.push(b' ');
    b.extend_from_slice(val);
    b.push(b'\n');
}

/// `name{labels,extra="v"} ` up to and including the space before the value.
#[inline]
fn sample_start(b: &mut Vec<u8>, name: &str, suffix: &str, s: &Series, extra: Option<(&str, f64)>) {
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(suffix.as_bytes());
    let lt = s.label_text();
    if !lt.is_empty() || extra.is_some() {
        b.push(b'{');
        b.extend_from_slice(lt.as_bytes());
        if let Some((k, v)) = extra {
            if !lt.is_empty() {
                b.push(b',');
            }
            b.extend_from_slice(k.as_bytes());
            b.extend_from_slice(b"=\"");
            write_f64(b, v);
            b.push(b'"');
        }
        b.push(b'}');
    }
    b.push(b' ');
}

fn series(b: &mut Vec<u8>, counts: &mut Vec<u64>, qv: &mut Vec<f64>, fam: &Family, s: &Series, om: bool) {
    let base = if om { fam.base_name() } else { fam.name() };
    match &s.value {
        Value::Counter(c) => {
            let v = c.get();
            sample_start(b, base, if om { "_total" } else { "" }, s, None);
            if v.frac == 0.0 {
                write_u64(b, v.int);
            } else {
                write_f64(b, v.as_f64());
            }
            if om && s.has_exemplars() {
                exemplar(b, s, 0);
            }
            b.push(b'\n');
            if om {
                created(b, base, s);
            }
        }
        Value::Gauge(g) => {
            sample_start(b, base, "", s, None);
            write_f64(b, g.get());
            b.push(b'\n');
        }
        Value::Info => {
            sample_start(b, fam.base_name(), "_info", s, None);
            b.extend_from_slice(b"1\n");
        }
        Value::Histogram(h) => {
            let (sum, ever_negative) = h.snapshot_with_sign(counts);
            let bounds = h.bounds();
            // `name_bucket{labels,` once per series, then one copy per bucket.
            let start = b.len();
            b.extend_from_slice(base.as_bytes());
            b.extend_from_slice(b"_bucket{");
            if !s.label_text().is_empty() {
                b.extend_from_slice(s.label_text().as_bytes());
                b.push(b',');
            }
            let prefix_len = b.len() - start;
            for (i, (c, le)) in counts.iter().zip(h.le_text().iter()).enumerate() {
                if i > 0 {
                    b.extend_from_within(start..start + prefix_len);
                }
                b.extend_from_slice(le.as_bytes());
                write_u64(b, *c);
                if om && s.has_exemplars() {
                    exemplar(b, s, i);
                }
                b.push(b'\n');
            }
            let count = counts.last().copied().unwrap_or(0);
            // OpenMetrics: with negative buckets or observations `_sum` is no longer a
            // counter and must not be exposed (nor `_count` without it).
            let negative = ever_negative || bounds.first().is_some_and(|b| *b < 0.0);
            count_sum(b, base, s, count, sum, om, !(om && negative));
        }
        Value::Summary(sm) => {
            let (count, sum, ever_negative) = sm.snapshot_with_sign(qv);
            for (q, v) in sm.params().quantiles.iter().zip(qv.iter()) {
                // OpenMetrics forbids negative quantile values; text 0.0.4 shows them.
                if om && *v < 0.0 {
                    continue;
                }
                sample_start(b, base, "", s, Some(("quantile", *q)));
                write_f64(b, *v);
                b.push(b'\n');
            }
            count_sum(b, base, s, count, sum, om, !(om && ever_negative));
        }
    }
}

fn count_sum(b: &mut Vec<u8>, base: &str, s: &Series, count: u64, sum: f64, om: bool, show: bool) {
    if show {
        sample_start(b, base, "_count", s, None);
        write_u64(b, count);
        b.push(b'\n');
        sample_start(b, base, "_sum", s, None);
        write_f64(b, sum);
        b.push(b'\n');
    }
    if om {
        created(b, base, s);
    }
}

/// OpenMetrics: ` # {labels} value timestamp` after a counter's `_total` or a bucket's
/// value, for slot `i`'s exemplar if it has one. Never in text 0.0.4, which has no syntax
/// for them.
fn exemplar(b: &mut Vec<u8>, s: &Series, i: usize) {
    let Some(e) = s.exemplar(i) else { return };
    b.extend_from_slice(b" # {");
    for (j, (k, v)) in e.labels.iter().enumerate() {
        if j > 0 {
            b.push(b',');
        }
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(b"=\"");
        escape::escape_label_value_bytes(b, v);
        b.push(b'"');
    }
    b.extend_from_slice(b"} ");
    write_f64(b, e.value);
    b.push(b' ');
    num::write_timestamp(b, e.timestamp);
}

fn created(b: &mut Vec<u8>, base: &str, s: &Series) {
    sample_start(b, base, "_created", s, None);
    num::write_timestamp(b, s.created());
    b.push(b'\n');
}
