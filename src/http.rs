//! The scrape listener: a small HTTP/1.1 server on its own threads, std only.
//!
//! Threading model: one acceptor thread blocks in `accept()` and queues connections
//! (at most [`QUEUE_CAP`]; beyond that a connection is closed at once); a fixed pool of
//! `workers` threads each serves one connection at a time: read the request head under a
//! deadline, answer, close (`Connection: close`, so an idle keep-alive client never pins
//! a worker). A slow or silent client holds one worker for at most `timeout`, never the
//! others. Scrapes in flight are limited separately (`max_in_flight`, default one less
//! than the workers) so that a worker stays free to answer the next scrape with an
//! immediate 503 rather than leaving it queued, as promhttp's MaxRequestsInFlight does.
//! Nothing here touches q: the optional [`PollHook`] is how q's main thread gets asked.
//!
//! Why not tiny_http (0.12, the latest): its accept thread and per-connection threads are
//! detached (no join, idle ones linger 5 s), it spawns one thread per connection without
//! bound, reads header lines into an unbounded Vec, and sets no read timeout. In a
//! database process that is a memory and thread leak a single client can trigger, and
//! `stop` could neither join nor free the port synchronously.
//!
//! SIGPIPE: q does not ignore SIGPIPE (only Rust *binaries* do), so a write to a peer
//! that has gone must not raise it. Socket writes here go through `Write for &TcpStream`
//! → std's `TcpStream::write` → `send(fd, …, MSG_NOSIGNAL)` on Linux. Never use
//! `write_vectored` on a socket: std implements it with `writev`, which does raise SIGPIPE.

use crate::error::Error;
use crate::expo::{Encoder, Format};
use crate::metric::MetricType;
use crate::process::{self, ProcessMetrics};
use crate::registry::{Family, FamilyDesc, Registry, Series};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::ffi::CStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Accepted connections waiting for a worker; more are closed at once.
pub const QUEUE_CAP: usize = 64;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// An IP literal or host name; default `0.0.0.0` (all IPv4 interfaces).
    pub bind: String,
    /// 0 picks a free port: see [`Server::local_port`].
    pub port: u16,
    /// The metrics path, default `/metrics`: `/` then `[A-Za-z0-9._~/-]`.
    pub path: String,
    /// Worker threads (1..=64), default 4.
    pub workers: usize,
    /// Scrapes handled at once; one more gets 503 at once. 0 = no limit but `workers`.
    /// Default 3.
    pub max_in_flight: usize,
    /// Deadline for reading a request head; the response gets the same again to be written.
    pub timeout: Duration,
    /// Largest request head (request line and headers): 431 beyond. Bodies are never read;
    /// a Content-Length above this (or any Transfer-Encoding) gets 413. Default 8 KiB.
    pub max_request_bytes: usize,
    /// Longest wait for the poll hook per scrape, further capped at half of Prometheus'
    /// `X-Prometheus-Scrape-Timeout-Seconds`, so that a busy q still gets scraped (with
    /// the last values) before Prometheus gives up. Default 5 s.
    pub poll_timeout: Duration,
    /// Compress when the client accepts gzip (promhttp's `!DisableCompression`).
    pub gzip: bool,
    /// Register the `process_*` metrics and refresh them at each scrape.
    pub process_metrics: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: "0.0.0.0".into(),
            port: 0,
            path: "/metrics".into(),
            workers: 4,
            max_in_flight: 3,
            timeout: Duration::from_secs(10),
            max_request_bytes: 8 * 1024,
            poll_timeout: Duration::from_secs(5),
            gzip: true,
            process_metrics: true,
        }
    }
}

/// What a poll hook achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    Done,
    /// q did not answer in time: the scrape renders the last values.
    TimedOut,
    /// The poll could not be asked for (the bridge is stopping or its eventfd failed):
    /// the scrape renders the last values. (A failing `.prom.on_poll` is trapped in q and
    /// counted in `qprom_hook_errors_total`.)
    Failed,
}

/// Lets q's main thread refresh values before each scrape (GET on the metrics path; HEAD
/// does not poll). Called from worker threads, possibly several at once.
pub trait PollHook: Send + Sync {
    /// Must return within about `timeout`: the server cannot interrupt it.
    fn poll(&self, timeout: Duration) -> PollOutcome;
    /// Called by [`Server::stop`] before it joins the workers: a poll waiting for q's main
    /// thread must return promptly, since `stop` may itself be running on that thread.
    fn cancel(&self) {}
}

/// A hook that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPoll;

impl PollHook for NoPoll {
    fn poll(&self, _timeout: Duration) -> PollOutcome {
        PollOutcome::Done
    }
}

