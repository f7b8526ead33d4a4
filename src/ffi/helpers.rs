//! Exports behind the helpers for user code (`.prom.time`, `.prom.obsSince`,
//! `.prom.setToCurrentTime`, `.prom.mirror`; `.prom.countErrors` and
//! `.prom.trackInprogress` need only the store's inc/dec) and the handler middleware
//! (`.prom.init`'s `inflight` `sizes` `httpStatus` `user` `functions` keys). Each helper
//! costs one export call; a finished request costs one, whatever middleware is on.

use super::exports::guard;
use super::exports::on_series;
use super::instrument;
use super::k::{self, Item};
use crate::defaults::Handler;
use crate::error::{Error, Result};
use crate::metric::Value;
use crate::middleware::{Config, Extras, Middleware};
use crate::registry::{global, unix_now, Registry};
use super::qapi::K;
use parking_lot::RwLock;

static MIDDLEWARE: RwLock<Option<Middleware>> = RwLock::new(None);

/// 2000.01.01 (q's epoch) in unix seconds.
const Q_EPOCH_UNIX_SECS: i64 = 946_684_800;
const KB: i8 = 1;
const KP: i8 = -12;

fn reg() -> &'static Registry {
    global()
}

/// Nanoseconds since 2000.01.01 of a timestamp atom; nulls and infinities refused.
fn timestamp(x: K, err: Error) -> Result<i64> {
    if k::ty(x) != KP {
        return Err(err);
    }
    let ns = k::whole_timespan(x)?;
    if ns == i64::MAX || ns == -i64::MAX {
        return Err(Error::NotFinite);
    }
    Ok(ns)
}

fn q_timestamp_to_unix(ns: i64) -> f64 {
    (ns.div_euclid(1_000_000_000) + Q_EPOCH_UNIX_SECS) as f64 + ns.rem_euclid(1_000_000_000) as f64 / 1e9
}

fn clamp_seconds(s: f64) -> f64 {
    if s.is_finite() {
        s.max(0.0)
    } else {
        0.0
    }
}

// ---- helpers for user code -------------------------------------------------------------

/// `.prom.time` / `.prom.obsSince[metric;labels;t0]`: seconds from `t0` (a `.z.p`) to
/// now, observed in a histogram or summary, or set on a gauge (as the Python client's
/// `Gauge.time()`). A negative duration (the clock stepped back) counts as 0.
#[no_mangle]
pub extern "C" fn qprom_elapsed(t: K, labels: K, t0: K) -> K {
    guard(|| {
        let secs = clamp_seconds(crate::defaults::seconds_since_q_timestamp(timestamp(t0, Error::TimestampType)?));
        on_series(t, labels, true, |s| match s.value {
            Value::Histogram(_) | Value::Summary(_) => s.observe(secs),
            Value::Gauge(_) => s.set(secs),
            _ => Err(Error::WrongType),
        })?;
        Ok(k::generic_null())
    })
}

/// `.prom.setToCurrentTime[metric;labels]`: a gauge set to now, in unix seconds.
#[no_mangle]
pub extern "C" fn qprom_set_now(t: K, labels: K) -> K {
    guard(|| {
        on_series(t, labels, true, |s| match s.value {
            Value::Gauge(_) => s.set(unix_now()),
            _ => Err(Error::WrongType),
        })?;
        Ok(k::generic_null())
    })
}

/// `.prom.mirror[metric;labels;value;created]`: a counter set to a count kept elsewhere.
/// A value lower than the current one is a reset, never a decrease: `_created` moves to
/// `created` (a timestamp), or to now when `created` is `::`. A given `created` is
/// always applied. Longs stay exact above 2^53.
#[no_mangle]
pub extern "C" fn qprom_mirror(t: K, labels: K, v: K, created: K) -> K {
    guard(|| {
        let exact = k::exact_u64(v);
        let x = k::num(v)?;
        let created = match k::ty(created) {
            k::NULL => None,
            _ => Some(q_timestamp_to_unix(timestamp(created, Error::CreatedType)?)),
        };
        on_series(t, labels, true, |s| {
            if !matches!(s.value, Value::Counter(_)) {
                return Err(Error::WrongType);
            }
            match exact {
                Some(n) => s.set_u64(n)?,
                None => s.set(x)?,
            }
            if let Some(c) = created {
                s.set_created(c);
            }
            Ok(())
        })?;
        Ok(k::generic_null())
    })
}

