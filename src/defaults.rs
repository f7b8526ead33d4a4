//! The default kdb+ instrumentation: families, and the per-event updates the wrapped
//! `.z` handlers make. One export call per event; series are looked up once, at init.
//!
//! Two naming modes: `standard` (labelled, lint-clean families) and `kx` (the 38 family
//! names and types of KX's q-only exporter, for existing dashboards).

use crate::error::{Error, Result};
use crate::metric::{validate_buckets, Exemplar, MetricType, Params, SummaryParams};
use crate::registry::{Family, FamilyDesc, Registry, Series};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Request-duration buckets suited to q: 100 µs to 30 s.
pub const DURATION_BUCKETS: [f64; 17] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The wrapped request handlers, in the order of [`Handler::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Pg,
    Ps,
    Ph,
    Pp,
    Ws,
    Ts,
}

impl Handler {
    pub const ALL: [Handler; 6] = [Handler::Pg, Handler::Ps, Handler::Ph, Handler::Pp, Handler::Ws, Handler::Ts];

    pub fn parse(s: &str) -> Option<Handler> {
        Some(match s {
            "pg" => Handler::Pg,
            "ps" => Handler::Ps,
            "ph" => Handler::Ph,
            "pp" => Handler::Pp,
            "ws" => Handler::Ws,
            "ts" => Handler::Ts,
            _ => return None,
        })
    }

    /// Label value in standard mode.
    pub fn label(self) -> &'static str {
        match self {
            Handler::Pg => "sync",
            Handler::Ps => "async",
            Handler::Ph => "http_get",
            Handler::Pp => "http_post",
            Handler::Ws => "websocket",
            Handler::Ts => "timer",
        }
    }

    /// The word in KX's family names (`kdb_<word>_total`, …).
    fn kx_word(self) -> &'static str {
        match self {
            Handler::Pg => "sync",
            Handler::Ps => "async",
            Handler::Ph => "http_get",
            Handler::Pp => "http_post",
            Handler::Ws => "ws",
            Handler::Ts => "ts",
        }
    }

    fn kx_help(self) -> &'static str {
        match self {
            Handler::Pg => "sync requests",
            Handler::Ps => "async requests",
            Handler::Ph => "http get requests",
            Handler::Pp => "http post requests",
            Handler::Ws => "websocket messages",
            Handler::Ts => "timer calls",
        }
    }
}

/// Connection events (`.z.po`, `.z.pc`, `.z.wo`, `.z.wc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    Po,
    Pc,
    Wo,
    Wc,
}

