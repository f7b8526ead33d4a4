//! The `qprom_*` functions q binds with `2:` (each bound once in q/prom.q).
//!
//! Every export is `extern "C" fn(K, ...) -> K` and goes through [`guard`]: arguments are
//! decoded and checked, safe code runs, errors come back as `krr` with a static
//! `prom: …` message, and a panic is caught before it can reach q.

use super::k::{self, Item, KF, KJ};
use crate::error::{Error, Result};
use crate::expo::{Encoder, Format};
use crate::metric::{validate_buckets, MetricType, NativeParams, Params, SummaryParams, Value};
use crate::registry::{global, FamilyDesc, Registry, Series};
use super::qapi::K;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The one trampoline: q's error convention for errors and for panics.
pub(super) fn guard(f: impl FnOnce() -> Result<K>) -> K {
    let e = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(k)) => return k,
        Ok(Err(e)) => e,
        Err(_) => Error::Internal,
    };
    // SAFETY: krr keeps the pointer; every message is a 'static C string literal.
    unsafe { super::qapi::native::krr(e.cstr().as_ptr()) }
}

fn reg() -> &'static Registry {
    global()
}

/// A series named by metric + labels, or by the id `.prom.addmetric` returned.
pub(super) enum Target<'a> {
    Name(&'a str),
    Id(u64),
}

pub(super) fn target<'a>(x: K) -> Result<Target<'a>> {
    match k::ty(x) {
        -7 => Ok(Target::Id(k::whole(x).map_err(|_| Error::TargetType)? as u64)),
        -11 | k::KC => Ok(Target::Name(k::text(x, Error::TargetType)?)),
        _ => Err(Error::TargetType),
    }
}

/// Runs `f` on the series; `create` makes a missing labelled series (at zero) first, but
/// only after `f` succeeded on a detached probe of the same type: a refused update
/// leaves no new series behind.
pub(super) fn on_series<R>(t: K, labels: K, create: bool, f: impl Fn(&Series) -> Result<R>) -> Result<R> {
    match target(t)? {
        Target::Id(id) => {
            if !k::is_nothing(labels) {
                return Err(Error::HandleWithLabels);
            }
            reg().with_handle(id, f)?
        }
        Target::Name(name) => reg().with_family(name, |fam| {
            let lb = k::labels(labels, fam.label_names())?;
            match fam.with_series(lb.as_slice(), &f) {
                Err(Error::UnknownSeries) if create => {
                    f(&Series::detached(fam))?;
                    f(&*reg().get_or_create_in(fam, lb.as_slice(), None)?)
                }
                other => other?,
            }
        })?,
    }
}

/// `.prom.inc`/`.prom.incr`/updval `+`: add to a counter or gauge.
#[no_mangle]
pub extern "C" fn qprom_inc(t: K, labels: K, v: K) -> K {
    guard(|| {
        let v = k::num(v)?;
        on_series(t, labels, true, |s| s.inc(v))?;
        Ok(k::generic_null())
    })
}

/// `.prom.incEx[metric;labels;v;exemplar]`: [`qprom_inc`] of a counter, keeping the
/// exemplar (a dictionary of label names to strings or symbols) for it.
#[no_mangle]
pub extern "C" fn qprom_inc_ex(t: K, labels: K, v: K, ex: K) -> K {
    with_exemplar(t, labels, v, ex, Series::inc_with_exemplar)
}

/// `.prom.obsEx[metric;labels;v;exemplar]`: one observation of a histogram, keeping the
/// exemplar for the classic bucket it falls in.
#[no_mangle]
pub extern "C" fn qprom_obs_ex(t: K, labels: K, v: K, ex: K) -> K {
    with_exemplar(t, labels, v, ex, Series::observe_with_exemplar)
}

type ExemplarUpdate = fn(&Series, f64, std::sync::Arc<crate::metric::Exemplar>) -> Result<()>;

fn with_exemplar(t: K, labels: K, v: K, ex: K, update: ExemplarUpdate) -> K {
    guard(|| {
        let v = k::num(v)?;
        // One exemplar, shared by the probe on_series may run first and the series.
        let e = std::sync::Arc::new(exemplar(ex, v)?);
        on_series(t, labels, true, |s| update(s, v, e.clone()))?;
        Ok(k::generic_null())
    })
}