/// What `.prom.time`, `.prom.countErrors(Like)` and `.prom.trackInprogress` do around the
/// user's function (prom.q's `.prom.i.run` applies it between [`qprom_around_before`]
/// and [`qprom_around_after`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Around {
    Time,
    CountErrors,
    TrackInprogress,
}

impl Around {
    fn parse(k: K) -> Result<Around> {
        match k::text(k, Error::HelperKind)? {
            "time" => Ok(Around::Time),
            "countErrors" => Ok(Around::CountErrors),
            "trackInprogress" => Ok(Around::TrackInprogress),
            _ => Err(Error::HelperKind),
        }
    }
    fn hook(self) -> &'static str {
        match self {
            Around::Time => "time",
            Around::CountErrors => "countErrors",
            Around::TrackInprogress => "trackInprogress",
        }
    }
}

/// Durations of `.prom.time` come from a monotonic clock (a wall-clock step during the
/// call does not distort them): nanoseconds since the first use, kept in q as a long.
fn mono_ns() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_nanos().min(i64::MAX as u128) as i64
}

/// `before[kind;metric;labels]` -> state: `time`: the start (a long, monotonic ns);
/// `trackInprogress`: the gauge +1 (a refusal signals, and f does not run);
/// `countErrors`: nothing. The target is checked here, before f runs.
#[no_mangle]
pub extern "C" fn qprom_around_before(kind: K, t: K, labels: K) -> K {
    guard(|| {
        match Around::parse(kind)? {
            Around::Time => {
                on_series(t, labels, true, |s| match s.value {
                    Value::Histogram(_) | Value::Summary(_) | Value::Gauge(_) => Ok(()),
                    _ => Err(Error::WrongType),
                })?;
                Ok(k::long(mono_ns()))
            }
            Around::TrackInprogress => {
                on_series(t, labels, true, |s| match s.value {
                    Value::Gauge(_) => s.inc(1.0),
                    _ => Err(Error::WrongType),
                })?;
                Ok(k::generic_null())
            }
            Around::CountErrors => {
                on_series(t, labels, true, |s| match s.value {
                    Value::Counter(_) | Value::Gauge(_) => Ok(()),
                    _ => Err(Error::WrongType),
                })?;
                Ok(k::generic_null())
            }
        }
    })
}

/// `after[kind;metric;labels;state;ok;matched]`: the update once f returned (ok 1b) or
/// signalled (ok 0b; matched: whether countErrorsLike's pattern matched its error).
/// `time`: seconds since state observed (histogram, summary) or set (gauge), either way;
/// `countErrors`: +1 when f signalled and matched; `trackInprogress`: the gauge -1.
/// After a success a refused update signals, as any `.prom` update; after f's error it
/// is counted in `qprom_hook_errors_total{hook}` instead, so f's error is what q sees.
#[no_mangle]
pub extern "C" fn qprom_around_after(kind: K, t: K, labels: K, state: K, ok: K, matched: K) -> K {
    guard(|| {
        let kind = Around::parse(kind)?;
        if k::ty(ok) != -KB || k::ty(matched) != -KB {
            return Err(Error::ValueType);
        }
        let (ok, matched) = (k::boolean(ok), k::boolean(matched));
        let update = || -> Result<()> {
            match kind {
                Around::Time => {
                    let t0 = k::whole(state).map_err(|_| Error::TimestampType)?;
                    let secs = clamp_seconds((mono_ns() - t0) as f64 / 1e9);
                    on_series(t, labels, true, |s| match s.value {
                        Value::Histogram(_) | Value::Summary(_) => s.observe(secs),
                        Value::Gauge(_) => s.set(secs),
                        _ => Err(Error::WrongType),
                    })
                }
                Around::CountErrors if !ok && matched => on_series(t, labels, true, |s| s.inc(1.0)),
                Around::CountErrors => Ok(()),
                Around::TrackInprogress => on_series(t, labels, true, |s| s.dec(1.0)),
            }
        };
        match update() {
            Err(e) if ok => Err(e),
            Err(_) => {
                super::lifecycle::count_hook_error(kind.hook())?;
                Ok(k::generic_null())
            }
            Ok(()) => Ok(k::generic_null()),
        }
    })
}

