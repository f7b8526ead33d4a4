//! The scrape listener: a small HTTP/1.1 server (TLS and basic auth optional) on its own
//! threads.
//!
//! Threading model: a front-end thread ([`front`]) accepts and holds every connection in
//! one epoll set until its request head has arrived, TLS handshake included, so idle or
//! slow clients cost a socket each, never a thread; a fixed pool of `workers` threads
//! then each serves one complete request at a time: check credentials, answer, close
//! (`Connection: close`, so an idle keep-alive client never pins a worker). Scrapes in
//! flight are limited separately (`max_in_flight`, default one less than the workers) so
//! that a worker stays free to answer the next scrape with an immediate 503, as
//! promhttp's MaxRequestsInFlight does. Nothing here touches q: the optional [`PollHook`]
//! is how q's main thread gets asked.
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
//! `write_vectored` on a socket: std implements it with `writev`, which does raise SIGPIPE
//! (rustls would: see [`tls::NoSigpipe`]).

mod front;
mod request;
pub mod tls;

use crate::auth::BasicAuth;
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
use front::Dropped;
use mio::unix::SourceFd;
use mio::{Interest, Poll, Waker};
use request::{parse, GzipPref, Negotiation, Request};
use rustls::ServerConnection;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use tls::{TlsFiles, TlsMinVersion};

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
    /// Connections open at once while their request head is still arriving (1..=65536),
    /// default 256; as many complete requests may wait for a worker. When full, a new
    /// connection evicts the oldest waiting one (see `front.rs`).
    pub max_connections: usize,
    /// Serve HTTPS only, with this certificate and key.
    pub tls: Option<TlsFiles>,
    /// Basic-auth users: (name, bcrypt hash). Empty: no authentication.
    pub basic_auth_users: Vec<(String, String)>,
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
            max_connections: 256,
            tls: None,
            basic_auth_users: Vec::new(),
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
    TlsCert,
    TlsKey,
    TlsClientCa,
    /// A basic-auth user or hash is invalid (see the message).
    Auth(Error),
}