/// An exemplar from q: a dictionary with symbol keys (label names) and string or symbol
/// values, stamped now. Its value is the increment or observation it goes with.
pub(super) fn exemplar(ex: K, value: f64) -> Result<crate::metric::Exemplar> {
    let items = k::dict_items(ex).map_err(|_| Error::ExemplarLabels)?;
    let labels = items
        .iter()
        .map(|(name, item)| Ok(((*name).into(), item.text(Error::ExemplarLabels)?.into())))
        .collect::<Result<Vec<_>>>()?;
    crate::metric::Exemplar::new(labels, value, crate::registry::unix_now())
}

/// `.prom.dec`/`.prom.decr`/updval `-`: subtract from a gauge.
#[no_mangle]
pub extern "C" fn qprom_dec(t: K, labels: K, v: K) -> K {
    guard(|| {
        let v = k::num(v)?;
        on_series(t, labels, true, |s| s.dec(v))?;
        Ok(k::generic_null())
    })
}

/// `.prom.setv`/updval `:`: set a gauge or counter (a lower counter value is a reset).
#[no_mangle]
pub extern "C" fn qprom_set(t: K, labels: K, v: K) -> K {
    guard(|| {
        let exact = k::exact_u64(v);
        let v = k::num(v)?;
        on_series(t, labels, true, |s| match exact {
            // A long above 2^53 stays exact in a counter (mirroring a count kept elsewhere).
            Some(n) => s.set_u64(n),
            None => s.set(v),
        })?;
        Ok(k::generic_null())
    })
}

/// `.prom.obs`/updval `,`: observe one number or a list (all checked before any is recorded).
#[no_mangle]
pub extern "C" fn qprom_obs(t: K, labels: K, v: K) -> K {
    guard(|| {
        observe(v, |f| on_series(t, labels, true, f))?;
        Ok(k::generic_null())
    })
}

/// Observes `v` (a number, or a list all checked first) through `on`, which runs its
/// argument on the target series.
fn observe(v: K, on: impl FnOnce(&dyn Fn(&Series) -> Result<()>) -> Result<()>) -> Result<()> {
    if k::ty(v) < 0 {
        let x = k::num(v)?;
        return on(&|s| s.observe(x));
    }
    if k::ty(v) == k::NULL {
        return Err(Error::ValueType);
    }
    let mut xs = Vec::new();
    k::nums(v, &mut xs, Error::ValueType)?;
    if let Some(bad) = xs.iter().find(|x| !x.is_finite()) {
        return Err(if bad.is_nan() { Error::NanValue } else { Error::NotFinite });
    }
    on(&|s| {
        if !matches!(s.value, Value::Histogram(_) | Value::Summary(_)) {
            return Err(Error::WrongType);
        }
        xs.iter().try_for_each(|x| s.observe(*x))
    })
}

/// Current value (float): counters, gauges, 1 for info; the sum for histograms and summaries.
#[no_mangle]
pub extern "C" fn qprom_get(t: K, labels: K) -> K {
    guard(|| Ok(k::float(on_series(t, labels, false, |s| Ok(s.get()))?)))
}

