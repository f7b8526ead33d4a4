//! promhttp's handler middleware, for q's `.z` request handlers: requests in flight,
//! request and response sizes, HTTP requests by status code and method, and the opt-in
//! per-user and per-function families. Each family is registered at `.prom.init` from
//! its configuration key; a finished request updates all of them in one export call
//! (`qprom_request_ex`, src/ffi/helpers.rs), an entered one bumps the in-flight gauge in
//! another (`qprom_enter`, only with `inflight` on).
//!
//! Safe Rust, no q objects: src/ffi/helpers.rs decodes q's arguments into [`Extras`].

use crate::defaults::{Handler, DURATION_BUCKETS};
use crate::error::{Error, Result};
use crate::metric::{validate_buckets, MetricType, Params};
use crate::registry::{Family, FamilyDesc, Registry, Series};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Size buckets (bytes): 16 B to 1 GiB in powers of 4.
pub const SIZE_BUCKETS: [f64; 14] = [
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
];

pub const IN_FLIGHT: &str = "kdb_requests_in_flight";
pub const REQUEST_SIZE: &str = "kdb_request_size_bytes";
pub const RESPONSE_SIZE: &str = "kdb_response_size_bytes";
pub const HTTP_REQUESTS: &str = "kdb_http_requests_total";
pub const USER_DURATION: &str = "kdb_user_request_duration_seconds";
pub const USER_ERRORS: &str = "kdb_user_request_errors_total";
pub const FUNCTION_DURATION: &str = "kdb_function_request_duration_seconds";
pub const FUNCTION_ERRORS: &str = "kdb_function_request_errors_total";

/// Handlers that receive a request object worth sizing (not the timer).
const SIZED_REQUESTS: [Handler; 5] = [Handler::Pg, Handler::Ps, Handler::Ph, Handler::Pp, Handler::Ws];
/// Handlers whose result goes back to the caller (`.z.ps`, `.z.ws`, `.z.ts` results are
/// discarded by q).
const SIZED_RESPONSES: [Handler; 3] = [Handler::Pg, Handler::Ph, Handler::Pp];
/// Handlers whose message can be a `(`fn;args…)` call.
const CALLS: [Handler; 2] = [Handler::Pg, Handler::Ps];

/// What `.prom.init`'s middleware keys ask for. Everything is off by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// `inflight`: a gauge per handler, up at `before_X`, down at `after_X`/`error_X`.
    pub inflight: bool,
    /// `exemplars`: each request's duration observation carries an exemplar (user and
    /// function for IPC, path for HTTP).
    pub exemplars: bool,
    /// `sizes`: request and response size histograms (bytes).
    pub sizes: bool,
    /// `sizeBuckets`: bounds of the size histograms; [`SIZE_BUCKETS`] when None.
    pub size_buckets: Option<Vec<f64>>,
    /// `httpStatus`: `kdb_http_requests_total{code,method}` for `.z.ph` and `.z.pp`.
    pub http_status: bool,
    /// `user`: durations and errors by handler and `.z.u`.
    pub user: bool,
    /// `functions`: durations and errors of `(`fn;args…)` calls to these functions.
    pub functions: Vec<String>,
    /// `buckets`: duration bounds of the user and function histograms (as the default
    /// request-duration histogram); [`DURATION_BUCKETS`] when None.
    pub duration_buckets: Option<Vec<f64>>,
}

impl Config {
    /// Whether the after/error hooks must call the richer export.
    pub fn any(&self) -> bool {
        self.inflight || self.sizes || self.http_status || self.user || self.exemplars || !self.functions.is_empty()
    }
}