/// Why [`Server::start`] failed; [`StartError::message`] is static, for q's `krr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    InvalidPath,
    InvalidConfig,
    InvalidAddress,
    AddrInUse,
    AddrNotAvailable,
    PermissionDenied,
    Listen(io::ErrorKind),
    Spawn,
    /// A self-metric clashes with a family already in the registry.
    Metrics(Error),
}

impl StartError {
    pub fn message(&self) -> &'static CStr {
        match self {
            StartError::InvalidPath => c"prom: http path must be / then [A-Za-z0-9._~/-]",
            StartError::InvalidConfig => {
                c"prom: invalid http config (workers 1..64, timeouts > 0, request bytes >= 512)"
            }
            StartError::InvalidAddress => c"prom: invalid bind address",
            StartError::AddrInUse => c"prom: port in use",
            StartError::AddrNotAvailable => c"prom: bind address not available",
            StartError::PermissionDenied => c"prom: permission denied binding port",
            StartError::Listen(_) => c"prom: cannot listen",
            StartError::Spawn => c"prom: cannot start http thread",
            StartError::Metrics(e) => e.cstr(),
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message().to_string_lossy())
    }
}

impl std::error::Error for StartError {}

const SCRAPES: &str = "qprom_scrapes_total";

/// The listener's own metrics, ordinary families in the served registry.
struct SelfMetrics {
    scrapes: Arc<Family>,
    duration: Arc<Series>,
    poll_timeouts: Arc<Series>,
    poll_errors: Arc<Series>,
    series: Arc<Series>,
    limit_hits: Arc<Series>,
    panics: Arc<Series>,
}

impl SelfMetrics {
    fn register(reg: &Registry) -> Result<Self, Error> {
        use MetricType::{Counter, Gauge, Histogram};
        let one = |name: &str, t, help: &str| -> Result<Arc<Series>, Error> {
            reg.register(&FamilyDesc::new(name, t, help, &[]))?;
            reg.get_or_create(name, &[] as &[&str], None)
        };
        let scrapes = reg.register(&FamilyDesc::new(
            SCRAPES,
            Counter,
            "Requests for the metrics path, by HTTP status code.",
            &["code"],
        ))?;
        // Present from the start, so rate() and alerts on them work before the first 503.
        for code in ["200", "503"] {
            reg.get_or_create(SCRAPES, &[code], None)?;
        }
        Ok(SelfMetrics {
            scrapes,
            duration: one(
                "qprom_scrape_duration_seconds",
                Histogram,
                "Time to answer a scrape, waiting for the poll hook included.",
            )?,
            poll_timeouts: one(
                "qprom_poll_timeouts_total",
                Counter,
                "Scrapes answered with the last values because q did not poll in time.",
            )?,
            poll_errors: one(
                "qprom_poll_errors_total",
                Counter,
                "Scrapes answered with the last values because q could not be asked to poll.",
            )?,
            series: one("qprom_series", Gauge, "Series in the registry at the last scrape.")?,
            limit_hits: one(
                "qprom_series_limit_hits_total",
                Counter,
                "New series refused because their metric had reached its series limit.",
            )?,
            panics: one(
                "qprom_http_panics_total",
                Counter,
                "Panics caught in HTTP workers (the connection was dropped).",
            )?,
        })
    }

    fn count(&self, reg: &Registry, code: u16) {
        let mut b = itoa::Buffer::new();
        let c = b.format(code);
        if self.scrapes.with_series(&[c], |s| s.inc(1.0)).is_err() {
            if let Ok(s) = reg.get_or_create(SCRAPES, &[c], None) {
                let _ = s.inc(1.0);
            }
        }
    }
}

/// State shared by the acceptor, the workers and [`Server`].
struct Shared {
    cfg: HttpConfig,
    registry: Arc<Registry>,
    hook: Option<Arc<dyn PollHook>>,
    m: SelfMetrics,
    process: Option<ProcessMetrics>,
    landing: Vec<u8>,
    stop: AtomicBool,
    queue: Mutex<VecDeque<Arc<TcpStream>>>,
    ready: Condvar,
    /// The connection each worker is serving, so that `stop` can shut it down.
    current: Vec<Mutex<Option<Arc<TcpStream>>>>,
    in_flight: AtomicUsize,
    panics: AtomicU64,
}