// ---- handler middleware ----------------------------------------------------------------

/// The items of a vector of one-byte items (boolean, byte or char: types 1, 4, 10) as
/// raw bytes; empty for anything else.
fn bytes<'a>(x: K) -> &'a [u8] {
    if !matches!(k::ty(x), KB | 4 | k::KC) {
        return &[];
    }
    let n = k::len(x);
    // SAFETY: x is a boolean, byte or char vector (checked above): n one-byte items
    // stored contiguously from G0, borrowed for the duration of the call.
    unsafe { std::slice::from_raw_parts((*x).value.list.G0.as_ptr(), n) }
}


fn numbers(v: &Item) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    match v {
        Item::K(x) => k::nums(*x, &mut out, Error::ConfigType)?,
        Item::Num(n) => out.push(*n),
        Item::Sym(_) => return Err(Error::ConfigType),
    }
    Ok(out)
}

/// The middleware configuration from a dictionary (values a general list, a boolean
/// vector, or any vector `dict_items` reads); `::` or an empty dictionary is all off.
fn parse_config(d: K) -> Result<Config> {
    let mut c = Config::default();
    if k::ty(d) == k::NULL {
        return Ok(c);
    }
    if k::ty(d) != k::XD {
        return Err(Error::ConfigType);
    }
    let kv = k::kids(d);
    let (keys, vals) = (kv[0], kv[1]);
    if k::len(keys) == 0 && k::len(vals) == 0 {
        return Ok(c);
    }
    if k::ty(keys) != k::KS || k::len(keys) != k::len(vals) {
        return Err(Error::ConfigType);
    }
    if k::ty(vals) == KB {
        for (key, b) in k::syms(keys).iter().zip(bytes(vals)) {
            let b = *b != 0;
            match k::sym_text(*key)? {
                "inflight" => c.inflight = b,
                "sizes" => c.sizes = b,
                "httpStatus" => c.http_status = b,
                "user" => c.user = b,
                "sizeBuckets" | "buckets" | "functions" => return Err(Error::ConfigType),
                _ => return Err(Error::ConfigKey),
            }
        }
        return Ok(c);
    }
    config_from_items(&k::dict_items(d).map_err(|_| Error::ConfigType)?)
}

/// The middleware configuration from the entries of a dictionary; any other key is refused.
pub(super) fn config_from_items(items: &[(&str, Item)]) -> Result<Config> {
    let mut c = Config::default();
    for (key, v) in items {
        let v = *v;
        match *key {
            "inflight" => c.inflight = v.flag()?,
            "sizes" => c.sizes = v.flag()?,
            "httpStatus" => c.http_status = v.flag()?,
            "user" => c.user = v.flag()?,
            "exemplars" => c.exemplars = v.flag()?,
            "sizeBuckets" => c.size_buckets = Some(numbers(&v)?),
            "buckets" => c.duration_buckets = Some(numbers(&v)?),
            "functions" => {
                c.functions = match v {
                    Item::Sym(s) => vec![s.to_string()],
                    Item::K(x) => k::label_names(x).map_err(|_| Error::ConfigType)?.into_iter().map(String::from).collect(),
                    Item::Num(_) => return Err(Error::ConfigType),
                }
            }
            _ => return Err(Error::ConfigKey),
        }
    }
    Ok(c)
}

/// `middleware[config]` (at `.prom.init`): registers the families the configuration
/// switches on and keeps them for the hooks. Keys: `inflight` `sizes` `httpStatus`
/// `user` (booleans), `sizeBuckets` `buckets` (numbers), `functions` (symbols). Returns
/// `` `inflight`sizes`any!(…) ``: what the q hooks must do (bump in-flight at `before_X`;
/// compute `-22!` sizes; call `qprom_request_ex` rather than `qprom_request`).
#[no_mangle]
pub extern "C" fn qprom_middleware(config: K) -> K {
    guard(|| {
        let c = parse_config(config)?;
        let (m, flags) = register_middleware(&c)?;
        use_middleware(Some(m));
        let flags = flags.map(|b| b as u8);
        Ok(k::dict(k::sym_list(["inflight", "sizes", "any"].into_iter()), k::vector(KB, &flags)))
    })
}