/// What the q side passes about one finished request besides handler, start and outcome.
/// `None` means not given (or not applicable): nothing is recorded for it.
#[derive(Debug, Clone, Default)]
pub struct Extras<'a> {
    /// Request size in bytes (`-22!msg` for IPC, the text and headers for HTTP).
    pub request_bytes: Option<f64>,
    /// Response size in bytes (`-22!res` for `.z.pg`, the response string for HTTP).
    pub response_bytes: Option<f64>,
    /// The HTTP response, or its start: `"HTTP/1.x NNN …"`.
    pub http_response: Option<&'a [u8]>,
    /// `.z.u`.
    pub user: Option<&'a str>,
    /// The function a `(`fn;args…)` message calls.
    pub function: Option<&'a str>,
    /// The request's exemplar (`exemplars` on), for its duration observations.
    pub exemplar: Option<std::sync::Arc<crate::metric::Exemplar>>,
}

#[derive(Debug)]
struct PerFunction {
    /// Indexed as [`CALLS`].
    duration: [Arc<Series>; 2],
    errors: [Arc<Series>; 2],
}

/// The registered middleware families, and what is switched on.
#[derive(Debug, Default)]
pub struct Middleware {
    config: Config,
    /// Indexed by `Handler as usize`.
    in_flight: [Option<Arc<Series>>; 6],
    request_size: [Option<Arc<Series>>; 6],
    response_size: [Option<Arc<Series>>; 6],
    http: Option<Arc<Family>>,
    user: Option<(Arc<Family>, Arc<Family>)>,
    functions: HashMap<Box<str>, PerFunction, BuildHasherDefault<Fnv>>,
}

/// FNV-1a: function names are short and chosen by the operator (no hash flooding), and
/// SipHash would cost more than the update it guards.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

fn family(reg: &Registry, name: &str, t: MetricType, help: &str, labels: &[&str], params: Option<Params>) -> Result<Arc<Family>> {
    let mut d = FamilyDesc::new(name, t, help, labels);
    d.params = params;
    reg.register(&d)
}