/// A running listener; [`Server::stop`] or dropping it stops it.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Registers the self-metrics (and `process_*` if enabled) in `registry`, binds, and
    /// starts the threads. Restarting with the same registry reuses the families.
    pub fn start(
        cfg: HttpConfig,
        registry: Arc<Registry>,
        hook: Option<Arc<dyn PollHook>>,
    ) -> Result<Server, StartError> {
        let path_ok = cfg.path.starts_with('/')
            && cfg.path.len() <= 256
            && cfg.path.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~/-".contains(&b));
        if !path_ok {
            return Err(StartError::InvalidPath);
        }
        if !(1..=64).contains(&cfg.workers)
            || cfg.timeout.is_zero()
            || cfg.poll_timeout.is_zero()
            || cfg.max_request_bytes < 512
        {
            return Err(StartError::InvalidConfig);
        }
        let m = SelfMetrics::register(&registry).map_err(StartError::Metrics)?;
        let process = match cfg.process_metrics {
            true => Some(process::register(&registry).map_err(StartError::Metrics)?),
            false => None,
        };

        let addrs: Vec<SocketAddr> =
            (cfg.bind.as_str(), cfg.port).to_socket_addrs().map_err(|_| StartError::InvalidAddress)?.collect();
        // std sets SO_REUSEADDR (so TIME_WAIT leftovers never block a restart) and CLOEXEC.
        let listener = TcpListener::bind(&addrs[..]).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => StartError::AddrInUse,
            io::ErrorKind::AddrNotAvailable => StartError::AddrNotAvailable,
            io::ErrorKind::PermissionDenied => StartError::PermissionDenied,
            io::ErrorKind::InvalidInput => StartError::InvalidAddress,
            k => StartError::Listen(k),
        })?;
        let addr = listener.local_addr().map_err(|e| StartError::Listen(e.kind()))?;

        let landing = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>qprom</title></head>\n\
             <body><h1>qprom</h1><p>Prometheus metrics of this kdb+ process: \
             <a href=\"{0}\">{0}</a></p></body></html>\n",
            cfg.path
        )
        .into_bytes();
        let workers = cfg.workers;
        let shared = Arc::new(Shared {
            current: (0..workers).map(|_| Mutex::new(None)).collect(),
            cfg,
            registry,
            hook,
            m,
            process,
            landing,
            stop: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::with_capacity(QUEUE_CAP)),
            ready: Condvar::new(),
            in_flight: AtomicUsize::new(0),
            panics: AtomicU64::new(0),
        });
        // Built first so that, if a spawn fails, Drop stops what did start.
        let mut server = Server { shared: shared.clone(), addr, acceptor: None, workers: Vec::new() };
        for i in 0..workers {
            let sh = shared.clone();
            let h = thread::Builder::new()
                .name(format!("qprom-http-{i}"))
                .spawn(move || worker(sh, i))
                .map_err(|_| StartError::Spawn)?;
            server.workers.push(h);
        }
        let h = thread::Builder::new()
            .name("qprom-accept".into())
            .spawn(move || acceptor(shared, listener))
            .map_err(|_| StartError::Spawn)?;
        server.acceptor = Some(h);
        Ok(server)
    }

    pub fn local_port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Panics caught in workers since start.
    pub fn panics(&self) -> u64 {
        self.shared.panics.load(Relaxed)
    }

    /// Stops accepting, ends connections in progress, joins every thread. When it returns
    /// the port is free. Must not be called from a poll hook (it would join itself).
    pub fn stop(self) {
        drop(self)
    }

    fn shutdown(&mut self) {
        let sh = &self.shared;
        sh.stop.store(true, SeqCst);
        if let Some(h) = &sh.hook {
            h.cancel();
        }
        if let Some(a) = self.acceptor.take() {
            // accept() has no timeout in std: a connection of our own wakes it to see
            // `stop`. The listener closes when that thread returns, before join does.
            let ip = self.addr.ip();
            let wake = match ip {
                _ if !ip.is_unspecified() => self.addr,
                std::net::IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), self.addr.port()),
                std::net::IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), self.addr.port()),
            };
            if TcpStream::connect_timeout(&wake, Duration::from_secs(2)).is_ok() {
                let _ = a.join();
            } // else leave it detached: it exits at its next connection (not seen on Linux).
        }
        {
            let _q = sh.queue.lock();
            sh.ready.notify_all();
        }
        for c in &sh.current {
            if let Some(s) = c.lock().as_ref() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        sh.queue.lock().clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn acceptor(sh: Arc<Shared>, listener: TcpListener) {
    loop {
        let r = catch_unwind(AssertUnwindSafe(|| match listener.accept() {
            Ok((s, _)) => {
                if sh.stop.load(SeqCst) {
                    return true;
                }
                let mut q = sh.queue.lock();
                if q.len() < QUEUE_CAP {
                    q.push_back(Arc::new(s));
                    sh.ready.notify_one();
                } // else dropped: closing beats queueing a scrape that would time out anyway
                false
            }
            Err(e) => {
                if sh.stop.load(SeqCst) {
                    return true;
                }
                // EMFILE and friends persist: back off instead of spinning a core.
                if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted) {
                    thread::sleep(Duration::from_millis(20));
                }
                false
            }
        }));
        match r {
            Ok(true) => return,
            Ok(false) => {}
            Err(_) => {
                sh.panics.fetch_add(1, Relaxed);
            }
        }
    }
}