/// Registers the families `c` switches on; what the q hooks must do:
/// (bump in-flight at before_X, compute -22! sizes, call request_ex).
pub(super) fn register_middleware(c: &Config) -> Result<(Middleware, [bool; 3])> {
    let m = Middleware::register(reg(), c)?;
    Ok((m, [c.inflight, c.sizes, c.any()]))
}

/// The middleware the hooks record into from now on.
pub(super) fn use_middleware(m: Option<Middleware>) {
    *MIDDLEWARE.write() = m;
}

fn handler(h: K) -> Result<Handler> {
    Handler::parse(k::text(h, Error::ConfigType)?).ok_or(Error::ConfigType)
}

/// `enter[handler]` (`before_X`, with `inflight` on): one more request in flight.
#[no_mangle]
pub extern "C" fn qprom_enter(h: K) -> K {
    guard(|| {
        let h = handler(h)?;
        if let Some(m) = MIDDLEWARE.read().as_ref() {
            m.enter(h);
        }
        Ok(k::generic_null())
    })
}

/// Length in bytes of text: a char or byte vector, a symbol, a char atom; 0 otherwise.
fn text_len(x: K) -> usize {
    match k::ty(x) {
        k::KC | 4 => k::len(x),
        -10 | -4 => 1,
        -11 => k::text(x, Error::ValueType).map_or(0, str::len),
        _ => 0,
    }
}

/// A size: a non-negative whole number (`-22!`), the length of a string or byte vector,
/// or of an HTTP request `(requestText;headerDict)` (text + header names and values).
/// Anything else (`::`, a null from a trapped `-22!`) is no size.
fn size(x: K) -> Option<f64> {
    match k::ty(x) {
        -7..=-5 => k::whole(x).ok().filter(|n| *n >= 0).map(|n| n as f64),
        k::KC | 4 => Some(k::len(x) as f64),
        k::KG if k::len(x) == 2 && k::ty(k::kids(x)[0]) == k::KC => {
            let (text, headers) = (k::kids(x)[0], k::kids(x)[1]);
            let mut n = k::len(text);
            if k::ty(headers) == k::XD {
                let kv = k::kids(headers);
                if k::ty(kv[0]) == k::KS {
                    n += k::syms(kv[0]).iter().map(|s| k::sym_text(*s).map_or(0, str::len)).sum::<usize>();
                }
                n += match k::ty(kv[1]) {
                    k::KG => k::kids(kv[1]).iter().map(|v| text_len(*v)).sum(),
                    k::KS => k::syms(kv[1]).iter().map(|s| k::sym_text(*s).map_or(0, str::len)).sum(),
                    _ => 0,
                };
            }
            Some(n as f64)
        }
        _ => None,
    }
}

/// The bytes of an HTTP response (a string, or a byte vector), not necessarily UTF-8.
fn response_text<'a>(x: K) -> Option<&'a [u8]> {
    matches!(k::ty(x), k::KC | 4).then(|| bytes(x))
}

/// The function an IPC message calls: the symbol itself, or the first item of a
/// `(`fn;args…)` message.
fn called<'a>(m: K) -> Option<&'a str> {
    match k::ty(m) {
        -11 => opt_text(m),
        k::KG if k::len(m) > 0 && k::ty(k::kids(m)[0]) == -11 => opt_text(k::kids(m)[0]),
        _ => None,
    }
}

/// The path of an HTTP request handed to `.z.ph`/`.z.pp` (`(text;headers)`, the text
/// starting with the path without its `/`): up to the first `?`, space or line end.
fn http_path<'a>(req: K) -> Option<&'a str> {
    if k::ty(req) != k::KG || k::len(req) == 0 {
        return None;
    }
    let t = opt_text(k::kids(req)[0])?;
    Some(t.split(['?', ' ', '\r', '\n']).next().unwrap_or(""))
}

