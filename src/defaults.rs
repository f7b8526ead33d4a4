//! The default kdb+ instrumentation: families, and the per-event updates the wrapped
//! `.z` handlers make. One export call per event; series are looked up once, at init.
//!
//! Two naming modes: `standard` (labelled, lint-clean families) and `kx` (the 38 family
//! names and types of KX's q-only exporter, for existing dashboards).

use crate::error::{Error, Result};
use crate::metric::{validate_buckets, MetricType, Params, SummaryParams};
use crate::registry::{FamilyDesc, Registry, Series};
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
    requests: Arc<Series>,
    errors: Arc<Series>,
    histogram: Arc<Series>,
    /// KX mode only: its summaries.
    summary: Option<Arc<Series>>,
}

/// The registered default series.
#[derive(Debug)]
pub struct Defaults {
    naming: Naming,
    handlers: Vec<PerHandler>,
    opened: [Arc<Series>; 2],
    closed: [Arc<Series>; 2],
    /// Open connections: standard mode has one per protocol; KX mode one in total.
    open: [Arc<Series>; 2],
    memory: Vec<(&'static str, Arc<Series>)>,
    queue: Option<Arc<Series>>,
}

fn fam(reg: &Registry, name: &str, t: MetricType, help: &str, labels: &[&str], params: Option<Params>) -> Result<()> {
    let mut d = FamilyDesc::new(name, t, help, labels);
    d.params = params;
    reg.register(&d).map(drop)
}

impl Defaults {
    /// Registers the default families (idempotent: a second call finds the same series).
    /// `buckets`: request-duration bounds (standard mode); `summary`: quantiles and window
    /// of KX mode's summaries (KX's .25 .5 .75, over 10 minutes, when None).
    pub fn register(
        reg: &Registry,
        naming: Naming,
        buckets: Option<&[f64]>,
        summary: Option<SummaryParams>,
        info: &Info,
    ) -> Result<Defaults> {
        let buckets = validate_buckets(buckets.unwrap_or(&DURATION_BUCKETS))?;
        match naming {
            Naming::Standard => Self::standard(reg, buckets, info),
            Naming::Kx => Self::kx(reg, summary, info),
        }
    }

    fn standard(reg: &Registry, buckets: Arc<[f64]>, info: &Info) -> Result<Defaults> {
        use MetricType::*;
        let none: [&str; 0] = [];
        fam(reg, "kdb_info", Info, "kdb+ process: release date, version, OS, cores, licence expiry.", &["release", "version", "os", "cores", "licence_expiry"], None)?;
        reg.get_or_create("kdb_info", &[&info.release, &info.version, &info.os, &info.cores, &info.licence_expiry], None)?;
        fam(reg, "kdb_requests_total", Counter, "Requests handled, by .z handler.", &["handler"], None)?;
        fam(reg, "kdb_request_errors_total", Counter, "Requests whose handler signalled an error, by .z handler.", &["handler"], None)?;
        fam(reg, "kdb_request_duration_seconds", Histogram, "Time spent in the .z handler, by handler.", &["handler"], Some(Params::Buckets(buckets)))?;
        let mut handlers = Vec::new();
        for h in Handler::ALL {
            handlers.push(PerHandler {
                requests: reg.get_or_create("kdb_requests_total", &[h.label()], None)?,
                errors: reg.get_or_create("kdb_request_errors_total", &[h.label()], None)?,
                histogram: reg.get_or_create("kdb_request_duration_seconds", &[h.label()], None)?,
                summary: None,
            });
        }
        fam(reg, "kdb_connections_opened_total", Counter, "Connections opened, by protocol (ipc, ws).", &["protocol"], None)?;
        fam(reg, "kdb_connections_closed_total", Counter, "Connections closed, by protocol (ipc, ws).", &["protocol"], None)?;
        fam(reg, "kdb_connections_open", Gauge, "Connections open now, by protocol (ipc, ws).", &["protocol"], None)?;
        let by_proto = |name: &str| -> Result<[Arc<Series>; 2]> {
            Ok([reg.get_or_create(name, &["ipc"], None)?, reg.get_or_create(name, &["ws"], None)?])
        };
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
            fam(reg, name, Gauge, help, &none, None)?;
            memory.push((key, reg.get_or_create(name, &none, None)?));
        }
        fam(reg, "kdb_output_queue_bytes", Gauge, "Bytes waiting in IPC output queues (sum of .z.W).", &none, None)?;
        Ok(Defaults {
            naming: Naming::Standard,
            handlers,
            opened: by_proto("kdb_connections_opened_total")?,
            closed: by_proto("kdb_connections_closed_total")?,
            open: by_proto("kdb_connections_open")?,
            memory,
            queue: Some(reg.get_or_create("kdb_output_queue_bytes", &none, None)?),
        })
    }