/// A worker's reusable buffers: steady-state scrapes allocate nothing for the body.
struct WorkerState {
    req: Vec<u8>,
    head: Vec<u8>,
    enc: Encoder,
    gz: Option<Gz>,
}

impl WorkerState {
    fn new(max_request: usize) -> Self {
        WorkerState { req: vec![0; max_request], head: Vec::with_capacity(512), enc: Encoder::new(), gz: None }
    }
}

fn worker(sh: Arc<Shared>, idx: usize) {
    let mut st = WorkerState::new(sh.cfg.max_request_bytes);
    loop {
        let conn = {
            let mut q = sh.queue.lock();
            loop {
                if sh.stop.load(SeqCst) {
                    return;
                }
                if let Some(c) = q.pop_front() {
                    break c;
                }
                sh.ready.wait(&mut q);
            }
        };
        *sh.current[idx].lock() = Some(conn.clone());
        // stop() sets the flag, then shuts down registered connections: re-checking after
        // registering means no connection escapes both.
        if sh.stop.load(SeqCst) {
            *sh.current[idx].lock() = None;
            return;
        }
        let r = catch_unwind(AssertUnwindSafe(|| serve(&sh, &mut st, &conn)));
        *sh.current[idx].lock() = None;
        if r.is_err() {
            sh.panics.fetch_add(1, Relaxed);
            let _ = sh.m.panics.inc(1.0);
            st = WorkerState::new(sh.cfg.max_request_bytes); // may be half-updated
        }
    }
}

/// One connection, one request.
fn serve(sh: &Shared, st: &mut WorkerState, s: &TcpStream) {
    let WorkerState { req: rbuf, head, enc, gz } = st;
    let _ = s.set_nodelay(true); // head and body go out as two sends
    let cfg = &sh.cfg;
    let n = match read_head(s, rbuf, Instant::now() + cfg.timeout) {
        Ok(n) => n,
        Err(ReadEnd::Gone) => return,
        Err(ReadEnd::TooLarge) => return refuse(sh, head, s, 431),
    };
    let req = match parse(&rbuf[..n], cfg.max_request_bytes) {
        Ok(r) => r,
        Err(code) => return refuse(sh, head, s, code),
    };
    let head_only = req.method == b"HEAD";
    let get_or_head = head_only || req.method == b"GET";
    let deadline = Instant::now() + cfg.timeout;
    let allow = [("Allow", "GET, HEAD")];
    let mut plain = |code: u16, extra: &[(&str, &str)], body: &[u8], ctype: &str| {
        let r = Reply { code, ctype, extra, body: Some(body), head_only };
        let _ = send_reply(head, s, &r, deadline);
    };

    if req.path == cfg.path.as_bytes() {
        if !get_or_head {
            plain(405, &allow, b"405 Method Not Allowed\n", TEXT);
            sh.m.count(&sh.registry, 405);
        } else {
            scrape(sh, enc, gz, head, s, &req, head_only, deadline);
        }
    } else if req.path == b"/" {
        match get_or_head {
            true => plain(200, &[], &sh.landing, "text/html; charset=utf-8"),
            false => plain(405, &allow, b"405 Method Not Allowed\n", TEXT),
        }
    } else {
        plain(404, &[], b"404 Not Found\n", TEXT);
    }
    if req.has_body {
        linger(s, cfg.timeout);
    }
}

