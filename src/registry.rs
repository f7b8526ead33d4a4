//! Metric families by name and their series by full label-value tuple.
//!
//! - Series are found by a hash of the label values *and* an equality check on every
//!   value, so `("ab","c")`, `("a","bc")`, `("a|b","c")` and `("a","b|c")` are four series.
//! - Each series gets a 64-bit handle (slot index + generation) for the hot path; a
//!   handle of a removed series fails cleanly instead of reaching a newer one.
//! - Label text is escaped once, at creation, so a scrape only copies bytes.
//!
//! Lock order, everywhere: `families` → a family's `table` → `slab`.

use crate::error::{Error, Result};
// The one thing the store takes from the encoders: label values escaped once, at series
// creation, so that a scrape copies bytes (render cost at 100k series is memory layout,
// not formatting; see PERF.md). Text 0.0.4 and OpenMetrics escape label values the same
// way (`\\`, `\"`, `\n`), so the stored text belongs to neither format.
use crate::expo::escape::escape_label_value;
use crate::metric::{MetricType, Params, Value};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Series per family unless the family or the registry says otherwise. High enough for
/// real label sets (handlers × users × hosts), low enough that a label fed by unbounded
/// data (a query string, a timestamp) fails loudly long before it hurts the process.
pub const DEFAULT_SERIES_LIMIT: usize = 10_000;

/// What a family is: everything but its series.
#[derive(Debug, Clone)]
pub struct FamilyDesc<'a> {
    pub name: &'a str,
    pub mtype: MetricType,
    pub help: &'a str,
    /// Empty for none; otherwise the name must end with `_<unit>` (before `_total`).
    pub unit: &'a str,
    pub label_names: &'a [&'a str],
    /// `None` takes the type's defaults.
    pub params: Option<Params>,
    /// `None` takes the registry's default limit.
    pub series_limit: Option<usize>,
}

impl<'a> FamilyDesc<'a> {
    pub fn new(name: &'a str, mtype: MetricType, help: &'a str, label_names: &'a [&'a str]) -> Self {
        FamilyDesc { name, mtype, help, unit: "", label_names, params: None, series_limit: None }
    }
}

/// One metric family.
#[derive(Debug)]
pub struct Family {
    name: Box<str>,
    /// The OpenMetrics family name: `name` without a counter's `_total` or an info's `_info`.
    base: Box<str>,
    mtype: MetricType,
    help: Box<str>,
    unit: Box<str>,
    label_names: Box<[Box<str>]>,
    params: Params,
    series_limit: usize,
    /// New series refused by `series_limit`: one relaxed add on the refusal path, per
    /// family so that the listener can say which family is being flooded.
    limit_hits: AtomicU64,
    table: RwLock<Table>,
}

#[derive(Debug, Default)]
struct Table {
    list: Vec<Arc<Series>>,
    /// Label hash → positions in `list` of series with that hash (almost always one).
    index: HashMap<u64, Vec<u32>, BuildHasherDefault<IdentityHasher>>,
}

/// One series: label values, pre-escaped label text, value cell.
#[derive(Debug)]
pub struct Series {
    labels: Box<[Box<str>]>,
    /// `a="x",b="y"` escaped, without braces; empty when there are no labels.
    label_text: Box<str>,
    hash: u64,
    handle: u64,
    /// Unix seconds when the series was created or last reset.
    created: crate::metric::AtomicF64,
    pub value: Value,
    /// The latest exemplar per counter or per classic histogram bucket.
    exemplars: crate::metric::exemplar::Slots,
}

impl Series {
    pub fn labels(&self) -> &[Box<str>] {
        &self.labels
    }
    pub fn label_text(&self) -> &str {
        &self.label_text
    }
    pub fn handle(&self) -> u64 {
        self.handle
    }
    pub fn created(&self) -> f64 {
        self.created.get()
    }
    /// Sets the `_created` time (unix seconds), e.g. when mirroring a counter kept elsewhere.
    pub fn set_created(&self, unix_secs: f64) {
        self.created.set(unix_secs)
    }
    pub fn metric_type(&self) -> MetricType {
        self.value.metric_type()
    }