    /// KX's exporter.q families, names and types unchanged (summaries over .25 .5 .75,
    /// histograms over .25 .5 1 5 10), with values computed correctly.
    fn kx(reg: &Registry, summary: Option<SummaryParams>, info: &Info) -> Result<Defaults> {
        use MetricType::*;
        let none: [&str; 0] = [];
        let g = |name: &str, t: MetricType, help: &str| -> Result<Arc<Series>> {
            fam(reg, name, t, help, &none, None)?;
            reg.get_or_create(name, &none, None)
        };
        let infokeys = ["release_date", "release_version", "os_version", "process_cores", "license_expiry_date"];
        fam(reg, "kdb_info", Gauge, "process information", &infokeys, None)?;
        reg.get_or_create("kdb_info", &[&info.release, &info.version, &info.os, &info.cores, &info.licence_expiry], None)?
            .set(1.0)?;
        let memory = vec![
            ("used", g("memory_usage_bytes", Gauge, "memory allocated")?),
            ("heap", g("memory_heap_bytes", Gauge, "memory available in the heap")?),
            ("peak", g("memory_heap_peak_bytes", Counter, "maximum heap size so far")?),
            ("wmax", g("memory_heap_limit_bytes", Gauge, "limit on thread heap size")?),
            ("mmap", g("memory_mapped_bytes", Gauge, "mapped memory")?),
            ("mphy", g("memory_physical_bytes", Gauge, "physical memory available")?),
            ("syms", g("kdb_syms_total", Counter, "number of symbols")?),
            ("symw", g("kdb_syms_memory_bytes", Counter, "memory use of symbols")?),
        ];
        let opened = [g("kdb_ipc_opened_total", Counter, "number of ipc sockets opened")?, g("kdb_ws_opened_total", Counter, "number of websockets opened")?];
        let closed = [g("kdb_ipc_closed_total", Counter, "number of ipc sockets closed")?, g("kdb_ws_closed_total", Counter, "number of websockets closed")?];
        let handles = g("kdb_handles_total", Gauge, "number of open handles (ipc and websocket)")?;
        let summary = Params::Summary(match summary {
            Some(p) => p,
            None => SummaryParams::new(&[0.25, 0.5, 0.75], Duration::from_secs(600), 5)?,
        });
        let hist = Params::Buckets(validate_buckets(&[0.25, 0.5, 1.0, 5.0, 10.0])?);
        let mut handlers = Vec::new();
        for h in Handler::ALL {
            let w = h.kx_word();
            let requests = g(&format!("kdb_{w}_total"), Counter, &format!("number of {}", h.kx_help()))?;
            let errors = g(&format!("kdb_{w}_err_total"), Counter, &format!("number of errors from {}", h.kx_help()))?;
            let sname = format!("kdb_{w}_summary_seconds");
            fam(reg, &sname, Summary, &format!("duration of {}", h.kx_help()), &none, Some(summary.clone()))?;
            let hname = format!("kdb_{w}_histogram_seconds");
            fam(reg, &hname, Histogram, &format!("duration of {}", h.kx_help()), &none, Some(hist.clone()))?;
            handlers.push(PerHandler {
                requests,
                errors,
                histogram: reg.get_or_create(&hname, &none, None)?,
                summary: Some(reg.get_or_create(&sname, &none, None)?),
            });
        }
        Ok(Defaults { naming: Naming::Kx, handlers, opened, closed, open: [handles.clone(), handles], memory, queue: None })
    }

    pub fn naming(&self) -> Naming {
        self.naming
    }

    /// One handler call finished: count it (and its error) and observe its duration.
    #[inline]
    pub fn request(&self, h: Handler, seconds: f64, failed: bool) {
        let Some(p) = self.handlers.get(h as usize) else { return };
        let _ = p.requests.inc(1.0);
        if failed {
            let _ = p.errors.inc(1.0);
        }
        let secs = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        let _ = p.histogram.observe(secs);
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
        if opened {
            let _ = self.opened[i].inc(1.0);
            let _ = self.open[i].inc(1.0);
        } else {
            let _ = self.closed[i].inc(1.0);
            // Handles opened before init were never counted: never go below zero.
            if self.open[i].get() >= 1.0 {
                let _ = self.open[i].dec(1.0);
            }
        }
    }

    /// Sets the open-connection gauges (from q's view of its handles, at init).
    pub fn set_open(&self, ipc: f64, ws: f64) {
        let _ = self.open[0].set(ipc);
        if self.naming == Naming::Standard {
            let _ = self.open[1].set(ws);
        } else {
            let _ = self.open[0].set(ipc + ws);
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
        Defaults::register(&r, Naming::Kx, None, None, &info()).unwrap();
        let mut n = 0;
        r.for_each_family(|_| n += 1);
        assert_eq!(n, 38);
        assert_eq!(r.family("memory_heap_peak_bytes").unwrap().metric_type(), MetricType::Counter);
        assert_eq!(r.family("kdb_ts_summary_seconds").unwrap().metric_type(), MetricType::Summary);
        assert_eq!(r.family("kdb_http_post_histogram_seconds").unwrap().metric_type(), MetricType::Histogram);
    }

    #[test]
    fn requests_count_errors_and_durations() {
        let r = Registry::new();
        let d = Defaults::register(&r, Naming::Standard, None, None, &info()).unwrap();
        d.request(Handler::Pg, 0.002, false);
        d.request(Handler::Pg, 0.5, true);
        d.request(Handler::Ts, -1.0, false);
        let get = |n: &str, l: &str| r.family(n).unwrap().get(&[l]).unwrap().get();
        assert_eq!(get("kdb_requests_total", "sync"), 2.0);
        assert_eq!(get("kdb_request_errors_total", "sync"), 1.0);
        assert_eq!(get("kdb_request_duration_seconds", "sync"), 0.502);
        assert_eq!(get("kdb_request_duration_seconds", "timer"), 0.0, "negative durations clamp to 0");
        // Idempotent: registering again finds the same series.
        let d2 = Defaults::register(&r, Naming::Standard, None, None, &info()).unwrap();
        d2.request(Handler::Pg, 0.0, false);
        assert_eq!(get("kdb_requests_total", "sync"), 3.0);
    }

    #[test]
    fn connections_and_memory_by_key() {
        let r = Registry::new();
        let d = Defaults::register(&r, Naming::Standard, None, None, &info()).unwrap();
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