/// `.prom.create[dict]`: `name`type mandatory; `help`labels`unit`buckets`quantiles`maxAge
/// `ageBuckets`limit optional. Returns the name.
#[no_mangle]
pub extern "C" fn qprom_create(def: K) -> K {
    guard(|| {
        let items = k::dict_items(def)?;
        let (mut name, mut mtype, mut help, mut unit) = (None, None, "", "");
        let (mut labels, mut buckets, mut quantiles) = (Vec::new(), None, None);
        let (mut max_age, mut age_buckets, mut limit) = (None, None, None);
        let mut native = NativeKeys::default();
        for (key, item) in &items {
            match *key {
                "name" => name = Some(item.text(Error::NameType)?),
                "type" | "mtype" => {
                    let t = item.text(Error::UnknownType)?;
                    mtype = Some(MetricType::parse(t).ok_or(Error::UnknownType)?);
                }
                "help" => help = item.text(Error::OptionType)?,
                "unit" => unit = item.text(Error::OptionType)?,
                "labels" => {
                    labels = match item {
                        Item::K(x) => k::label_names(*x)?,
                        Item::Sym(s) => vec![*s],
                        Item::Num(_) => return Err(Error::LabelsType),
                    }
                }
                "buckets" => buckets = Some(item_nums(item)?),
                "quantiles" => quantiles = Some(item_nums(item)?),
                "maxAge" => max_age = Some(item.seconds(Error::OptionType, Error::InvalidWindow, 1e10)?),
                "ageBuckets" => age_buckets = Some(item.count(Error::OptionType)?),
                "limit" => limit = Some(item.count(Error::OptionType)?),
                k if k.starts_with("native") && native.take(&k["native".len()..], item)? => {}
                _ => return Err(Error::UnknownOption),
            }
        }
        let (name, mtype) = match (name, mtype) {
            (Some(n), Some(t)) => (n, t),
            _ => return Err(Error::MissingOption),
        };
        let summary_keys = quantiles.is_some() || max_age.is_some() || age_buckets.is_some();
        let params = match mtype {
            MetricType::Histogram if summary_keys => return Err(Error::InvalidParams),
            MetricType::Summary if buckets.is_some() => return Err(Error::InvalidParams),
            MetricType::Histogram if native.any() => {
                Some(Params::Native(validate_buckets(buckets.as_deref().unwrap_or(&[]))?, native.params()?))
            }
            MetricType::Histogram => buckets.map(|b| validate_buckets(&b).map(Params::Buckets)).transpose()?,
            MetricType::Summary if summary_keys => {
                let d = SummaryParams::default();
                Some(Params::Summary(SummaryParams::new(
                    quantiles.as_deref().unwrap_or(&d.quantiles),
                    max_age.unwrap_or(d.max_age),
                    age_buckets.map_or(Ok(d.age_buckets), |n| u32::try_from(n).map_err(|_| Error::InvalidWindow))?,
                )?))
            }
            _ if buckets.is_some() || summary_keys || native.any() => {
                return Err(Error::InvalidParams)
            }
            _ => None,
        };
        let series_limit = limit.map(|n| usize::try_from(n).map_err(|_| Error::InvalidSeriesLimit)).transpose()?;
        let d = FamilyDesc { name, mtype, help, unit, label_names: &labels, params, series_limit };
        reg().register(&d)?;
        Ok(k::sym(name))
    })
}

/// The native-histogram keys, as `.prom.create` takes them (`nativeSchema`…) and as
/// `.prom.init`'s `nativeHistograms` dictionary does (`schema`…): `schema` or `factor`
/// (not both), `zeroThreshold`, `maxBuckets`, `minReset`. Each is checked here; their
/// ranges by [`NativeParams::new`].
#[derive(Debug, Default)]
pub(crate) struct NativeKeys {
    schema: Option<i64>,
    factor: Option<f64>,
    zero: Option<f64>,
    max: Option<i64>,
    min_reset: Option<std::time::Duration>,
}