#[allow(clippy::too_many_arguments)]
fn scrape(
    sh: &Shared,
    enc: &mut Encoder,
    gz: &mut Option<Gz>,
    head: &mut Vec<u8>,
    s: &TcpStream,
    req: &Request<'_>,
    head_only: bool,
    deadline: Instant,
) {
    // The slot covers polling and rendering, not sending: a client that already has its
    // response must not find its own slot still taken when it reconnects.
    let Some(slot) = InFlight::acquire(&sh.in_flight, sh.cfg.max_in_flight) else {
        let r = Reply { code: 503, ctype: TEXT, extra: &[], body: Some(BUSY), head_only };
        let _ = send_reply(head, s, &r, deadline);
        return sh.m.count(&sh.registry, 503);
    };
    let t0 = Instant::now();
    let vary = [("Vary", "Accept, Accept-Encoding")];
    if head_only {
        // Headers only, without rendering (so no Content-Length): a cheap liveness probe.
        let r = Reply { code: 200, ctype: req.format.content_type(), extra: &vary, body: None, head_only };
        drop(slot);
        let _ = send_reply(head, s, &r, deadline);
        return sh.m.count(&sh.registry, 200);
    }
    if let Some(h) = &sh.hook {
        let mut t = sh.cfg.poll_timeout;
        if let Some(pt) = req.scrape_timeout {
            t = t.min(pt / 2);
        }
        match h.poll(t) {
            PollOutcome::Done => {}
            PollOutcome::TimedOut => {
                let _ = sh.m.poll_timeouts.inc(1.0);
            }
            PollOutcome::Failed => {
                let _ = sh.m.poll_errors.inc(1.0);
            }
        }
    }
    if let Some(p) = &sh.process {
        p.update();
    }
    let _ = sh.m.series.set(sh.registry.counts().1 as f64);
    let _ = sh.m.limit_hits.set(sh.registry.series_limit_hits() as f64);
    let mut body = enc.encode(&sh.registry, req.format);
    let mut extra: &[(&str, &str)] = &vary;
    let gzipped = [vary[0], ("Content-Encoding", "gzip")];
    if req.gzip && sh.cfg.gzip {
        if let Ok(z) = gz.get_or_insert_with(Gz::new).compress(body) {
            body = z;
            extra = &gzipped;
        }
    }
    let r = Reply { code: 200, ctype: req.format.content_type(), extra, body: Some(body), head_only };
    drop(slot);
    let _ = send_reply(head, s, &r, deadline);
    let _ = sh.m.duration.observe(t0.elapsed().as_secs_f64());
    sh.m.count(&sh.registry, 200);
}

const TEXT: &str = "text/plain; charset=utf-8";
const BUSY: &[u8] = b"503 Service Unavailable: too many scrapes in flight, try again later\n";

/// Answers a request we could not (or would not) read, then drains what the client still
/// sends: closing with unread data makes Linux send RST, which can destroy the answer.
fn refuse(sh: &Shared, head: &mut Vec<u8>, s: &TcpStream, code: u16) {
    let body: &[u8] = match code {
        413 => b"413 Content Too Large\n",
        431 => b"431 Request Header Fields Too Large\n",
        505 => b"505 HTTP Version Not Supported\n",
        _ => b"400 Bad Request\n",
    };
    let r = Reply { code, ctype: TEXT, extra: &[], body: Some(body), head_only: false };
    let _ = send_reply(head, s, &r, Instant::now() + sh.cfg.timeout);
    linger(s, sh.cfg.timeout);
}

fn linger(s: &TcpStream, timeout: Duration) {
    let _ = s.shutdown(Shutdown::Write);
    let deadline = Instant::now() + timeout.min(Duration::from_secs(1));
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while total < 256 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*s).read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// Slot in the scrapes-in-flight count, released on drop (panics included).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn acquire(n: &'a AtomicUsize, max: usize) -> Option<Self> {
        let before = n.fetch_add(1, AcqRel);
        if max != 0 && before >= max {
            n.fetch_sub(1, AcqRel);
            return None;
        }
        Some(InFlight(n))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AcqRel);
    }
}

// ---------------------------------------------------------------------------------------
// Request reading and parsing

enum ReadEnd {
    /// EOF, timeout or error before a whole head: nothing worth answering.
    Gone,
    TooLarge,
}

/// Reads until the blank line that ends the head; returns the head's length.
fn read_head(s: &TcpStream, buf: &mut [u8], deadline: Instant) -> Result<usize, ReadEnd> {
    let (mut filled, mut scanned) = (0, 0);
    loop {
        if let Some(end) = head_end(buf, scanned, filled) {
            return Ok(end);
        }
        scanned = filled.saturating_sub(2); // a terminator may straddle two reads
        if filled == buf.len() {
            return Err(ReadEnd::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return Err(ReadEnd::Gone);
        }
        let want = (buf.len() - filled).min(READ_CHUNK);
        match (&*s).read(&mut buf[filled..filled + want]) {
            Ok(0) => return Err(ReadEnd::Gone),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ReadEnd::Gone),
        }
    }
}

const READ_CHUNK: usize = 4096;