impl StartError {
    pub fn message(&self) -> &'static CStr {
        match self {
            StartError::InvalidPath => c"prom: http path must be / then [A-Za-z0-9._~/-]",
            StartError::InvalidConfig => {
                c"prom: invalid http config (workers 1..64, timeouts > 0, request bytes >= 512, connections 1..65536)"
            }
            StartError::InvalidAddress => c"prom: invalid bind address",
            StartError::AddrInUse => c"prom: port in use",
            StartError::AddrNotAvailable => c"prom: bind address not available",
            StartError::PermissionDenied => c"prom: permission denied binding port",
            StartError::Listen(_) => c"prom: cannot listen",
            StartError::Spawn => c"prom: cannot start http thread",
            StartError::Metrics(e) | StartError::Auth(e) => e.cstr(),
            StartError::TlsCert => c"prom: tls certificate file unreadable or without a PEM certificate",
            StartError::TlsKey => c"prom: tls key file unreadable, not a PEM private key, or not the certificate's key",
            StartError::TlsClientCa => c"prom: tls client CA file unreadable or without a PEM certificate",
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
const DROPPED: &str = "qprom_http_dropped_connections_total";
const TLS_RELOADS: &str = "qprom_tls_reloads_total";
const LIMIT_HITS: &str = "qprom_series_limit_hits_total";
/// Series limit of LIMIT_HITS: families, not label values (`.prom.meta` shows it).
const HITS_LIMIT: usize = 100_000;

/// The listener's own metrics, ordinary families in the served registry.
struct SelfMetrics {
    scrapes: Arc<Family>,
    duration: Arc<Series>,
    poll_timeouts: Arc<Series>,
    poll_errors: Arc<Series>,
    series: Arc<Series>,
    /// By `family`: one series per registered family, set at each scrape.
    limit_hits: Arc<Family>,
    panics: Arc<Series>,
    /// By [`Dropped`] reason, in `Dropped::ALL` order.
    dropped: Vec<Arc<Series>>,
    /// `result="ok"` and `"error"`, with TLS only.
    tls_reloads: Option<[Arc<Series>; 2]>,
}

impl SelfMetrics {
    fn register(reg: &Registry, with_tls: bool) -> Result<Self, Error> {
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
        reg.register(&FamilyDesc::new(
            DROPPED,
            Counter,
            "Connections closed before a complete request reached a worker, by reason: \
             evicted (the table of waiting connections was full), timeout (no complete head \
             in time), queue_full (answered 503 at once), tls (handshake or record error).",
            &["reason"],
        ))?;
        let dropped = Dropped::ALL
            .iter()
            .map(|d| reg.get_or_create(DROPPED, &[d.label()], None))
            .collect::<Result<Vec<_>, _>>()?;
        // One series per family, whatever the registry's default limit: families are
        // registered by code, not by what is being flooded, so their number is bounded.
        // Past HITS_LIMIT families, those beyond get no series here.
        let mut hits = FamilyDesc::new(
            LIMIT_HITS,
            Counter,
            "New series refused because their metric had reached its series limit, by metric.",
            &["family"],
        );
        hits.series_limit = Some(HITS_LIMIT);
        let limit_hits = reg.register(&hits)?;
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
            limit_hits,
            panics: one(
                "qprom_http_panics_total",
                Counter,
                "Panics caught in HTTP workers (the connection was dropped).",
            )?,
            dropped,
            tls_reloads: match with_tls {
                false => None,
                true => {
                    reg.register(&FamilyDesc::new(
                        TLS_RELOADS,
                        Counter,
                        "Rebuilds of the TLS configuration after its files changed, by result \
                         (error: the old configuration stays in use, retried every second).",
                        &["result"],
                    ))?;
                    Some([
                        reg.get_or_create(TLS_RELOADS, &["ok"], None)?,
                        reg.get_or_create(TLS_RELOADS, &["error"], None)?,
                    ])
                }
            },
        })
    }

    fn tls_reload(&self, r: tls::Reload) {
        let i = match r {
            tls::Reload::Unchanged => return,
            tls::Reload::Reloaded => 0,
            tls::Reload::Failed => 1,
        };
        if let Some(s) = &self.tls_reloads {
            let _ = s[i].inc(1.0);
        }
    }

    /// Copies each family's refusal count into `qprom_series_limit_hits_total{family}`
    /// (every family with labels, so that `increase()` sees the first refusal; one without
    /// has its one series from the start and cannot be refused), and removes the series of
    /// families no longer registered. No allocation unless a family is new or gone.
    fn limit_hits(&self, reg: &Registry) {
        let mut families = 0usize;
        reg.for_each_family(|f| {
            if f.label_names().is_empty() {
                return;
            }
            families += 1;
            let (name, hits) = ([f.name()], f.series_limit_hits() as f64);
            // Under the registry's read lock: `get_or_create_in` takes no family lock.
            if self.limit_hits.with_series(&name, |s| s.set(hits)).is_err() {
                if let Ok(s) = reg.get_or_create_in(&self.limit_hits, &name, None) {
                    let _ = s.set(hits);
                }
            }
        });
        if self.limit_hits.len() > families {
            let mut gone = Vec::new();
            self.limit_hits.for_each_series(|s| gone.push(s.labels()[0].clone()));
            gone.retain(|name| reg.family(name).is_err());
            for name in gone {
                let _ = reg.remove_series(LIMIT_HITS, &[name]);
            }
        }
    }