    /// Adds `v` to a counter or gauge.
    #[inline]
    pub fn inc(&self, v: f64) -> Result<()> {
        match &self.value {
            Value::Counter(c) => c.inc_by(v),
            Value::Gauge(g) => g.add(v),
            _ => Err(Error::WrongType),
        }
    }

    /// Subtracts `v` from a gauge; counters refuse.
    #[inline]
    pub fn dec(&self, v: f64) -> Result<()> {
        match &self.value {
            Value::Gauge(g) => g.add(-v),
            Value::Counter(_) => Err(Error::CounterDecrease),
            _ => Err(Error::WrongType),
        }
    }

    /// A series outside any registry, of the family's type and parameters: a probe that
    /// shows whether an update would be accepted before a real series is created.
    pub fn detached(fam: &Family) -> Series {
        Series {
            labels: Box::new([]),
            label_text: "".into(),
            hash: 0,
            handle: 0,
            created: crate::metric::AtomicF64::new(0.0),
            exemplars: Default::default(),
            value: Value::new(fam.mtype, &fam.params),
        }
    }

    /// Sets a counter to an exact integer (a lower value is a reset), or a gauge.
    pub fn set_u64(&self, v: u64) -> Result<()> {
        match &self.value {
            Value::Counter(c) => {
                if c.set_int(v) {
                    self.created.set(unix_now());
                }
                Ok(())
            }
            _ => self.set(v as f64),
        }
    }

    /// Sets a gauge, or a counter (a lower value is a reset: `_created` moves to now).
    #[inline]
    pub fn set(&self, v: f64) -> Result<()> {
        match &self.value {
            Value::Gauge(g) => g.set(v),
            Value::Counter(c) => {
                if c.set(v)? {
                    self.created.set(unix_now());
                }
                Ok(())
            }
            _ => Err(Error::WrongType),
        }
    }

    /// Records an observation in a histogram or summary.
    #[inline]
    pub fn observe(&self, v: f64) -> Result<()> {
        match &self.value {
            Value::Histogram(h) => h.observe(v),
            Value::Summary(s) => s.observe(v),
            _ => Err(Error::WrongType),
        }
    }

    /// [`Series::inc`] of a counter, keeping `e` as its exemplar. Gauges refuse
    /// (OpenMetrics has exemplars for counters and histogram buckets only).
    pub fn inc_with_exemplar(&self, v: f64, e: impl Into<Arc<crate::metric::Exemplar>>) -> Result<()> {
        let Value::Counter(c) = &self.value else { return Err(Error::WrongType) };
        c.inc_by(v)?;
        self.exemplars.set(1, 0, e.into());
        Ok(())
    }

    /// [`Series::observe`] of a histogram, keeping `e` as the exemplar of the classic
    /// bucket `v` falls in. Summaries refuse.
    pub fn observe_with_exemplar(&self, v: f64, e: impl Into<Arc<crate::metric::Exemplar>>) -> Result<()> {
        let Value::Histogram(h) = &self.value else { return Err(Error::WrongType) };
        h.observe(v)?;
        self.exemplars.set(h.bounds().len() + 1, h.bucket_index(v), e.into());
        Ok(())
    }

    /// The latest exemplar of slot `i`: 0 for a counter, the classic bucket's index for a
    /// histogram (`+Inf` last). `None` fast when the series never had one.
    #[inline]
    pub fn exemplar(&self, i: usize) -> Option<Arc<crate::metric::Exemplar>> {
        self.exemplars.get(i)
    }

    /// Whether the series ever had an exemplar.
    #[inline]
    pub fn has_exemplars(&self) -> bool {
        self.exemplars.any()
    }

    /// The single value of a counter, gauge (or 1 for info); histograms and summaries
    /// give their sum.
    pub fn get(&self) -> f64 {
        match &self.value {
            Value::Counter(c) => c.get().as_f64(),
            Value::Gauge(g) => g.get(),
            Value::Histogram(h) => h.count_sum().1,
            Value::Summary(s) => s.count_sum().1,
            Value::Info => 1.0,
        }
    }
}