/// End of `\n\r\n` or `\n\n` within `buf[..filled]`, searching from `from`.
fn head_end(buf: &[u8], from: usize, filled: usize) -> Option<usize> {
    let b = &buf[..filled];
    (from..b.len()).find_map(|i| match (b[i], b.get(i + 1), b.get(i + 2)) {
        (b'\n', Some(b'\n'), _) => Some(i + 2),
        (b'\n', Some(b'\r'), Some(b'\n')) => Some(i + 3),
        _ => None,
    })
}

/// What routing needs from a request.
#[derive(Debug)]
struct Request<'a> {
    method: &'a [u8],
    /// The target up to `?` or `#`.
    path: &'a [u8],
    format: Format,
    gzip: bool,
    scrape_timeout: Option<Duration>,
    has_body: bool,
}

/// Parses a request head; `Err` is the status to answer.
fn parse(head: &[u8], max_body: usize) -> Result<Request<'_>, u16> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut parts = lines.next().ok_or(400u16)?.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || !method.iter().all(|&c| is_tchar(c)) {
        return Err(400);
    }
    if target.is_empty() || !target.iter().all(|&c| c > b' ' && c < 0x7f) {
        return Err(400);
    }
    match version {
        b"HTTP/1.1" | b"HTTP/1.0" => {}
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => return Err(505),
        _ => return Err(400),
    }
    let mut neg = Negotiation::default();
    let mut gzip = GzipPref::default();
    let mut scrape_timeout = None;
    let mut has_body = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        // Obsolete line folding (RFC 9112 §5.2) and a header without a colon are errors.
        let colon = line.iter().position(|&b| b == b':').ok_or(400u16)?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err(400);
        }
        let value = std::str::from_utf8(&line[colon + 1..]).unwrap_or("").trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case(b"accept") {
            neg.feed(value);
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            gzip.feed(value);
        } else if name.eq_ignore_ascii_case(b"x-prometheus-scrape-timeout-seconds") {
            scrape_timeout = value.parse::<f64>().ok().and_then(|v| Duration::try_from_secs_f64(v).ok());
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n: u64 = value.parse().map_err(|_| 400u16)?;
            if n > max_body as u64 {
                return Err(413);
            }
            has_body |= n > 0;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(413);
        }
    }
    Ok(Request {
        method,
        path: origin_path(target),
        format: neg.choose(),
        gzip: gzip.accepts(),
        scrape_timeout,
        has_body,
    })
}

/// The path of an origin-form (`/p?q`) or absolute-form (`http://h/p?q`) target.
fn origin_path(t: &[u8]) -> &[u8] {
    let mut p = t;
    for scheme in [&b"http://"[..], b"https://"] {
        if t.len() > scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &t[scheme.len()..];
            p = rest.iter().position(|&b| b == b'/').map_or(b"/", |i| &rest[i..]);
        }
    }
    let end = p.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(p.len());
    &p[..end]
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Content negotiation over the two formats we speak. Each format takes the q-value of
/// the most specific Accept range matching it (RFC 9110 §12.5.1): `type/sub;version=v`
/// over `type/sub` over `type/*` over `*/*`. OpenMetrics only when asked for by name,
/// with a q > 0 and not below text's; text 0.0.4 otherwise, also when nothing matches
/// (as promhttp does, rather than 406).
#[derive(Debug, Clone, Copy)]
struct Negotiation {
    om: (f32, i8),
    text: (f32, i8),
}

impl Default for Negotiation {
    fn default() -> Self {
        Negotiation { om: (0.0, -1), text: (0.0, -1) }
    }
}

impl Negotiation {
    fn feed(&mut self, header: &str) {
        for range in header.split(',') {
            let mut params = range.split(';');
            let mt = params.next().unwrap_or("").trim();
            let (mut q, mut version) = (1.0f32, None);
            for p in params {
                let Some((k, v)) = p.split_once('=') else { continue };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("q") {
                    q = parse_q(v);
                } else if k.eq_ignore_ascii_case("version") {
                    version = Some(v);
                }
            }
            let spec = |want: &str| match version {
                None => Some(2),
                Some(v) if v == want => Some(3),
                Some(_) => None, // a version we do not produce
            };
            let is = |s: &str| mt.eq_ignore_ascii_case(s);
            let (om, text) = if is("application/openmetrics-text") {
                (spec("1.0.0"), None)
            } else if is("text/plain") {
                (None, spec("0.0.4"))
            } else if is("application/*") {
                (Some(1), None)
            } else if is("text/*") {
                (None, Some(1))
            } else if is("*/*") {
                (Some(0), Some(0))
            } else {
                (None, None)
            };
            for (slot, spec) in [(&mut self.om, om), (&mut self.text, text)] {
                match spec {
                    Some(s) if s > slot.1 => *slot = (q, s),
                    Some(s) if s == slot.1 => slot.0 = slot.0.max(q),
                    _ => {}
                }
            }
        }
    }