    fn dropped(&self, why: Dropped) {
        let _ = self.dropped[why as usize].inc(1.0);
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

/// State shared by the front end, the workers and [`Server`].
struct Shared {
    cfg: HttpConfig,
    registry: Arc<Registry>,
    hook: Option<Arc<dyn PollHook>>,
    auth: Option<BasicAuth>,
    m: SelfMetrics,
    process: Option<ProcessMetrics>,
    landing: Vec<u8>,
    stop: AtomicBool,
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    /// The connection each worker is serving, so that `stop` can shut it down.
    current: Vec<Mutex<Option<Arc<TcpStream>>>>,
    in_flight: AtomicUsize,
    panics: AtomicU64,
}

/// A connection whose request head has arrived (or overflowed), for a worker.
struct Job {
    /// Blocking again.
    stream: Arc<TcpStream>,
    tls: Option<Box<ServerConnection>>,
    /// The head is `head[..len]`.
    head: Vec<u8>,
    len: usize,
    /// `max_request_bytes` arrived without the end of a head.
    too_large: bool,
}

/// A running listener; [`Server::stop`] or dropping it stops it.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    waker: Option<Arc<Waker>>,
    front: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Pending connections the kernel keeps for us (std listens with 128): a burst of
/// scrapers beyond it would wait for SYN retransmits, a second or more each.
const BACKLOG: i32 = 1024;

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
            || !(1..=65536).contains(&cfg.max_connections)
        {
            return Err(StartError::InvalidConfig);
        }
        let tls_config = cfg.tls.as_ref().map(tls::Reloading::new).transpose()?;
        let auth = match cfg.basic_auth_users.is_empty() {
            true => None,
            false => Some(BasicAuth::new(&cfg.basic_auth_users).map_err(StartError::Auth)?),
        };
        let m = SelfMetrics::register(&registry, cfg.tls.is_some()).map_err(StartError::Metrics)?;
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
        let listen_err = |e: io::Error| StartError::Listen(e.kind());
        crate::sys::listen_backlog(&listener, BACKLOG).map_err(listen_err)?;
        listener.set_nonblocking(true).map_err(listen_err)?;
        let poll = Poll::new().map_err(listen_err)?;
        poll.registry()
            .register(&mut SourceFd(&listener.as_raw_fd()), front::LISTENER, Interest::READABLE)
            .map_err(listen_err)?;
        let waker = Arc::new(Waker::new(poll.registry(), front::WAKER).map_err(listen_err)?);

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
            auth,
            m,
            process,
            landing,
            stop: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            in_flight: AtomicUsize::new(0),
            panics: AtomicU64::new(0),
        });
        // Built first so that, if a spawn fails, Drop stops what did start.
        let mut server =
            Server { shared: shared.clone(), addr, waker: Some(waker), front: None, workers: Vec::new() };
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
            .spawn(move || front_thread(shared, poll, listener, tls_config))
            .map_err(|_| StartError::Spawn)?;
        server.front = Some(h);
        Ok(server)
    }

    pub fn local_port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Panics caught in the listener's threads since start.
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
        if let Some(f) = self.front.take() {
            // The listener and every waiting connection close when that thread returns.
            // If it cannot be woken (the eventfd write failed), leave it detached.
            if let Some(Ok(())) = self.waker.as_ref().map(|w| w.wake()) {
                let _ = f.join();
            }
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

fn front_thread(sh: Arc<Shared>, mut poll: Poll, listener: TcpListener, mut tls: Option<tls::Reloading>) {
    // A panic loses the connections waiting at that moment (they close), not the listener.
    while !sh.stop.load(SeqCst) {
        let r = catch_unwind(AssertUnwindSafe(|| front::run(&sh, &mut poll, &listener, &mut tls)));
        if r.is_err() {
            sh.panics.fetch_add(1, Relaxed);
            let _ = sh.m.panics.inc(1.0);
            thread::sleep(Duration::from_millis(20)); // a panic that repeats must not spin
        }
    }
}

/// A worker's reusable buffers: steady-state scrapes allocate nothing for the body.
struct WorkerState {
    head: Vec<u8>,
    enc: Encoder,
    gz: Option<Gz>,
}

impl WorkerState {
    fn new() -> Self {
        WorkerState { head: Vec::with_capacity(512), enc: Encoder::new(), gz: None }
    }
}

fn worker(sh: Arc<Shared>, idx: usize) {
    let mut st = WorkerState::new();
    loop {
        let mut job = {
            let mut q = sh.queue.lock();
            loop {
                if sh.stop.load(SeqCst) {
                    return;
                }
                if let Some(j) = q.pop_front() {
                    break j;
                }
                sh.ready.wait(&mut q);
            }
        };
        *sh.current[idx].lock() = Some(job.stream.clone());
        // stop() sets the flag, then shuts down registered connections: re-checking after
        // registering means no connection escapes both.
        if sh.stop.load(SeqCst) {
            *sh.current[idx].lock() = None;
            return;
        }
        let r = catch_unwind(AssertUnwindSafe(|| serve(&sh, &mut st, &mut job)));
        *sh.current[idx].lock() = None;
        if r.is_err() {
            sh.panics.fetch_add(1, Relaxed);
            let _ = sh.m.panics.inc(1.0);
            st = WorkerState::new(); // may be half-updated
        }
    }
}

/// Where a response goes: the socket, or the socket through the TLS session.
struct Sink<'a> {
    s: &'a TcpStream,
    tls: Option<&'a mut ServerConnection>,
}