/// The exemplar of one request (`exemplars` on): user and function for IPC, the path for
/// HTTP, the user for websockets; none for the timer, or when nothing is known. Labels
/// that would take it past OpenMetrics' 128 characters are left out.
fn request_exemplar(h: Handler, x: &Extras, path: Option<&str>, secs: f64) -> Option<crate::metric::Exemplar> {
    use crate::defaults::Handler::*;
    let candidates: [(&str, Option<&str>); 3] = match h {
        Pg | Ps => [("user", x.user), ("function", x.function), ("path", None)],
        Ph | Pp => [("path", path.map(|p| p.trim_start_matches('/'))), ("user", None), ("function", None)],
        Ws => [("user", x.user), ("function", None), ("path", None)],
        Ts => return None,
    };
    let mut labels: Vec<(Box<str>, Box<str>)> = Vec::new();
    let mut runes = 0;
    for (name, v) in candidates {
        let Some(v) = v else { continue };
        let v = if name == "path" { format!("/{v}") } else { v.to_string() };
        let n = name.len() + v.chars().count();
        if runes + n <= crate::metric::exemplar::MAX_RUNES {
            runes += n;
            labels.push((name.into(), v.into()));
        }
    }
    crate::metric::Exemplar::new(labels, secs, crate::registry::unix_now()).ok()
}

fn opt_text<'a>(x: K) -> Option<&'a str> {
    match k::ty(x) {
        -11 | k::KC => k::text(x, Error::ValueType).ok(),
        _ => None,
    }
}

/// `request_ex[handler;t0;failed;req;resp;user;fn]`: what `qprom_request` records (one
/// call of a wrapped handler), plus the middleware: in flight down, request and response
/// sizes, the HTTP status code, the user's and the function's families. `req` and
/// `resp`: a size (long) or the object itself (string, byte vector, HTTP request), or
/// `::`; `user`: `.z.u` or `::`; `fn`: a symbol or the `(`fn;args…)` message itself, or
/// `::`. Extras a handler does not have are ignored (IPC: sizes and function, no
/// response after an error or for async; HTTP: texts; websocket: the message; timer:
/// none), as are extras of another type; handler, t0 and failed are checked as
/// `qprom_request` checks them.
#[no_mangle]
pub extern "C" fn qprom_request_ex(h: K, t0: K, failed: K, req: K, resp: K, user: K, function: K) -> K {
    guard(|| {
        let hd = handler(h)?;
        if k::ty(t0) != KP || k::ty(failed) != -KB {
            return Err(Error::ValueType);
        }
        let t0_ns = k::whole_timespan(t0)?;
        let failed_b = k::boolean(failed);
        // What each handler's extras are is decided here, so that prom.q passes the same
        // arguments for all: IPC has -22! sizes (none for an error, none for an async
        // result q drops) and a function; HTTP its texts; a timer nothing.
        use crate::defaults::Handler::*;
        let (ipc, http) = (matches!(hd, Pg | Ps), matches!(hd, Ph | Pp));
        let mut x = Extras {
            request_bytes: if hd == Ts { None } else { size(req) },
            response_bytes: if hd == Pg && !failed_b || http { size(resp) } else { None },
            http_response: if http { response_text(resp) } else { None },
            user: if hd == Ts { None } else { opt_text(user) },
            function: if ipc { called(function) } else { None },
            exemplar: None,
        };
        let secs = clamp_seconds(crate::defaults::seconds_since_q_timestamp(t0_ns));
        let mw = MIDDLEWARE.read();
        if mw.as_ref().is_some_and(|m| m.config().exemplars) {
            x.exemplar = request_exemplar(hd, &x, if http { http_path(req) } else { None }, secs).map(std::sync::Arc::new);
        }
        // The default recording, then the middleware, from one clock reading.
        instrument::record_ex(hd, secs, failed_b, x.exemplar.as_ref());
        if let Some(m) = mw.as_ref() {
            m.finish(reg(), hd, secs, failed_b, &x);
        }
        Ok(k::generic_null())
    })
}