    fn choose(&self) -> Format {
        let (om_q, om_spec) = self.om;
        if om_spec >= 2 && om_q > 0.0 && om_q >= self.text.0 {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Accept-Encoding: gzip (or x-gzip) with q > 0, or `*` with q > 0 when gzip is not named.
#[derive(Debug, Default, Clone, Copy)]
struct GzipPref {
    gzip: Option<f32>,
    any: Option<f32>,
}

impl GzipPref {
    fn feed(&mut self, header: &str) {
        for item in header.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| parse_q(v.trim()));
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                self.gzip = Some(q);
            } else if coding == "*" {
                self.any = Some(q);
            }
        }
    }

    fn accepts(&self) -> bool {
        self.gzip.or(self.any).is_some_and(|q| q > 0.0)
    }
}

/// A malformed q-value makes its range unacceptable rather than preferred.
fn parse_q(v: &str) -> f32 {
    v.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------
// Responses

struct Reply<'a> {
    code: u16,
    ctype: &'a str,
    extra: &'a [(&'a str, &'a str)],
    /// `None`: length unknown (HEAD on the metrics path, which does not render).
    body: Option<&'a [u8]>,
    head_only: bool,
}

fn send_reply(head: &mut Vec<u8>, s: &TcpStream, r: &Reply<'_>, deadline: Instant) -> io::Result<()> {
    write_head(head, r);
    send(s, head, deadline)?;
    match r.body {
        Some(b) if !r.head_only => send(s, b, deadline),
        _ => Ok(()),
    }
}

/// Status line and headers of `r` into `head` (cleared first), ending with the blank line.
fn write_head(head: &mut Vec<u8>, r: &Reply<'_>) {
    head.clear();
    let reason = match r.code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    };
    let _ = write!(head, "HTTP/1.1 {} {reason}\r\n", r.code);
    push_date(head, SystemTime::now());
    let _ = write!(head, "Content-Type: {}\r\n", r.ctype);
    if let Some(b) = r.body {
        let _ = write!(head, "Content-Length: {}\r\n", b.len());
    }
    for (k, v) in r.extra {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
}