impl Conn {
    pub fn parse(s: &str) -> Option<Conn> {
        Some(match s {
            "po" => Conn::Po,
            "pc" => Conn::Pc,
            "wo" => Conn::Wo,
            "wc" => Conn::Wc,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    Standard,
    Kx,
}

/// Values describing the q process, for `kdb_info`.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub release: String,
    pub version: String,
    pub os: String,
    pub cores: String,
    pub licence_expiry: String,
}

#[derive(Debug)]
struct PerHandler {
    requests: Option<Arc<Series>>,
    errors: Option<Arc<Series>>,
    histogram: Option<Arc<Series>>,
    /// KX mode only: its summaries.
    summary: Option<Arc<Series>>,
}

/// The registered default series. A default family the user defined first (KX's
/// exporter.q defines all 38 of the `kx` naming, and `kdb_info` as a gauge) is the user's:
/// it is neither registered nor updated here, so the user's hooks alone move it.
#[derive(Debug)]
pub struct Defaults {
    naming: Naming,
    handlers: Vec<PerHandler>,
    opened: [Option<Arc<Series>>; 2],
    closed: [Option<Arc<Series>>; 2],
    /// Open connections: standard mode has one per protocol; KX mode one in total.
    open: [Option<Arc<Series>>; 2],
    memory: Vec<(&'static str, Arc<Series>)>,
    queue: Option<Arc<Series>>,
    /// Every family a registration of the defaults created (this one and earlier ones),
    /// so that registering again (init after stop) knows them from the user's.
    owned: Vec<Arc<Family>>,
    /// Default families left to the user, in registration order.
    skipped: Vec<String>,
}

/// Registration that yields to the user's families.
struct Owner<'a> {
    reg: &'a Registry,
    owned: Vec<Arc<Family>>,
    skipped: Vec<String>,
}

impl Owner<'_> {
    /// Registers a default family; false when the name is the user's: defined before by
    /// anyone but the defaults, or colliding with a user family's sample names.
    fn fam(&mut self, name: &str, t: MetricType, help: &str, labels: &[&str], params: Option<Params>) -> Result<bool> {
        let mut d = FamilyDesc::new(name, t, help, labels);
        d.params = params;
        if let Ok(f) = self.reg.family(name) {
            if self.owned.iter().any(|o| Arc::ptr_eq(o, &f)) {
                // Ours, from an earlier registration: the same family, or (another naming
                // in the same process) a type or label conflict, refused.
                return self.reg.register(&d).map(|_| true);
            }
            self.skipped.push(name.to_string());
            return Ok(false);
        }
        match self.reg.register(&d) {
            Ok(f) => {
                self.owned.push(f);
                Ok(true)
            }
            // Lost a race with the user's definition, or their family claims our samples.
            Err(Error::NameCollision | Error::TypeConflict | Error::LabelConflict) => {
                self.skipped.push(name.to_string());
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The series of a family of ours (None for the user's).
    fn series(&self, name: &str, labels: &[&str]) -> Result<Option<Arc<Series>>> {
        if self.skipped.iter().any(|s| s == name) {
            return Ok(None);
        }
        self.reg.get_or_create(name, labels, None).map(Some)
    }

    /// An unlabelled family and its series, None when the user's.
    fn one(&mut self, name: &str, t: MetricType, help: &str) -> Result<Option<Arc<Series>>> {
        if self.fam(name, t, help, &[], None)? {
            self.series(name, &[])
        } else {
            Ok(None)
        }
    }
}

impl Defaults {
    /// Registers the default families (idempotent: a second call finds the same series).
    /// `buckets`: request-duration bounds (standard mode); `summary`: quantiles and window
    /// of KX mode's summaries (KX's .25 .5 .75, over 10 minutes, when None). `prev`: the
    /// defaults registered before, if any (their families are ours, not the user's).
    pub fn register(
        reg: &Registry,
        naming: Naming,
        buckets: Option<&[f64]>,
        summary: Option<SummaryParams>,
        native: Option<crate::metric::NativeParams>,
        info: &Info,
        prev: Option<&Defaults>,
    ) -> Result<Defaults> {
        let buckets = validate_buckets(buckets.unwrap_or(&DURATION_BUCKETS))?;
        // `nativeHistograms`: the request histogram keeps its classic buckets too.
        let duration = match native {
            Some(n) => Params::Native(buckets, n),
            None => Params::Buckets(buckets),
        };
        let summary = Params::Summary(match summary {
            Some(p) => p,
            None => SummaryParams::new(&[0.25, 0.5, 0.75], Duration::from_secs(600), 5)?,
        });
        let mut o = Owner { reg, owned: prev.map(|p| p.owned.clone()).unwrap_or_default(), skipped: Vec::new() };
        let mut d = match naming {
            Naming::Standard => Self::standard(&mut o, duration, info)?,
            Naming::Kx => Self::kx(&mut o, summary, info)?,
        };
        // Only what is still registered: a family removed since (`.prom.del`) is not kept
        // alive here, and a family defined again under its name is whoever defined it.
        d.owned = o.owned.into_iter().filter(|f| reg.family(f.name()).is_ok_and(|g| Arc::ptr_eq(f, &g))).collect();
        d.skipped = o.skipped;
        Ok(d)
    }

    /// Default families left to the user (defined by them before registration).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    fn standard(o: &mut Owner, duration: Params, info: &Info) -> Result<Defaults> {
        use MetricType::*;
        if o.fam("kdb_info", Info, "kdb+ process: release date, version, OS, cores, licence expiry.", &["release", "version", "os", "cores", "licence_expiry"], None)? {
            o.series("kdb_info", &[&info.release, &info.version, &info.os, &info.cores, &info.licence_expiry])?;
        }
        o.fam("kdb_requests_total", Counter, "Requests handled, by .z handler.", &["handler"], None)?;
        o.fam("kdb_request_errors_total", Counter, "Requests whose handler signalled an error, by .z handler.", &["handler"], None)?;
        o.fam("kdb_request_duration_seconds", Histogram, "Time spent in the .z handler, by handler.", &["handler"], Some(duration))?;
        let mut handlers = Vec::new();
        for h in Handler::ALL {
            handlers.push(PerHandler {
                requests: o.series("kdb_requests_total", &[h.label()])?,
                errors: o.series("kdb_request_errors_total", &[h.label()])?,
                histogram: o.series("kdb_request_duration_seconds", &[h.label()])?,
                summary: None,
            });
        }
        let mut by_proto = |name: &str, t: MetricType, help: &str| -> Result<[Option<Arc<Series>>; 2]> {
            o.fam(name, t, help, &["protocol"], None)?;
            Ok([o.series(name, &["ipc"])?, o.series(name, &["ws"])?])
        };
        let opened = by_proto("kdb_connections_opened_total", Counter, "Connections opened, by protocol (ipc, ws).")?;
        let closed = by_proto("kdb_connections_closed_total", Counter, "Connections closed, by protocol (ipc, ws).")?;
        let open = by_proto("kdb_connections_open", Gauge, "Connections open now, by protocol (ipc, ws).")?;
        let memory_families: [(&'static str, &str, &str); 8] = [
            ("used", "kdb_memory_used_bytes", "Heap memory in use (.Q.w used)."),
            ("heap", "kdb_memory_heap_bytes", "Heap memory allocated from the OS (.Q.w heap)."),
            ("peak", "kdb_memory_heap_peak_bytes", "Largest heap so far (.Q.w peak)."),
            ("wmax", "kdb_memory_heap_limit_bytes", "Heap limit set by -w, 0 for none (.Q.w wmax)."),
            ("mmap", "kdb_memory_mapped_bytes", "Memory-mapped data (.Q.w mmap)."),
            ("mphy", "kdb_memory_physical_bytes", "Physical memory of the host (.Q.w mphy)."),
            ("syms", "kdb_symbols", "Interned symbols (.Q.w syms)."),
            ("symw", "kdb_symbol_memory_bytes", "Memory used by interned symbols (.Q.w symw)."),
        ];
        let mut memory = Vec::new();
        for (key, name, help) in memory_families {
            if let Some(s) = o.one(name, Gauge, help)? {
                memory.push((key, s));
            }
        }
        let queue = o.one("kdb_output_queue_bytes", Gauge, "Bytes waiting in IPC output queues (sum of .z.W).")?;
        Ok(Defaults { naming: Naming::Standard, handlers, opened, closed, open, memory, queue, owned: Vec::new(), skipped: Vec::new() })
    }

    /// KX's exporter.q families, names and types (summaries over .25 .5 .75, histograms
    /// over .25 .5 1 5 10), with values computed correctly. `memory_heap_peak_bytes` is a
    /// gauge, as in KX's exporter.q since 1.0.1 (#30: a largest-so-far is a level, not a
    /// count of events); 1.0.1's script, which defines it as a counter, keeps its own.
    fn kx(o: &mut Owner, summary: Params, info: &Info) -> Result<Defaults> {
        use MetricType::*;
        let infokeys = ["release_date", "release_version", "os_version", "process_cores", "license_expiry_date"];
        if o.fam("kdb_info", Gauge, "process information", &infokeys, None)? {
            if let Some(s) = o.series("kdb_info", &[&info.release, &info.version, &info.os, &info.cores, &info.licence_expiry])? {
                s.set(1.0)?;
            }
        }
        let mut memory = Vec::new();
        for (key, name, t, help) in [
            ("used", "memory_usage_bytes", Gauge, "memory allocated"),
            ("heap", "memory_heap_bytes", Gauge, "memory available in the heap"),
            ("peak", "memory_heap_peak_bytes", Gauge, "maximum heap size so far"),
            ("wmax", "memory_heap_limit_bytes", Gauge, "limit on thread heap size"),
            ("mmap", "memory_mapped_bytes", Gauge, "mapped memory"),
            ("mphy", "memory_physical_bytes", Gauge, "physical memory available"),
            ("syms", "kdb_syms_total", Counter, "number of symbols"),
            ("symw", "kdb_syms_memory_bytes", Counter, "memory use of symbols"),
        ] {
            if let Some(s) = o.one(name, t, help)? {
                memory.push((key, s));
            }
        }
        let opened = [o.one("kdb_ipc_opened_total", Counter, "number of ipc sockets opened")?, o.one("kdb_ws_opened_total", Counter, "number of websockets opened")?];
        let closed = [o.one("kdb_ipc_closed_total", Counter, "number of ipc sockets closed")?, o.one("kdb_ws_closed_total", Counter, "number of websockets closed")?];
        let handles = o.one("kdb_handles_total", Gauge, "number of open handles (ipc and websocket)")?;
        let hist = Params::Buckets(validate_buckets(&[0.25, 0.5, 1.0, 5.0, 10.0])?);
        let mut handlers = Vec::new();
        for h in Handler::ALL {
            let w = h.kx_word();
            let requests = o.one(&format!("kdb_{w}_total"), Counter, &format!("number of {}", h.kx_help()))?;
            let errors = o.one(&format!("kdb_{w}_err_total"), Counter, &format!("number of errors from {}", h.kx_help()))?;
            let sname = format!("kdb_{w}_summary_seconds");
            let summary = match o.fam(&sname, Summary, &format!("duration of {}", h.kx_help()), &[], Some(summary.clone()))? {
                true => o.series(&sname, &[])?,
                false => None,
            };
            let hname = format!("kdb_{w}_histogram_seconds");
            let histogram = match o.fam(&hname, Histogram, &format!("duration of {}", h.kx_help()), &[], Some(hist.clone()))? {
                true => o.series(&hname, &[])?,
                false => None,
            };
            handlers.push(PerHandler { requests, errors, histogram, summary });
        }
        Ok(Defaults {
            naming: Naming::Kx,
            handlers,
            opened,
            closed,
            open: [handles.clone(), handles],
            memory,
            queue: None,
            owned: Vec::new(),
            skipped: Vec::new(),
        })
    }

    pub fn naming(&self) -> Naming {
        self.naming
    }

    /// One handler call finished: count it (and its error) and observe its duration.
    #[inline]
    pub fn request(&self, h: Handler, seconds: f64, failed: bool) {
        self.request_ex(h, seconds, failed, None)
    }

    /// [`Defaults::request`], the duration histogram's observation carrying `ex`.
    #[inline]
    /// `ex` was made with `seconds` (already clamped), so its value is this observation's.
    pub fn request_ex(&self, h: Handler, seconds: f64, failed: bool, ex: Option<&Arc<Exemplar>>) {
        let Some(p) = self.handlers.get(h as usize) else { return };
        if let Some(s) = &p.requests {
            let _ = s.inc(1.0);
        }
        if let (true, Some(s)) = (failed, &p.errors) {
            let _ = s.inc(1.0);
        }
        let secs = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        if let Some(s) = &p.histogram {
            let _ = match ex {
                Some(e) => s.observe_with_exemplar(secs, e.clone()),
                None => s.observe(secs),
            };
        }
        if let Some(s) = &p.summary {
            let _ = s.observe(secs);
        }
    }

    /// A connection opened or closed.
    pub fn connection(&self, c: Conn) {
        let (i, opened) = match c {
            Conn::Po => (0, true),
            Conn::Pc => (0, false),
            Conn::Wo => (1, true),
            Conn::Wc => (1, false),
        };
        let (count, open) = (if opened { &self.opened[i] } else { &self.closed[i] }, &self.open[i]);
        if let Some(s) = count {
            let _ = s.inc(1.0);
        }
        match open {
            Some(s) if opened => {
                let _ = s.inc(1.0);
            }
            // Handles opened before init were never counted: never go below zero.
            Some(s) if s.get() >= 1.0 => {
                let _ = s.dec(1.0);
            }
            _ => {}
        }
    }

    /// Sets the open-connection gauges (from q's view of its handles, at init).
    pub fn set_open(&self, ipc: f64, ws: f64) {
        let set = |s: &Option<Arc<Series>>, v: f64| s.as_ref().map(|s| s.set(v));
        if self.naming == Naming::Standard {
            set(&self.open[0], ipc);
            set(&self.open[1], ws);
        } else {
            set(&self.open[0], ipc + ws);
        }
    }

    /// The on_poll sample: `.Q.w[]` read by key (keys q adds later are ignored) and the
    /// bytes queued for IPC clients.
    pub fn sample(&self, memory: &[(&str, f64)], queue_bytes: Option<f64>) -> Result<()> {
        for (key, v) in memory {
            if let Some((_, s)) = self.memory.iter().find(|(k, _)| k == key) {
                s.set(*v)?;
            }
        }
        if let (Some(q), Some(v)) = (&self.queue, queue_bytes) {
            q.set(v)?;
        }
        Ok(())
    }
}

/// Seconds since q's timestamp `t0` (nanoseconds since 2000.01.01, `.z.p`), now, in
/// 64-bit arithmetic (128-bit conversions are libcalls on this hot path).
pub fn seconds_since_q_timestamp(t0: i64) -> f64 {
    const Q_EPOCH_UNIX_NANOS: i64 = 946_684_800_000_000_000;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
    let now_q = now - Q_EPOCH_UNIX_NANOS;
    now_q.checked_sub(t0).map_or_else(|| now_q as f64 - t0 as f64, |d| d as f64) / 1e9
}

/// Parses `standard` / `kx`.
pub fn parse_naming(s: &str) -> Result<Naming> {
    match s {
        "standard" | "" => Ok(Naming::Standard),
        "kx" => Ok(Naming::Kx),
        _ => Err(Error::ConfigType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Info {
        Info { release: "2024.05.31".into(), version: "4.1".into(), os: "l64".into(), cores: "8".into(), licence_expiry: "2027.01.01".into() }
    }

    #[test]
    fn kx_mode_has_kx_families_and_types() {
        let r = Registry::new();
        Defaults::register(&r, Naming::Kx, None, None, None, &info(), None).unwrap();
        let mut n = 0;
        r.for_each_family(|_| n += 1);
        assert_eq!(n, 38);
        assert_eq!(r.family("memory_heap_peak_bytes").unwrap().metric_type(), MetricType::Gauge);
        assert_eq!(r.family("kdb_ts_summary_seconds").unwrap().metric_type(), MetricType::Summary);
        assert_eq!(r.family("kdb_http_post_histogram_seconds").unwrap().metric_type(), MetricType::Histogram);
    }

    #[test]
    fn requests_count_errors_and_durations() {
        let r = Registry::new();
        let d = Defaults::register(&r, Naming::Standard, None, None, None, &info(), None).unwrap();
        d.request(Handler::Pg, 0.002, false);
        d.request(Handler::Pg, 0.5, true);
        d.request(Handler::Ts, -1.0, false);
        let get = |n: &str, l: &str| r.family(n).unwrap().get(&[l]).unwrap().get();
        assert_eq!(get("kdb_requests_total", "sync"), 2.0);
        assert_eq!(get("kdb_request_errors_total", "sync"), 1.0);
        assert_eq!(get("kdb_request_duration_seconds", "sync"), 0.502);
        assert_eq!(get("kdb_request_duration_seconds", "timer"), 0.0, "negative durations clamp to 0");
        // Idempotent: registering again finds the same series.
        let d2 = Defaults::register(&r, Naming::Standard, None, None, None, &info(), Some(&d)).unwrap();
        d2.request(Handler::Pg, 0.0, false);
        assert_eq!(get("kdb_requests_total", "sync"), 3.0);
    }

    #[test]
    fn the_users_families_are_theirs() {
        // KX's exporter.q 1.0.1 defines kdb_info as a gauge and memory_heap_peak_bytes as a
        // counter before init; a user family whose samples our counter would claim too.
        let r = Registry::new();
        let ik = ["release_date", "release_version", "os_version", "process_cores", "license_expiry_date"];
        r.register(&FamilyDesc::new("kdb_info", MetricType::Gauge, "process information", &ik)).unwrap();
        r.register(&FamilyDesc::new("memory_heap_peak_bytes", MetricType::Counter, "x", &[])).unwrap();
        r.register(&FamilyDesc::new("kdb_sync_total", MetricType::Counter, "x", &[])).unwrap();
        r.register(&FamilyDesc::new("kdb_requests", MetricType::Gauge, "x", &[])).unwrap();
        let d = Defaults::register(&r, Naming::Standard, None, None, None, &info(), None).unwrap();
        assert_eq!(d.skipped(), ["kdb_info", "kdb_requests_total"]);
        assert_eq!(r.family("kdb_info").unwrap().metric_type(), MetricType::Gauge);
        assert!(r.family("kdb_requests_total").is_err());
        d.request(Handler::Pg, 0.1, true); // the families that are ours still move
        assert_eq!(r.family("kdb_request_errors_total").unwrap().get(&["sync"]).unwrap().get(), 1.0);
        // kx naming: every colliding family stays the user's, untouched by our updates
        let k = Defaults::register(&r, Naming::Kx, None, None, None, &info(), Some(&d)).unwrap();
        assert_eq!(k.skipped(), ["kdb_info", "memory_heap_peak_bytes", "kdb_sync_total"]);
        assert_eq!(r.family("memory_heap_peak_bytes").unwrap().metric_type(), MetricType::Counter);
        k.request(Handler::Pg, 0.1, false);
        k.sample(&[("peak", 9.0), ("heap", 8.0)], None).unwrap();
        let one = |n: &str| r.family(n).unwrap().get(&[] as &[&str]).unwrap().get();
        assert_eq!(one("kdb_sync_total"), 0.0, "the user's counter is not ours to move");
        assert_eq!(one("memory_heap_peak_bytes"), 0.0);
        assert_eq!(one("memory_heap_bytes"), 8.0);
        assert_eq!(one("kdb_sync_err_total"), 0.0);
        // registering again (init after stop) knows its own families from the user's
        let k2 = Defaults::register(&r, Naming::Kx, None, None, None, &info(), Some(&k)).unwrap();
        assert_eq!(k2.skipped(), k.skipped());
        k2.request(Handler::Pg, 0.1, true);
        assert_eq!(one("kdb_sync_err_total"), 1.0);
        // one of ours removed and defined again by the user: theirs from then on
        r.unregister("kdb_ws_total").unwrap();
        r.register(&FamilyDesc::new("kdb_ws_total", MetricType::Gauge, "mine", &[])).unwrap();
        let k3 = Defaults::register(&r, Naming::Kx, None, None, None, &info(), Some(&k2)).unwrap();
        assert!(k3.skipped().iter().any(|s| s == "kdb_ws_total"));
        assert_eq!(k3.owned.len(), k2.owned.len() - 1, "the removed family is not kept");
    }

    #[test]
    fn connections_and_memory_by_key() {
        let r = Registry::new();
        let d = Defaults::register(&r, Naming::Standard, None, None, None, &info(), None).unwrap();
        d.connection(Conn::Pc); // opened before init: stays at 0
        d.connection(Conn::Po);
        d.connection(Conn::Wo);
        d.connection(Conn::Wc);
        let get = |n: &str, l: &str| r.family(n).unwrap().get(&[l]).unwrap().get();
        assert_eq!(get("kdb_connections_open", "ipc"), 1.0);
        assert_eq!(get("kdb_connections_open", "ws"), 0.0);
        assert_eq!(get("kdb_connections_closed_total", "ipc"), 1.0);
        d.sample(&[("newkey", 5.0), ("heap", 64.0), ("used", 10.0)], Some(7.0)).unwrap();
        let one = |n: &str| r.family(n).unwrap().get(&[] as &[&str]).unwrap().get();
        assert_eq!(one("kdb_memory_heap_bytes"), 64.0);
        assert_eq!(one("kdb_memory_used_bytes"), 10.0);
        assert_eq!(one("kdb_output_queue_bytes"), 7.0);
    }

    #[test]
    fn q_timestamps() {
        // .z.p of "now" gives ~0 seconds.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64 - 946_684_800_000_000_000;
        let s = seconds_since_q_timestamp(now);
        assert!((0.0..1.0).contains(&s), "{s}");
    }
}