impl Middleware {
    /// Registers the families `cfg` switches on (idempotent, as every registration) and
    /// creates the series whose label values are known now: one per handler, one per
    /// allowed function. Nothing is registered for what is off.
    pub fn register(reg: &Registry, cfg: &Config) -> Result<Middleware> {
        use MetricType::*;
        let size_buckets = validate_buckets(cfg.size_buckets.as_deref().unwrap_or(&SIZE_BUCKETS))?;
        let duration_buckets = validate_buckets(cfg.duration_buckets.as_deref().unwrap_or(&DURATION_BUCKETS))?;
        let mut m = Middleware { config: cfg.clone(), ..Default::default() };
        if cfg.inflight {
            let f = family(reg, IN_FLIGHT, Gauge, "Requests being handled now, by .z handler.", &["handler"], None)?;
            for h in Handler::ALL {
                m.in_flight[h as usize] = Some(reg.get_or_create_in(&f, &[h.label()], None)?);
            }
        }
        if cfg.sizes {
            let p = Some(Params::Buckets(size_buckets));
            let req = family(reg, REQUEST_SIZE, Histogram, "Size of requests in bytes (IPC: -22! of the message; HTTP: request text and headers), by .z handler.", &["handler"], p.clone())?;
            let resp = family(reg, RESPONSE_SIZE, Histogram, "Size of responses in bytes (IPC: -22! of the result; HTTP: the response), by .z handler.", &["handler"], p)?;
            for h in SIZED_REQUESTS {
                m.request_size[h as usize] = Some(reg.get_or_create_in(&req, &[h.label()], None)?);
            }
            for h in SIZED_RESPONSES {
                m.response_size[h as usize] = Some(reg.get_or_create_in(&resp, &[h.label()], None)?);
            }
        }
        if cfg.http_status {
            m.http = Some(family(reg, HTTP_REQUESTS, Counter, "HTTP requests handled by .z.ph (GET) and .z.pp (POST), by status code and method.", &["code", "method"], None)?);
        }
        if cfg.user || !cfg.functions.is_empty() {
            let p = Some(Params::Buckets(duration_buckets));
            if cfg.user {
                m.user = Some((
                    family(reg, USER_DURATION, Histogram, "Time spent in the .z handler, by handler and user (.z.u).", &["handler", "user"], p.clone())?,
                    family(reg, USER_ERRORS, Counter, "Requests whose handler signalled an error, by handler and user (.z.u).", &["handler", "user"], None)?,
                ));
            }
            if !cfg.functions.is_empty() {
                let d = family(reg, FUNCTION_DURATION, Histogram, "Time spent in (`fn;args) calls to listed functions, by handler and function.", &["handler", "function"], p)?;
                let e = family(reg, FUNCTION_ERRORS, Counter, "(`fn;args) calls to listed functions that signalled an error, by handler and function.", &["handler", "function"], None)?;
                for f in &cfg.functions {
                    if m.functions.contains_key(f.as_str()) {
                        continue;
                    }
                    let series = |fam: &Family, h: Handler| reg.get_or_create_in(fam, &[h.label(), f.as_str()], None);
                    let pf = PerFunction {
                        duration: [series(&d, CALLS[0])?, series(&d, CALLS[1])?],
                        errors: [series(&e, CALLS[0])?, series(&e, CALLS[1])?],
                    };
                    m.functions.insert(f.as_str().into(), pf);
                }
            }
        }
        Ok(m)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether [`Middleware::finish`] needs the request's duration.
    pub fn needs_duration(&self) -> bool {
        self.user.is_some() || !self.functions.is_empty()
    }

    /// A request entered handler `h` (`before_X`).
    #[inline]
    pub fn enter(&self, h: Handler) {
        if let Some(g) = &self.in_flight[h as usize] {
            let _ = g.inc(1.0);
        }
    }

    /// A request left handler `h`: `seconds` is its duration (used only when
    /// [`Middleware::needs_duration`]). Never fails: a series that cannot be created
    /// (a family's series limit) is skipped, and counted by the registry.
    pub fn finish(&self, reg: &Registry, h: Handler, seconds: f64, failed: bool, x: &Extras) {
        let i = h as usize;
        if let Some(g) = &self.in_flight[i] {
            // An exit without its entry (the hooks replaced, init in the middle of a
            // request) must not drive the gauge below zero.
            if g.get() >= 1.0 {
                let _ = g.dec(1.0);
            }
        }
        if let (Some(s), Some(b)) = (&self.request_size[i], x.request_bytes) {
            let _ = s.observe(b);
        }
        if let (Some(s), Some(b), false) = (&self.response_size[i], x.response_bytes, failed) {
            let _ = s.observe(b);
        }
        if let Some(fam) = &self.http {
            let method = match h {
                Handler::Ph => Some("GET"),
                Handler::Pp => Some("POST"),
                _ => None,
            };
            if let Some(method) = method {
                let code = if failed { "error" } else { x.http_response.and_then(status_code).unwrap_or("unknown") };
                update(reg, fam, &[code, method], |s| s.inc(1.0));
            }
        }
        if let (Some((dur, errs)), Some(user), false) = (&self.user, x.user, h == Handler::Ts) {
            let labels = [h.label(), user];
            update(reg, dur, &labels, |s| observe(s, seconds, &x.exemplar));
            if failed {
                update(reg, errs, &labels, |s| s.inc(1.0));
            }
        }
        if let (Some(f), Some(j)) = (x.function, CALLS.iter().position(|c| *c == h)) {
            if let Some(pf) = self.functions.get(f) {
                let _ = observe(&pf.duration[j], seconds, &x.exemplar);
                if failed {
                    let _ = pf.errors[j].inc(1.0);
                }
            }
        }
    }
}

/// `seconds` is the duration the exemplar was made with (src/ffi/helpers.rs): shared, not copied.
fn observe(s: &Series, seconds: f64, ex: &Option<std::sync::Arc<crate::metric::Exemplar>>) -> Result<()> {
    match ex {
        Some(e) => s.observe_with_exemplar(seconds, e.clone()),
        None => s.observe(seconds),
    }
}

/// Updates the series with these labels, creating it if absent; errors are dropped.
#[inline]
fn update(reg: &Registry, fam: &Family, labels: &[&str], f: impl Fn(&Series) -> Result<()>) {
    match fam.with_series(labels, &f) {
        Ok(_) => {}
        Err(Error::UnknownSeries) => {
            if let Ok(s) = reg.get_or_create_in(fam, labels, None) {
                let _ = f(&s);
            }
        }
        Err(_) => {}
    }
}

/// The status code of an HTTP/1.x response: the three digits after `HTTP/<version> `,
/// followed by a space, CR, LF or the end. None for anything else.
pub fn status_code(resp: &[u8]) -> Option<&str> {
    let rest = resp.strip_prefix(b"HTTP/")?;
    let sp = rest.iter().take(8).position(|c| *c == b' ')?;
    let code = rest.get(sp + 1..sp + 4)?;
    if !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
        return None;
    }
    match rest.get(sp + 4) {
        None | Some(b' ' | b'\r' | b'\n') => std::str::from_utf8(code).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_on() -> Config {
        Config {
            inflight: true,
            sizes: true,
            http_status: true,
            user: true,
            functions: vec!["getTrades".into(), ".u.upd".into(), "getTrades".into()],
            ..Default::default()
        }
    }

    fn get(r: &Registry, name: &str, labels: &[&str]) -> f64 {
        r.family(name).unwrap().get(labels).unwrap().get()
    }

    fn count(r: &Registry, name: &str, labels: &[&str]) -> u64 {
        match &r.family(name).unwrap().get(labels).unwrap().value {
            crate::metric::Value::Histogram(h) => h.count_sum().0,
            _ => panic!("not a histogram"),
        }
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n\r\n"), Some("200"));
        assert_eq!(status_code(b"HTTP/1.0 404\r\n"), Some("404"));
        assert_eq!(status_code(b"HTTP/1.1 503"), Some("503"));
        assert_eq!(status_code(b"HTTP/1.1 20 OK"), None);
        assert_eq!(status_code(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(status_code(b"HTTP/1.1 099 OK"), None);
        assert_eq!(status_code(b"http/1.1 200 OK"), None);
        assert_eq!(status_code(b"<html>"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn nothing_registered_when_off() {
        let r = Registry::new();
        let m = Middleware::register(&r, &Config::default()).unwrap();
        assert!(!m.config().any() && !m.needs_duration());
        assert_eq!(r.counts().0, 0);
        m.enter(Handler::Pg);
        m.finish(&r, Handler::Pg, 1.0, true, &Extras { user: Some("u"), request_bytes: Some(1.0), ..Default::default() });
        assert_eq!(r.counts().0, 0);
    }

    #[test]
    fn in_flight_up_and_down_never_below_zero() {
        let r = Registry::new();
        let m = Middleware::register(&r, &Config { inflight: true, ..Default::default() }).unwrap();
        m.enter(Handler::Pg);
        m.enter(Handler::Pg);
        assert_eq!(get(&r, IN_FLIGHT, &["sync"]), 2.0);
        m.finish(&r, Handler::Pg, 0.0, false, &Extras::default());
        m.finish(&r, Handler::Pg, 0.0, true, &Extras::default());
        m.finish(&r, Handler::Pg, 0.0, false, &Extras::default());
        assert_eq!(get(&r, IN_FLIGHT, &["sync"]), 0.0);
        assert_eq!(get(&r, IN_FLIGHT, &["timer"]), 0.0);
    }

    #[test]
    fn sizes_status_users_functions() {
        let r = Registry::new();
        let m = Middleware::register(&r, &all_on()).unwrap();
        assert!(m.needs_duration());
        let pg = Extras { request_bytes: Some(30.0), response_bytes: Some(100.0), user: Some("alice"), function: Some("getTrades"), ..Default::default() };
        m.finish(&r, Handler::Pg, 0.5, false, &pg);
        m.finish(&r, Handler::Pg, 0.25, true, &pg);
        assert_eq!(count(&r, REQUEST_SIZE, &["sync"]), 2);
        assert_eq!(get(&r, REQUEST_SIZE, &["sync"]), 60.0);
        assert_eq!(count(&r, RESPONSE_SIZE, &["sync"]), 1, "no response size for a failed request");
        assert_eq!(count(&r, USER_DURATION, &["sync", "alice"]), 2);
        assert_eq!(get(&r, USER_DURATION, &["sync", "alice"]), 0.75);
        assert_eq!(get(&r, USER_ERRORS, &["sync", "alice"]), 1.0);
        assert_eq!(count(&r, FUNCTION_DURATION, &["sync", "getTrades"]), 2);
        assert_eq!(get(&r, FUNCTION_ERRORS, &["sync", "getTrades"]), 1.0);
        // allowed functions exist from the start, for both handlers; others never appear
        assert_eq!(get(&r, FUNCTION_ERRORS, &["async", ".u.upd"]), 0.0);
        m.finish(&r, Handler::Pg, 0.1, false, &Extras { function: Some("other"), ..Default::default() });
        assert_eq!(r.family(FUNCTION_DURATION).unwrap().len(), 4);
        // functions only for pg and ps
        m.finish(&r, Handler::Ws, 0.1, false, &Extras { function: Some("getTrades"), ..Default::default() });
        assert_eq!(count(&r, FUNCTION_DURATION, &["sync", "getTrades"]), 2);
        // HTTP by code and method
        let ok = Extras { http_response: Some(b"HTTP/1.1 200 OK\r\n"), response_bytes: Some(17.0), ..Default::default() };
        m.finish(&r, Handler::Ph, 0.0, false, &ok);
        m.finish(&r, Handler::Pp, 0.0, false, &Extras { http_response: Some(b"HTTP/1.1 404 Not Found\r\n"), ..Default::default() });
        m.finish(&r, Handler::Ph, 0.0, false, &Extras { http_response: Some(b"hello"), ..Default::default() });
        m.finish(&r, Handler::Ph, 0.0, true, &ok);
        m.finish(&r, Handler::Pg, 0.0, false, &ok);
        assert_eq!(get(&r, HTTP_REQUESTS, &["200", "GET"]), 1.0);
        assert_eq!(get(&r, HTTP_REQUESTS, &["404", "POST"]), 1.0);
        assert_eq!(get(&r, HTTP_REQUESTS, &["unknown", "GET"]), 1.0);
        assert_eq!(get(&r, HTTP_REQUESTS, &["error", "GET"]), 1.0);
        assert_eq!(r.family(HTTP_REQUESTS).unwrap().len(), 4, "pg is not HTTP");
        assert_eq!(count(&r, RESPONSE_SIZE, &["http_get"]), 1);
        // the timer has no user label
        m.finish(&r, Handler::Ts, 0.0, false, &Extras { user: Some("bob"), ..Default::default() });
        assert!(r.family(USER_DURATION).unwrap().get(&["timer", "bob"]).is_err());
    }

    #[test]
    fn user_series_limit_skips_without_failing() {
        let r = Registry::new();
        r.set_default_series_limit(2).unwrap();
        let m = Middleware::register(&r, &Config { user: true, ..Default::default() }).unwrap();
        for u in ["a", "b", "c", "d"] {
            m.finish(&r, Handler::Pg, 0.1, true, &Extras { user: Some(u), ..Default::default() });
        }
        assert_eq!(r.family(USER_DURATION).unwrap().len(), 2);
        assert_eq!(r.family(USER_ERRORS).unwrap().len(), 2);
        assert_eq!(r.series_limit_hits(), 4, "c and d, each refused by both user families");
    }

    #[test]
    fn registering_again_is_idempotent_and_buckets_validated() {
        let r = Registry::new();
        Middleware::register(&r, &all_on()).unwrap();
        Middleware::register(&r, &all_on()).unwrap();
        let bad = Config { sizes: true, size_buckets: Some(vec![2.0, 1.0]), ..Default::default() };
        assert_eq!(Middleware::register(&r, &bad).unwrap_err(), Error::InvalidBuckets);
        let too_many = Config { functions: (0..3).map(|i| format!("f{i}")).collect(), ..Default::default() };
        let r2 = Registry::new();
        r2.set_default_series_limit(4).unwrap();
        assert_eq!(Middleware::register(&r2, &too_many).unwrap_err(), Error::SeriesLimit);
    }
}