impl Sink<'_> {
    fn send(&mut self, b: &[u8], deadline: Instant) -> io::Result<()> {
        match &mut self.tls {
            None => send(self.s, b, deadline),
            Some(t) => tls::send(t, self.s, b, deadline),
        }
    }

    /// After the response: TLS says close_notify (else clients may report truncation).
    fn finish(&mut self, deadline: Instant) {
        if let Some(t) = &mut self.tls {
            t.send_close_notify();
            let _ = tls::flush(t, self.s, deadline);
        }
    }
}

/// One connection, one request.
fn serve(sh: &Shared, st: &mut WorkerState, job: &mut Job) {
    let WorkerState { head, enc, gz } = st;
    let s: &TcpStream = &job.stream;
    let _ = s.set_nodelay(true); // head and body go out as separate sends
    let mut sink = Sink { s, tls: job.tls.as_deref_mut() };
    let cfg = &sh.cfg;
    if job.too_large {
        return refuse(sh, head, &mut sink, 431);
    }
    let req = match parse(&job.head[..job.len], cfg.max_request_bytes) {
        Ok(r) => r,
        Err(code) => return refuse(sh, head, &mut sink, code),
    };
    let metrics_path = req.path == cfg.path.as_bytes();
    let head_only = req.method == b"HEAD";
    let get_or_head = head_only || req.method == b"GET";
    let deadline = Instant::now() + cfg.timeout;
    let allow = [("Allow", "GET, HEAD")];
    let mut plain = |sink: &mut Sink<'_>, code: u16, extra: &[(&str, &str)], body: &[u8], ctype: &str| {
        let r = Reply { code, ctype, extra, body: Some(body), head_only };
        let _ = send_reply(head, sink, &r, deadline);
    };

    // Every path, as exporter-toolkit does: the landing page names the metrics path.
    if sh.auth.as_ref().is_some_and(|a| !a.check(req.authorization)) {
        let challenge = [("WWW-Authenticate", "Basic realm=\"qprom\", charset=\"UTF-8\"")];
        if metrics_path {
            sh.m.count(&sh.registry, 401); // before the answer: a client may look right after
        }
        plain(&mut sink, 401, &challenge, b"401 Unauthorized\n", TEXT);
    } else if metrics_path {
        if !get_or_head {
            plain(&mut sink, 405, &allow, b"405 Method Not Allowed\n", TEXT);
            sh.m.count(&sh.registry, 405);
        } else {
            scrape(sh, enc, gz, head, &mut sink, &req, head_only, deadline);
        }
    } else if req.path == b"/" {
        match get_or_head {
            true => plain(&mut sink, 200, &[], &sh.landing, "text/html; charset=utf-8"),
            false => plain(&mut sink, 405, &allow, b"405 Method Not Allowed\n", TEXT),
        }
    } else {
        plain(&mut sink, 404, &[], b"404 Not Found\n", TEXT);
    }
    sink.finish(deadline);
    // Unread input (a body, pipelined requests) at close makes Linux reset the connection,
    // which can destroy the end of the response still in flight (RFC 9112 §9.6).
    if req.has_body || job.head.len() > job.len || input_pending(s) {
        linger(s, cfg.timeout);
    }
}