impl NativeKeys {
    /// Takes `key` (without any `native` prefix) if it is one; false if it is not.
    pub(super) fn take(&mut self, key: &str, item: &Item) -> Result<bool> {
        let number = |i: &Item| match i {
            Item::Num(n) => Ok(*n),
            Item::K(x) if matches!(k::ty(*x), -9..=-5) => k::num(*x).map_err(|_| Error::OptionType),
            _ => Err(Error::OptionType),
        };
        match key {
            "Schema" | "schema" => self.schema = Some(item.count(Error::OptionType)?),
            "Factor" | "factor" => self.factor = Some(number(item)?),
            "ZeroThreshold" | "zeroThreshold" => self.zero = Some(number(item)?),
            "MaxBuckets" | "maxBuckets" => self.max = Some(item.count(Error::OptionType)?),
            "MinReset" | "minReset" => {
                let zero = match item {
                    Item::Num(n) => *n == 0.0,
                    Item::K(x) if k::ty(*x) == -16 => k::whole_timespan(*x).ok() == Some(0),
                    Item::K(x) => k::num(*x).ok() == Some(0.0),
                    Item::Sym(_) => false,
                };
                self.min_reset = Some(if zero {
                    std::time::Duration::ZERO
                } else {
                    item.seconds(Error::OptionType, Error::InvalidNative, 1e10)?
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(super) fn any(&self) -> bool {
        self.schema.is_some() || self.factor.is_some() || self.zero.is_some() || self.max.is_some() || self.min_reset.is_some()
    }

    pub(super) fn params(&self) -> Result<NativeParams> {
        let d = NativeParams::default();
        let schema = match (self.schema, self.factor) {
            (Some(_), Some(_)) => return Err(Error::InvalidNative),
            (Some(s), None) => i32::try_from(s).map_err(|_| Error::InvalidNative)?,
            (None, Some(f)) => NativeParams::schema_for_factor(f)?,
            (None, None) => d.schema,
        };
        let max = self.max.map_or(Ok(d.max_buckets), |m| u32::try_from(m).map_err(|_| Error::InvalidNative))?;
        NativeParams::new(schema, self.zero.unwrap_or(d.zero_threshold), max, self.min_reset.unwrap_or(d.min_reset))
    }
}

fn item_nums(i: &Item) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    match i {
        Item::K(x) => k::nums(*x, &mut v, Error::ParamsType)?,
        Item::Num(n) => v.push(*n),
        Item::Sym(_) => return Err(Error::ParamsType),
    }
    Ok(v)
}

/// `.prom.addmetric[metric;labelvals;params;startval]`: the series, with per-series
/// buckets or quantiles (`params`) and a start value (counter/gauge) or initial
/// observations (histogram/summary). Returns the series id.
///
/// As in KX, `params` and `startval` configure the series whether `addmetric` creates it
/// or finds it untouched (nothing recorded: a counter or gauge at 0, no observations):
/// an unlabelled metric has its series from definition, and KX's documented pattern is
/// `newmetric` then `addmetric[m;();.25 .5 .75;…]`. A series that already holds data
/// keeps its value (a second `addmetric` is harmless) and refuses other `params`
/// (`ParamsFixed`) rather than silently keeping its own.
#[no_mangle]
pub extern "C" fn qprom_series(name: K, labels: K, params: K, start: K) -> K {
    guard(|| {
        let name = k::text(name, Error::NameType)?;
        let mut ps = Vec::new();
        k::nums(params, &mut ps, Error::ParamsType)?;
        let mut start_vals = Vec::new();
        k::nums(start, &mut start_vals, Error::ValueType)?;
        // A long start value stays exact above 2^53, as with setv.
        let exact_start = k::exact_u64(start);
        reg().with_family(name, |fam| {
            let lb = k::labels(labels, fam.label_names())?;
            let p = match (fam.metric_type(), ps.is_empty()) {
                (_, true) => None,
                (MetricType::Histogram, false) => Some(Params::Buckets(validate_buckets(&ps)?)),
                (MetricType::Summary, false) => {
                    let d = match fam.params() {
                        Params::Summary(d) => d.clone(),
                        _ => SummaryParams::default(),
                    };
                    Some(Params::Summary(SummaryParams::new(&ps, d.max_age, d.age_buckets)?))
                }
                _ => return Err(Error::InvalidParams),
            };
            // Check the start value before creating or changing anything.
            let single = matches!(fam.metric_type(), MetricType::Counter | MetricType::Gauge);
            if single && start_vals.len() > 1 {
                return Err(Error::ValueType);
            }
            if start_vals.iter().any(|v| !single && !v.is_finite()) {
                return Err(Error::NotFinite);
            }
            if fam.metric_type() == MetricType::Info && !start_vals.is_empty() {
                // An info series is always 1; KX scripts pass 1f: accept and ignore it.
                start_vals.clear();
            }
            if let (true, Some(v)) = (single, start_vals.first()) {
                let probe = Value::new(fam.metric_type(), &Params::None);
                match &probe {
                    Value::Counter(c) => c.set(*v).map(drop)?,
                    Value::Gauge(g) => g.set(*v)?,
                    _ => {}
                }
            }
            let s = match fam.get(lb.as_slice()) {
                Ok(existing) => {
                    if !untouched(&existing) {
                        if p.as_ref().is_some_and(|p| !same_params(&existing, p)) {
                            return Err(Error::ParamsFixed);
                        }
                        return Ok(k::long(existing.handle() as i64));
                    }
                    match &p {
                        Some(p) if !same_params(&existing, p) => {
                            // The registry counts references: ours must be gone.
                            drop(existing);
                            reg().reconfigure_series(fam, lb.as_slice(), p)?
                        }
                        _ => existing,
                    }
                }
                Err(Error::UnknownSeries) => reg().get_or_create_in(fam, lb.as_slice(), p.as_ref())?,
                Err(e) => return Err(e),
            };
            for v in &start_vals {
                match fam.metric_type() {
                    MetricType::Counter | MetricType::Gauge => match exact_start {
                        Some(n) => s.set_u64(n)?,
                        None => s.set(*v)?,
                    },
                    MetricType::Histogram | MetricType::Summary => s.observe(*v)?,
                    MetricType::Info => {}
                }
            }
            Ok(k::long(s.handle() as i64))
        })?
    })
}

/// Nothing recorded yet: a counter or gauge at 0, a histogram or summary without
/// observations (info series have no value: always untouched).
fn untouched(s: &Series) -> bool {
    match &s.value {
        Value::Counter(c) => c.get().as_f64() == 0.0,
        Value::Gauge(g) => g.get() == 0.0,
        Value::Histogram(h) => h.count_sum().0 == 0,
        Value::Summary(sm) => sm.count_sum().0 == 0,
        Value::Info => true,
    }
}

fn same_params(s: &Series, p: &Params) -> bool {
    match (&s.value, p) {
        (Value::Histogram(h), Params::Buckets(b)) => h.bounds() == &b[..] && h.native_params().is_none(),
        (Value::Histogram(h), Params::Native(b, n)) => h.bounds() == &b[..] && h.native_params() == Some(n),
        (Value::Summary(sm), Params::Summary(q)) => sm.params() == q,
        _ => false,
    }
}

/// `.prom.updval[id;func;arg]` after q has named `func`: `set (`:`, and any other
/// function with its result), `add (`+`), `sub (`-`), `obs (`,`). KX's semantics, which
/// apply any operator to the stored value, are kept where Prometheus can express them:
///
/// | op   | counter                                  | gauge    | histogram, summary |
/// |------|------------------------------------------|----------|--------------------|
/// | set  | set; a lower value is a reset (`setv`)    | set      | refused            |
/// | add  | arg >= 0 increments, arg < 0 lowers       | add      | refused            |
/// | sub  | arg >= 0 lowers, arg < 0 increments       | subtract | refused            |
/// | obs  | refused                                  | refused  | observe (list too) |
///
/// "Lowers" takes back an earlier increment, in place, as KX's exporter.q does with its
/// error counters (+1 before a request, -1 after a successful one): the value goes down,
/// `_created` stays (it is not a restart), and a result below 0 is refused.
#[no_mangle]
pub extern "C" fn qprom_updval(t: K, op: K, arg: K) -> K {
    guard(|| {
        let op = match k::text(op, Error::UpdvalOp)? {
            "set" => UpdOp::Set,
            "add" => UpdOp::Add,
            "sub" => UpdOp::Sub,
            "obs" => {
                observe(arg, |f| on_unlabelled(t, f))?;
                return Ok(k::generic_null());
            }
            _ => return Err(Error::UpdvalOp),
        };
        let exact = if op == UpdOp::Set { k::exact_u64(arg) } else { None };
        let v = k::num(arg)?;
        on_unlabelled(t, |s| match (&s.value, op) {
            (Value::Counter(_), UpdOp::Set) => match exact {
                Some(n) => s.set_u64(n),
                None => s.set(v),
            },
            (Value::Gauge(_), UpdOp::Set) => s.set(v),
            (Value::Counter(c), UpdOp::Add) if v < 0.0 => c.lower(-v),
            (Value::Counter(c), UpdOp::Sub) if v >= 0.0 => c.lower(v),
            (Value::Counter(_) | Value::Gauge(_), UpdOp::Add) => s.inc(v),
            (Value::Counter(_), UpdOp::Sub) => s.inc(-v),
            (Value::Gauge(_), UpdOp::Sub) => s.dec(v),
            _ => Err(Error::WrongType),
        })?;
        Ok(k::generic_null())
    })
}

/// [`on_series`] for `.prom.updval`, whose target is an id or the name of an unlabelled
/// metric (a labelled one is `label count mismatch`).
fn on_unlabelled<R>(t: K, f: impl Fn(&Series) -> Result<R>) -> Result<R> {
    let none: [&str; 0] = [];
    match target(t)? {
        Target::Id(id) => reg().with_handle(id, f)?,
        Target::Name(name) => reg().with_family(name, |fam| match fam.with_series(&none, &f) {
            // Removed with .prom.del: recreated as an update by name would (probe first).
            Err(Error::UnknownSeries) => {
                f(&Series::detached(fam))?;
                f(&*reg().get_or_create_in(fam, &none, None)?)
            }
            other => other?,
        })?,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum UpdOp {
    Set,
    Add,
    Sub,
}

/// `.prom.del[metric;labels]`: one series, or (labels `::`) the whole family.
#[no_mangle]
pub extern "C" fn qprom_del(name: K, labels: K) -> K {
    guard(|| {
        let name = k::text(name, Error::NameType)?;
        if k::ty(labels) == k::NULL {
            reg().unregister(name)?;
        } else {
            let names = reg().family(name)?.label_names().to_vec();
            let lb = k::labels(labels, &names)?;
            reg().remove_series(name, lb.as_slice())?;
        }
        Ok(k::generic_null())
    })
}

/// `.prom.serve[fmt]`: the exposition as a q string; fmt `text (default) or `openmetrics;
/// `protobuf gives a byte vector (length-delimited MetricFamily messages, as Prometheus
/// reads them).
#[no_mangle]
pub extern "C" fn qprom_render(fmt: K) -> K {
    guard(|| {
        let f = match k::ty(fmt) {
            k::NULL => Format::Text,
            _ => match k::text(fmt, Error::FormatType)? {
                "text" | "" => Format::Text,
                "openmetrics" => Format::OpenMetrics,
                "protobuf" => Format::Protobuf,
                _ => return Err(Error::FormatType),
            },
        };
        let mut enc = Encoder::new();
        let body = enc.encode(reg(), f);
        Ok(if f == Format::Protobuf { k::vector(4, body) } else { k::string(body) })
    })
}

/// `.prom.metrics[]`: one row per series: metric, type, labels (dict), id, value. Counters,
/// gauges and info give a float; histograms `count`sum`buckets (le!cumulative count);
/// summaries `count`sum`quantiles (q!estimate).
#[no_mangle]
pub extern "C" fn qprom_metrics(_unused: K) -> K {
    guard(|| {
        struct Row {
            metric: String,
            mtype: &'static str,
            names: Vec<String>,
            values: Vec<String>,
            id: i64,
            value: RowValue,
        }
        enum RowValue {
            Single(f64),
            Hist(u64, f64, Vec<f64>, Vec<i64>),
            Summ(u64, f64, Vec<f64>, Vec<f64>),
        }
        // Snapshot in Rust first: the registry can change while q objects are built.
        let mut rows = Vec::new();
        let mut scratch = Vec::new();
        reg().for_each_family(|fam| {
            fam.for_each_series(|s| {
                let value = match &s.value {
                    Value::Histogram(h) => {
                        let sum = h.snapshot_into(&mut scratch);
                        let mut le = h.bounds().to_vec();
                        le.push(f64::INFINITY);
                        let counts = scratch.iter().map(|c| *c as i64).collect();
                        RowValue::Hist(scratch.last().copied().unwrap_or(0), sum, le, counts)
                    }
                    Value::Summary(sm) => {
                        let mut q = Vec::new();
                        let (count, sum) = sm.snapshot_into(&mut q);
                        RowValue::Summ(count, sum, sm.params().quantiles.to_vec(), q)
                    }
                    _ => RowValue::Single(s.get()),
                };
                rows.push(Row {
                    metric: fam.name().to_string(),
                    mtype: fam.metric_type().as_str(),
                    names: fam.label_names().iter().map(|n| n.to_string()).collect(),
                    values: s.labels().iter().map(|v| v.to_string()).collect(),
                    id: s.handle() as i64,
                    value,
                });
            })
        });
        let metric = k::sym_list(rows.iter().map(|r| r.metric.as_str()));
        let mtype = k::sym_list(rows.iter().map(|r| r.mtype));
        let labels = k::list(
            rows.iter()
                .map(|r| {
                    k::dict(
                        k::sym_list(r.names.iter().map(String::as_str)),
                        k::sym_list(r.values.iter().map(String::as_str)),
                    )
                })
                .collect(),
        );
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let value = k::list(
            rows.iter()
                .map(|r| match &r.value {
                    RowValue::Single(v) => k::float(*v),
                    RowValue::Hist(c, s, le, counts) => stats(*c, *s, "buckets", k::dict(k::vector(KF, le), k::vector(KJ, counts))),
                    RowValue::Summ(c, s, q, v) => stats(*c, *s, "quantiles", k::dict(k::vector(KF, q), k::vector(KF, v))),
                })
                .collect(),
        );
        Ok(k::table(&["metric", "mtype", "labels", "id", "val"], vec![metric, mtype, labels, k::vector(KJ, &ids), value]))
    })
}

fn stats(count: u64, sum: f64, what: &str, detail: K) -> K {
    let keys = k::sym_list(["count", "sum", what].into_iter());
    k::dict(keys, k::list(vec![k::long(count as i64), k::float(sum), detail]))
}

/// `.prom.metricMeta[]`: one row per family: metric, type, help, unit, labels, params,
/// limit, series.
#[no_mangle]
pub extern "C" fn qprom_meta(_unused: K) -> K {
    guard(|| {
        let mut fams = Vec::new();
        reg().for_each_family(|f| {
            let params = match f.params() {
                Params::Buckets(b) | Params::Native(b, _) => b.to_vec(),
                Params::Summary(s) => s.quantiles.to_vec(),
                Params::None => Vec::new(),
            };
            fams.push((
                f.name().to_string(),
                f.metric_type().as_str(),
                f.help().to_string(),
                f.unit().to_string(),
                f.label_names().iter().map(|l| l.to_string()).collect::<Vec<_>>(),
                params,
                f.series_limit() as i64,
                f.len() as i64,
            ));
        });
        let cols = vec![
            k::sym_list(fams.iter().map(|f| f.0.as_str())),
            k::sym_list(fams.iter().map(|f| f.1)),
            k::list(fams.iter().map(|f| k::string(f.2.as_bytes())).collect()),
            k::sym_list(fams.iter().map(|f| f.3.as_str())),
            k::list(fams.iter().map(|f| k::sym_list(f.4.iter().map(String::as_str))).collect()),
            k::list(fams.iter().map(|f| k::vector(KF, &f.5)).collect()),
            k::vector(KJ, &fams.iter().map(|f| f.6).collect::<Vec<_>>()),
            k::vector(KJ, &fams.iter().map(|f| f.7).collect::<Vec<_>>()),
        ];
        Ok(k::table(&["metric", "mtype", "help", "unit", "labels", "params", "limit", "series"], cols))
    })
}

/// `.prom.setLimit[n]`: the default series limit for families created afterwards.
#[no_mangle]
pub extern "C" fn qprom_limit(n: K) -> K {
    guard(|| {
        let n = k::whole(n).map_err(|_| Error::WholeNumber)?;
        reg().set_default_series_limit(usize::try_from(n).map_err(|_| Error::InvalidSeriesLimit)?)?;
        Ok(k::generic_null())
    })
}