impl Family {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn base_name(&self) -> &str {
        &self.base
    }
    pub fn metric_type(&self) -> MetricType {
        self.mtype
    }
    pub fn help(&self) -> &str {
        &self.help
    }
    pub fn unit(&self) -> &str {
        &self.unit
    }
    pub fn label_names(&self) -> &[Box<str>] {
        &self.label_names
    }
    pub fn params(&self) -> &Params {
        &self.params
    }
    pub fn series_limit(&self) -> usize {
        self.series_limit
    }
    /// How many series creations this family's limit refused.
    pub fn series_limit_hits(&self) -> u64 {
        self.limit_hits.load(Relaxed)
    }
    pub fn len(&self) -> usize {
        self.table.read().list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` on every series, in creation order (modulo removals), under a read lock.
    pub fn for_each_series(&self, mut f: impl FnMut(&Series)) {
        for s in self.table.read().list.iter() {
            f(s);
        }
    }

    /// Runs `f` on the existing series with these label values, without allocating.
    #[inline]
    pub fn with_series<R, S: AsRef<str>>(&self, labels: &[S], f: impl FnOnce(&Series) -> R) -> Result<R> {
        if labels.len() != self.label_names.len() {
            return Err(Error::LabelCount);
        }
        let t = self.table.read();
        match t.find(labels, hash_labels(labels)) {
            Some(i) => Ok(f(&t.list[i])),
            None => Err(Error::UnknownSeries),
        }
    }

    /// The existing series with these label values, if any.
    pub fn get<S: AsRef<str>>(&self, labels: &[S]) -> Result<Arc<Series>> {
        if labels.len() != self.label_names.len() {
            return Err(Error::LabelCount);
        }
        let t = self.table.read();
        t.find(labels, hash_labels(labels)).map(|i| t.list[i].clone()).ok_or(Error::UnknownSeries)
    }
}

impl Table {
    fn find<S: AsRef<str>>(&self, labels: &[S], hash: u64) -> Option<usize> {
        let slots = self.index.get(&hash)?;
        slots.iter().map(|&i| i as usize).find(|&i| {
            self.list.get(i).is_some_and(|s| {
                s.labels.iter().zip(labels).all(|(a, b)| **a == *b.as_ref())
            })
        })
    }

    fn insert(&mut self, s: Arc<Series>) {
        let pos = self.list.len() as u32;
        self.index.entry(s.hash).or_default().push(pos);
        self.list.push(s);
    }

    fn remove_at(&mut self, i: usize) -> Arc<Series> {
        let last = self.list.len() - 1;
        let removed = self.list.swap_remove(i);
        unindex(&mut self.index, removed.hash, i as u32);
        if i != last {
            // The former last series now lives at i.
            let moved = self.list[i].hash;
            if let Some(v) = self.index.get_mut(&moved) {
                for p in v.iter_mut().filter(|p| **p == last as u32) {
                    *p = i as u32;
                }
            }
        }
        removed
    }
}

fn unindex(index: &mut HashMap<u64, Vec<u32>, BuildHasherDefault<IdentityHasher>>, h: u64, pos: u32) {
    if let Some(v) = index.get_mut(&h) {
        v.retain(|p| *p != pos);
        if v.is_empty() {
            index.remove(&h);
        }
    }
}

/// Slot table behind handles: index in the low 32 bits, generation in the high 32.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<(u32, Option<Arc<Series>>)>,
    free: Vec<u32>,
}

impl Slab {
    fn reserve(&mut self) -> u64 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[idx as usize];
        slot.0 = slot.0.wrapping_add(1).max(1);
        ((slot.0 as u64) << 32) | idx as u64
    }

    fn get(&self, h: u64) -> Option<&Arc<Series>> {
        let (idx, generation) = ((h & 0xffff_ffff) as usize, (h >> 32) as u32);
        match self.slots.get(idx) {
            Some((g, Some(s))) if *g == generation => Some(s),
            _ => None,
        }
    }

    fn release(&mut self, h: u64) {
        let idx = (h & 0xffff_ffff) as u32;
        if let Some(slot) = self.slots.get_mut(idx as usize) {
            if slot.0 == (h >> 32) as u32 && slot.1.take().is_some() {
                self.free.push(idx);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Families {
    by_name: BTreeMap<Box<str>, Arc<Family>>,
    /// Every sample and family name a family can expose (in either format) → its owner,
    /// so that a counter `x` and a gauge `x_total` cannot both exist.
    claims: HashMap<Box<str>, Box<str>>,
}

/// The metric store.
#[derive(Debug)]
pub struct Registry {
    families: RwLock<Families>,
    slab: RwLock<Slab>,
    default_limit: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            families: RwLock::new(Families::default()),
            slab: RwLock::new(Slab::default()),
            default_limit: AtomicUsize::new(DEFAULT_SERIES_LIMIT),
        }
    }

    /// Series limit for families registered from now on without one of their own.
    pub fn set_default_series_limit(&self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::InvalidSeriesLimit);
        }
        self.default_limit.store(n, Relaxed);
        Ok(())
    }

    pub fn default_series_limit(&self) -> usize {
        self.default_limit.load(Relaxed)
    }

    /// How many series creations the limits of the registered families refused (an
    /// unregistered family takes its count with it).
    pub fn series_limit_hits(&self) -> u64 {
        self.families.read().by_name.values().map(|f| f.series_limit_hits()).sum()
    }

    /// Registers a family. Registering the same name again with the same type and label
    /// names returns the existing family unchanged (scripts get reloaded); another type or
    /// other label names is an error, never a silent change.
    pub fn register(&self, d: &FamilyDesc) -> Result<Arc<Family>> {
        validate_metric_name(d.name)?;
        for l in d.label_names {
            validate_label_name(l)?;
            let reserved = match d.mtype {
                MetricType::Histogram => *l == "le",
                MetricType::Summary => *l == "quantile",
                _ => false,
            };
            if reserved {
                return Err(Error::ReservedLabelName);
            }
        }
        // Sorted copy: n log n, where comparing every pair took seconds for 40k names.
        if d.label_names.len() > 1 {
            let mut sorted: Vec<&str> = d.label_names.to_vec();
            sorted.sort_unstable();
            if sorted.windows(2).any(|w| w[0] == w[1]) {
                return Err(Error::DuplicateLabelName);
            }
        }
        let params = match &d.params {
            None => Params::default_for(d.mtype),
            Some(p) if p.fits(d.mtype) => p.clone(),
            Some(_) => return Err(Error::InvalidParams),
        };
        let limit = d.series_limit.unwrap_or_else(|| self.default_series_limit());
        if limit == 0 {
            return Err(Error::InvalidSeriesLimit);
        }
        let base = match d.mtype {
            MetricType::Counter => d.name.strip_suffix("_total").unwrap_or(d.name),
            MetricType::Info => d.name.strip_suffix("_info").unwrap_or(d.name),
            _ => d.name,
        };
        if base.is_empty() {
            return Err(Error::InvalidMetricName);
        }
        // OpenMetrics 1.0: "MetricFamily names beginning with underscores are RESERVED".
        if d.name.starts_with('_') {
            return Err(Error::ReservedMetricName);
        }
        // OpenMetrics 1.0: "MetricFamilies of type Info MUST have an empty Unit string"
        // (the Python client's parser rejects the whole exposition otherwise).
        if d.mtype == MetricType::Info && !d.unit.is_empty() {
            return Err(Error::InfoUnit);
        }
        if !d.unit.is_empty() {
            let ok_unit = d.unit.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let suffix_ok = base.len() > d.unit.len()
                && base.ends_with(d.unit)
                && base.as_bytes()[base.len() - d.unit.len() - 1] == b'_';
            if !ok_unit || !suffix_ok {
                return Err(Error::InvalidUnit);
            }
        }

        let mut fams = self.families.write();
        if let Some(f) = fams.by_name.get(d.name) {
            if f.mtype != d.mtype {
                return Err(Error::TypeConflict);
            }
            if f.label_names.len() != d.label_names.len()
                || f.label_names.iter().zip(d.label_names).any(|(a, b)| **a != **b)
            {
                return Err(Error::LabelConflict);
            }
            return Ok(f.clone());
        }
        let claims = claimed_names(d.name, base, d.mtype);
        if claims.iter().any(|c| fams.claims.contains_key(c.as_str())) {
            return Err(Error::NameCollision);
        }
        let fam = Arc::new(Family {
            name: d.name.into(),
            base: base.into(),
            mtype: d.mtype,
            help: d.help.into(),
            unit: d.unit.into(),
            label_names: d.label_names.iter().map(|s| Box::<str>::from(*s)).collect(),
            params,
            series_limit: limit,
            limit_hits: AtomicU64::new(0),
            table: RwLock::new(Table::default()),
        });
        if d.label_names.is_empty() {
            // An unlabelled metric exists from the start, at zero, as in the client libraries.
            let no_labels: [&str; 0] = [];
            self.create_series(&fam, &no_labels, hash_labels(&no_labels), None)?;
        }
        for c in claims {
            fams.claims.insert(c.into(), d.name.into());
        }
        fams.by_name.insert(d.name.into(), fam.clone());
        Ok(fam)
    }

    pub fn family(&self, name: &str) -> Result<Arc<Family>> {
        self.families.read().by_name.get(name).cloned().ok_or(Error::UnknownMetric)
    }

    /// Runs `f` on a family without cloning its Arc.
    #[inline]
    pub fn with_family<R>(&self, name: &str, f: impl FnOnce(&Family) -> R) -> Result<R> {
        let fams = self.families.read();
        fams.by_name.get(name).map(|fam| f(fam)).ok_or(Error::UnknownMetric)
    }

    /// Removes a family and all its series; their handles stop working.
    pub fn unregister(&self, name: &str) -> Result<()> {
        let mut fams = self.families.write();
        let fam = fams.by_name.remove(name).ok_or(Error::UnknownMetric)?;
        fams.claims.retain(|_, owner| **owner != *name);
        let t = fam.table.read();
        let mut slab = self.slab.write();
        for s in &t.list {
            slab.release(s.handle);
        }
        Ok(())
    }

    /// Calls `f` on every family, sorted by name, under a read lock.
    pub fn for_each_family(&self, mut f: impl FnMut(&Family)) {
        for fam in self.families.read().by_name.values() {
            f(fam);
        }
    }

    /// The series with these label values, created (at zero, or `start`) if absent.
    /// `params` overrides the family's buckets or quantiles for a new series only.
    pub fn get_or_create<S: AsRef<str>>(
        &self,
        name: &str,
        labels: &[S],
        params: Option<&Params>,
    ) -> Result<Arc<Series>> {
        let fam = self.family(name)?;
        self.get_or_create_in(&fam, labels, params)
    }

    /// [`Registry::get_or_create`] for a family already in hand (no second family lookup,
    /// so it is safe to call inside [`Registry::with_family`]).
    pub fn get_or_create_in<S: AsRef<str>>(&self, fam: &Family, labels: &[S], params: Option<&Params>) -> Result<Arc<Series>> {
        if labels.len() != fam.label_names.len() {
            return Err(Error::LabelCount);
        }
        if let Some(p) = params {
            if !p.fits(fam.mtype) {
                return Err(Error::InvalidParams);
            }
        }
        let hash = hash_labels(labels);
        {
            let t = fam.table.read();
            if let Some(i) = t.find(labels, hash) {
                return Ok(t.list[i].clone());
            }
            // Refused under the read lock: a cardinality flood must not queue writers
            // in front of every scrape and lookup of the family.
            if t.list.len() >= fam.series_limit {
                fam.limit_hits.fetch_add(1, Relaxed);
                return Err(Error::SeriesLimit);
            }
        }
        self.create_series(fam, labels, hash, params)
    }

    fn create_series<S: AsRef<str>>(
        &self,
        fam: &Family,
        labels: &[S],
        hash: u64,
        params: Option<&Params>,
    ) -> Result<Arc<Series>> {
        let mut t = fam.table.write();
        // Another thread may have created it between our read and write locks.
        if let Some(i) = t.find(labels, hash) {
            return Ok(t.list[i].clone());
        }
        if t.list.len() >= fam.series_limit {
            fam.limit_hits.fetch_add(1, Relaxed);
            return Err(Error::SeriesLimit);
        }
        let mut label_text = String::new();
        for (i, (n, v)) in fam.label_names.iter().zip(labels).enumerate() {
            if i > 0 {
                label_text.push(',');
            }
            label_text.push_str(n);
            label_text.push_str("=\"");
            escape_label_value(&mut label_text, v.as_ref());
            label_text.push('"');
        }
        let mut slab = self.slab.write();
        let handle = slab.reserve();
        let series = Arc::new(Series {
            labels: labels.iter().map(|s| Box::<str>::from(s.as_ref())).collect(),
            label_text: label_text.into(),
            hash,
            handle,
            created: crate::metric::AtomicF64::new(unix_now()),
            exemplars: Default::default(),
            value: Value::new(fam.mtype, params.unwrap_or(&fam.params)),
        });
        if let Some(slot) = slab.slots.get_mut((handle & 0xffff_ffff) as usize) {
            slot.1 = Some(series.clone());
        }
        t.insert(series.clone());
        Ok(series)
    }

    /// Removes one series; its handle stops working.
    pub fn remove_series<S: AsRef<str>>(&self, name: &str, labels: &[S]) -> Result<()> {
        let fam = self.family(name)?;
        if labels.len() != fam.label_names.len() {
            return Err(Error::LabelCount);
        }
        let mut t = fam.table.write();
        let i = t.find(labels, hash_labels(labels)).ok_or(Error::UnknownSeries)?;
        let s = t.remove_at(i);
        self.slab.write().release(s.handle);
        Ok(())
    }

    /// Runs `f` on the series behind a handle.
    #[inline]
    pub fn with_handle<R>(&self, handle: u64, f: impl FnOnce(&Series) -> R) -> Result<R> {
        let slab = self.slab.read();
        slab.get(handle).map(|s| f(s)).ok_or(Error::UnknownSeries)
    }

    pub fn by_handle(&self, handle: u64) -> Result<Arc<Series>> {
        self.slab.read().get(handle).cloned().ok_or(Error::UnknownSeries)
    }

    /// Gives an existing series other buckets or quantiles, keeping its handle, when
    /// nothing has been recorded in it and nothing outside the registry holds it: KX's
    /// `.prom.addmetric[m;();params;…]` configures the series of an unlabelled metric,
    /// which exists from definition. Otherwise `ParamsFixed`, and nothing changes.
    pub fn reconfigure_series<S: AsRef<str>>(&self, fam: &Family, labels: &[S], params: &Params) -> Result<Arc<Series>> {
        if !params.fits(fam.mtype) {
            return Err(Error::InvalidParams);
        }
        let hash = hash_labels(labels);
        let mut t = fam.table.write();
        let i = t.find(labels, hash).ok_or(Error::UnknownSeries)?;
        let mut slab = self.slab.write();
        let old = &t.list[i];
        let untouched = match &old.value {
            Value::Histogram(h) => h.count_sum().0 == 0,
            Value::Summary(s) => s.count_sum().0 == 0,
            _ => false,
        };
        // The table and the slab hold one reference each; with both locks held no other
        // can be taken, so a third means someone (the default metrics, a thread in an
        // update) would keep updating the replaced series.
        if !untouched || Arc::strong_count(old) > 2 {
            return Err(Error::ParamsFixed);
        }
        let new = Arc::new(Series {
            labels: old.labels.clone(),
            label_text: old.label_text.clone(),
            hash: old.hash,
            handle: old.handle,
            created: crate::metric::AtomicF64::new(unix_now()),
            exemplars: Default::default(),
            value: Value::new(fam.mtype, params),
        });
        if let Some(slot) = slab.slots.get_mut((old.handle & 0xffff_ffff) as usize) {
            slot.1 = Some(new.clone());
        }
        t.list[i] = new.clone();
        Ok(new)
    }

    /// Number of families and of series.
    pub fn counts(&self) -> (usize, usize) {
        let fams = self.families.read();
        let series = fams.by_name.values().map(|f| f.len()).sum();
        (fams.by_name.len(), series)
    }
}

/// Names a family exposes in either format, for collision checks.
fn claimed_names(name: &str, base: &str, t: MetricType) -> Vec<String> {
    let suffixes: &[&str] = match t {
        MetricType::Counter => &["", "_total", "_created"],
        MetricType::Gauge => &[""],
        MetricType::Histogram => &["", "_bucket", "_count", "_sum", "_created"],
        MetricType::Summary => &["", "_count", "_sum", "_created"],
        MetricType::Info => &["", "_info"],
    };
    let mut v: Vec<String> = suffixes.iter().map(|s| format!("{base}{s}")).collect();
    if !v.iter().any(|c| c == name) {
        v.push(name.to_string());
    }
    v
}

/// The process-wide registry the q exports and the HTTP listener share. It starts with
/// `qprom_build_info`, so that every scrape says which build of the library a process runs.
pub fn global() -> &'static Arc<Registry> {
    static GLOBAL: std::sync::OnceLock<Arc<Registry>> = std::sync::OnceLock::new();
    GLOBAL.get_or_init(|| {
        let reg = Registry::new();
        // Cannot fail on an empty registry with these constant names; a failure would only
        // lose the info family, never the registry.
        let _ = register_build_info(&reg);
        Arc::new(reg)
    })
}

/// `qprom_build_info{version,revision,target} 1`: the crate version, the git revision it
/// was built from (`unknown` outside a git checkout) and the Rust target triple (set by
/// build.rs), as Go programs' `*_build_info`.
pub const BUILD_INFO: &str = "qprom_build_info";

pub fn register_build_info(reg: &Registry) -> Result<Arc<Series>> {
    let desc = FamilyDesc::new(
        BUILD_INFO,
        MetricType::Info,
        "The qprom library this process runs: version, git revision, Rust target.",
        &["version", "revision", "target"],
    );
    reg.register(&desc)?;
    reg.get_or_create(BUILD_INFO, &[env!("CARGO_PKG_VERSION"), env!("QPROM_REVISION"), env!("QPROM_TARGET")], None)
}

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn validate_metric_name(s: &str) -> Result<()> {
    let b = s.as_bytes();
    let ok = matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidMetricName)
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `_` (OpenMetrics 1.0: "Label names
/// beginning with underscores are RESERVED"; Prometheus itself reserves `__`).
pub fn validate_label_name(s: &str) -> Result<()> {
    let b = s.as_bytes();
    let ok = matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if !ok {
        return Err(Error::InvalidLabelName);
    }
    if s.starts_with('_') {
        return Err(Error::ReservedLabelName);
    }
    Ok(())
}

/// Hash of a label-value tuple; lengths are mixed in so that shifting bytes between
/// values changes the hash (equality is still checked on every lookup).
#[inline]
pub fn hash_labels<S: AsRef<str>>(labels: &[S]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for l in labels {
        let b = l.as_ref().as_bytes();
        h = mix(h ^ b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = mix(h ^ u64::from_le_bytes(w));
        }
        // The tail in fixed-size loads (a variable-length copy would be a memcpy call):
        // two overlapping 4-byte reads, or three single bytes when shorter.
        let r = chunks.remainder();
        let n = r.len();
        if n >= 4 {
            let head = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as u64;
            let tail = u32::from_le_bytes([r[n - 4], r[n - 3], r[n - 2], r[n - 1]]) as u64;
            h = mix(h ^ head ^ (tail << 32));
        } else if n > 0 {
            let w = r[0] as u64 | (r[n / 2] as u64) << 8 | (r[n - 1] as u64) << 16;
            h = mix(h ^ w);
        }
    }
    h
}

#[inline]
fn mix(x: u64) -> u64 {
    let m = (x as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (m as u64) ^ ((m >> 64) as u64)
}

/// The map keys are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