/// The whole HTTP response to a metrics request that reached q's own port (`.z.ph`
/// hands the request to q, and q returns the response text). Format and gzip are
/// negotiated from the request's `Accept` and `Accept-Encoding` values ("" if absent)
/// exactly as on the listener.
pub fn q_port_response(reg: &Registry, accept: &str, accept_encoding: &str, head_only: bool) -> Vec<u8> {
    let mut neg = Negotiation::default();
    neg.feed(accept);
    let mut gz_pref = GzipPref::default();
    gz_pref.feed(accept_encoding);
    let format = neg.choose();
    let mut enc = Encoder::new();
    let mut body = enc.encode(reg, format);
    let vary = [("Vary", "Accept, Accept-Encoding")];
    let gzipped = [vary[0], ("Content-Encoding", "gzip")];
    let mut extra: &[(&str, &str)] = &vary;
    // A compressor only when the client takes gzip (creating one is not free).
    let mut gz: Option<Gz> = None;
    if gz_pref.accepts() {
        if let Ok(z) = gz.get_or_insert_with(Gz::new).compress(body) {
            body = z;
            extra = &gzipped;
        }
    }
    let mut out = Vec::with_capacity(body.len() + 256);
    write_head(&mut out, &Reply { code: 200, ctype: format.content_type(), extra, body: Some(body), head_only });
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// Writes all of `b` by `deadline` with plain `send(MSG_NOSIGNAL)` calls (see the module
/// doc on SIGPIPE). A send that times out returns what it wrote; the next finds no time left.
fn send(s: &TcpStream, mut b: &[u8], deadline: Instant) -> io::Result<()> {
    while !b.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        s.set_write_timeout(Some(left))?;
        match (&*s).write(b) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => b = &b[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7; required of servers with a clock).
fn push_date(b: &mut Vec<u8>, now: SystemTime) {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = secs % 86_400;
    let _ = write!(
        b,
        "Date: {}, {d:02} {} {y} {:02}:{:02}:{:02} GMT\r\n",
        WD[(days % 7) as usize],
        MON[(m - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60
    );
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// gzip (RFC 1952) around a reused raw-deflate state, so a scrape allocates neither the
/// ~300 KB compressor nor the output buffer once warmed up.
struct Gz {
    z: Compress,
    crc: Crc,
    out: Vec<u8>,
}

impl Gz {
    fn new() -> Self {
        // Level 1: metrics text compresses well even so, and CPU in q's process matters more.
        Gz { z: Compress::new(Compression::fast(), false), crc: Crc::new(), out: Vec::new() }
    }

    fn compress(&mut self, input: &[u8]) -> Result<&[u8], flate2::CompressError> {
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown
        const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        self.out.clear();
        self.out.extend_from_slice(&HEADER);
        self.z.reset();
        let mut pos = 0;
        loop {
            if self.out.capacity() - self.out.len() < 1024 {
                self.out.reserve(self.out.capacity().max(input.len() / 4).max(4096));
            }
            let before = self.z.total_in();
            let status = self.z.compress_vec(&input[pos..], &mut self.out, FlushCompress::Finish)?;
            pos += (self.z.total_in() - before) as usize;
            match status {
                Status::StreamEnd => break,
                Status::Ok => {}
                Status::BufError => self.out.reserve(4096),
            }
        }
        self.crc.reset();
        self.crc.update(input);
        self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
        self.out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS_2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

    fn fmt_for(accept: &[&str]) -> Format {
        let mut n = Negotiation::default();
        accept.iter().for_each(|a| n.feed(a));
        n.choose()
    }

    #[test]
    fn negotiation() {
        assert_eq!(fmt_for(&[PROMETHEUS_2]), Format::OpenMetrics);
        assert_eq!(fmt_for(&[PROMETHEUS_3]), Format::OpenMetrics);
        assert_eq!(fmt_for(&[]), Format::Text);
        assert_eq!(fmt_for(&["*/*"]), Format::Text);
        assert_eq!(fmt_for(&["application/*"]), Format::Text);
        assert_eq!(fmt_for(&["application/openmetrics-text"]), Format::OpenMetrics);
        assert_eq!(fmt_for(&["Application/OpenMetrics-Text; Version=1.0.0"]), Format::OpenMetrics);
        assert_eq!(fmt_for(&["application/openmetrics-text;version=0.0.1"]), Format::Text);
        assert_eq!(fmt_for(&["application/openmetrics-text;q=0, */*"]), Format::Text);
        assert_eq!(fmt_for(&["application/openmetrics-text;q=0.4,text/plain;q=0.5"]), Format::Text);
        assert_eq!(fmt_for(&["text/plain;q=0.5", "application/openmetrics-text;q=0.9"]), Format::OpenMetrics);
        assert_eq!(fmt_for(&["application/openmetrics-text;q=bogus"]), Format::Text);
        assert_eq!(fmt_for(&["application/json"]), Format::Text);
    }

    #[test]
    fn accept_encoding() {
        let ok = |h: &str| {
            let mut g = GzipPref::default();
            g.feed(h);
            g.accepts()
        };
        assert!(ok("gzip"));
        assert!(ok("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(ok("*"));
        assert!(ok("x-gzip"));
        assert!(!ok(""));
        assert!(!ok("identity"));
        assert!(!ok("gzip;q=0"));
        assert!(!ok("*;q=0.5, gzip;q=0"));
        assert!(!ok("br, deflate"));
    }

    #[test]
    fn request_heads() {
        let r = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n", 8192).unwrap();
        assert_eq!((r.method, r.path, r.gzip, r.has_body), (&b"GET"[..], &b"/metrics"[..], true, false));
        assert_eq!(parse(b"GET http://h:1/metrics HTTP/1.1\r\n\r\n", 8192).unwrap().path, b"/metrics");
        assert_eq!(parse(b"GET http://h:1 HTTP/1.1\r\n\r\n", 8192).unwrap().path, b"/");
        let t = parse(b"GET / HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: 2.5\r\n\r\n", 8192).unwrap();
        assert_eq!(t.scrape_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(parse(b"GARBAGE\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n", 8192).unwrap_err(), 505);
        assert_eq!(parse(b"GET  / HTTP/1.1\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n folded\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"POST / HTTP/1.1\r\nContent-Length: 9000\r\n\r\n", 8192).unwrap_err(), 413);
        assert_eq!(parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 8192).unwrap_err(), 413);
        assert!(parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 8192).unwrap().has_body);
        assert_eq!(head_end(b"GET / HTTP/1.0\n\nrest", 0, 20), Some(16));
    }

    #[test]
    fn http_date() {
        let mut b = Vec::new();
        push_date(&mut b, UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(b, b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
        b.clear();
        push_date(&mut b, UNIX_EPOCH + Duration::from_secs(951_782_400)); // leap day
        assert_eq!(b, b"Date: Tue, 29 Feb 2000 00:00:00 GMT\r\n");
    }
}