fn input_pending(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    let pending = s.set_nonblocking(true).is_ok() && matches!(s.peek(&mut b), Ok(n) if n > 0);
    let _ = s.set_nonblocking(false);
    pending
}

#[allow(clippy::too_many_arguments)]
fn scrape(
    sh: &Shared,
    enc: &mut Encoder,
    gz: &mut Option<Gz>,
    head: &mut Vec<u8>,
    sink: &mut Sink<'_>,
    req: &Request<'_>,
    head_only: bool,
    deadline: Instant,
) {
    // The slot covers polling and rendering, not sending: a client that already has its
    // response must not find its own slot still taken when it reconnects.
    let Some(slot) = InFlight::acquire(&sh.in_flight, sh.cfg.max_in_flight) else {
        let r = Reply { code: 503, ctype: TEXT, extra: &[], body: Some(BUSY), head_only };
        let _ = send_reply(head, sink, &r, deadline);
        return sh.m.count(&sh.registry, 503);
    };
    let t0 = Instant::now();
    let vary = [("Vary", "Accept, Accept-Encoding")];
    if head_only {
        // Headers only, without rendering (so no Content-Length): a cheap liveness probe.
        let r = Reply { code: 200, ctype: req.format.content_type(), extra: &vary, body: None, head_only };
        drop(slot);
        let _ = send_reply(head, sink, &r, deadline);
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
    // Hits first: a family's first scrape adds its hits series, which qprom_series counts.
    sh.m.limit_hits(&sh.registry);
    let _ = sh.m.series.set(sh.registry.counts().1 as f64);
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
    let _ = send_reply(head, sink, &r, deadline);
    let _ = sh.m.duration.observe(t0.elapsed().as_secs_f64());
    sh.m.count(&sh.registry, 200);
}

const TEXT: &str = "text/plain; charset=utf-8";
const BUSY: &[u8] = b"503 Service Unavailable: too many scrapes in flight, try again later\n";
/// The front end's answer when the queue of complete requests is full.
const QUEUE_FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 50\r\nConnection: close\r\n\r\n503 Service Unavailable: too many requests queued\n";

/// Answers a request we could not (or would not) read, then drains what the client still
/// sends: closing with unread data makes Linux send RST, which can destroy the answer.
fn refuse(sh: &Shared, head: &mut Vec<u8>, sink: &mut Sink<'_>, code: u16) {
    let body: &[u8] = match code {
        413 => b"413 Content Too Large\n",
        431 => b"431 Request Header Fields Too Large\n",
        505 => b"505 HTTP Version Not Supported\n",
        _ => b"400 Bad Request\n",
    };
    let r = Reply { code, ctype: TEXT, extra: &[], body: Some(body), head_only: false };
    let deadline = Instant::now() + sh.cfg.timeout;
    let _ = send_reply(head, sink, &r, deadline);
    sink.finish(deadline);
    linger(sink.s, sh.cfg.timeout);
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
// Responses

struct Reply<'a> {
    code: u16,
    ctype: &'a str,
    extra: &'a [(&'a str, &'a str)],
    /// `None`: length unknown (HEAD on the metrics path, which does not render).
    body: Option<&'a [u8]>,
    head_only: bool,
}

fn send_reply(head: &mut Vec<u8>, sink: &mut Sink<'_>, r: &Reply<'_>, deadline: Instant) -> io::Result<()> {
    write_head(head, r);
    sink.send(head, deadline)?;
    match r.body {
        Some(b) if !r.head_only => sink.send(b, deadline),
        _ => Ok(()),
    }
}

/// Status line and headers of `r` into `head` (cleared first), ending with the blank line.
fn write_head(head: &mut Vec<u8>, r: &Reply<'_>) {
    head.clear();
    let reason = match r.code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
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
