//! `.prom.init` and `.prom.stop`, each decided here in one call, so that q/prom.q keeps
//! only the wrapper lambdas and the `.z` assignments (and nothing that can change type
//! under it, as a q dictionary of handlers did).
//!
//! `qprom_init` checks and normalises the whole configuration before it changes
//! anything; then it makes every effect (series limit, default and middleware families,
//! listener, file_sd file) or, when one fails, undoes the ones made, so a failed init
//! leaves the process as it was. It keeps each wrapped handler's original and installed
//! object (with a reference of its own) and tells q which `.z` names to assign.
//! `qprom_restore` stops everything and tells q how to put each handler back: assign the
//! original, expunge one that was undefined, and leave alone one the user replaced after
//! init (recognised by object identity, not by value).
//! `qprom_cli` turns exporter.q's `-prom.<key>` options into an init configuration, one
//! parser per key, so that every key is accepted from the command line.

use super::exports::guard;
use super::k::{self, Item, KG};
use super::{helpers, instrument, server};
use crate::defaults::{parse_naming, Info, Naming};
use crate::error::{Error, Result};
use crate::initconfig::{self as ic, Cli, HANDLERS, LISTEN_KEYS, MIDDLEWARE_KEYS, Z_NAMES};
use crate::metric::MetricType;
use crate::registry::{global, FamilyDesc};
use crate::textfile;
use super::qapi::native::{kb, r0, r1};
use super::qapi::K;
use parking_lot::{Mutex, RwLock};

/// A q object kept past the call that passed it: one reference of ours, dropped with it.
struct Held(K);

impl Held {
    fn keep(x: K) -> Held {
        // SAFETY: x is a live object q passed in; r1 adds the reference we keep.
        unsafe { r1(x) };
        Held(x)
    }
    /// A new reference for a result handed to q.
    fn share(&self) -> K {
        // SAFETY: self.0 is alive (we hold a reference); q owns the one added here.
        unsafe { r1(self.0) }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: releases the reference taken in `keep`, on q's main thread (init and
        // stop are only called there; the state is never dropped elsewhere).
        unsafe { r0(self.0) };
    }
}

// SAFETY: a Held is created, read and dropped only by init/restore, which q calls on its
// main thread; the Mutex below only satisfies the static's Sync bound.
unsafe impl Send for Held {}

struct Installed {
    index: usize,
    original: Option<Held>,
    wrapper: Held,
}

struct Running {
    port: Option<u16>,
    /// What the q hooks must do: in-flight at before_X, -22! sizes, request_ex.
    flags: [bool; 3],
    handlers: Vec<Installed>,
}

static STATE: Mutex<Option<Running>> = Mutex::new(None);
/// The metrics path as `.z.ph` sees it (no leading slash); read on any thread.
static QPATH: RwLock<String> = RwLock::new(String::new());

/// The metrics path (with its slash): `/metrics` unless init was given another.
/// Called on every `.z.ph` request, so the path is lent, not copied.
fn with_metrics_path<R>(f: impl FnOnce(&str) -> R) -> R {
    let p = QPATH.read();
    f(if p.is_empty() { "/metrics" } else { p.as_str() })
}

/// One handler as q has it now: `(1b;value)` or `(0b;::)`.
fn current(cur: K) -> Result<Vec<Option<K>>> {
    if k::ty(cur) != KG || k::len(cur) != HANDLERS.len() {
        return Err(Error::HandlerState);
    }
    k::kids(cur)
        .iter()
        .map(|p| {
            if k::ty(*p) != KG || k::len(*p) != 2 || k::ty(k::kids(*p)[0]) != -1 {
                return Err(Error::HandlerState);
            }
            let kv = k::kids(*p);
            Ok(k::boolean(kv[0]).then_some(kv[1]))
        })
        .collect()
}

/// The configuration, checked and split by what consumes it; nothing changed yet.
struct InitConfig<'a> {
    http: Option<crate::http::HttpConfig>,
    path: String,
    naming: Naming,
    default_params: Vec<(&'a str, Item<'a>)>,
    middleware: crate::middleware::Config,
    handlers: Vec<&'static str>,
    limit: Option<usize>,
    queue_top: usize,
    lag_interval: Option<std::time::Duration>,
    defaults: bool,
    file_sd: Option<(&'a str, Vec<(&'a str, &'a str)>)>,
    bind: String,
}

fn entries<'a>(cfg: K) -> Result<Vec<(&'a str, Item<'a>)>> {
    match k::ty(cfg) {
        k::NULL => Ok(Vec::new()),
        k::XD if k::len(k::kids(cfg)[0]) == 0 => Ok(Vec::new()),
        k::XD => k::dict_items(cfg).map_err(|_| Error::ConfigKeys),
        _ => Err(Error::ConfigNotDict),
    }
}

fn parse_config<'a>(cfg: K) -> Result<InitConfig<'a>> {
    let items = entries(cfg)?;
    let (mut listen, mut defaults_p, mut mw) = (Vec::new(), Vec::new(), Vec::new());
    let mut c = InitConfig {
        http: None,
        path: "/metrics".into(),
        naming: Naming::Standard,
        default_params: Vec::new(),
        middleware: Default::default(),
        handlers: HANDLERS[..ic::CHOOSABLE].to_vec(),
        limit: None,
        queue_top: crate::subscribers::DEFAULT_TOP,
        lag_interval: Some(std::time::Duration::from_secs_f64(crate::lag::DEFAULT_INTERVAL)),
        defaults: true,
        file_sd: None,
        bind: String::new(),
    };
    let mut port = false;
    for (i, (key, v)) in items.iter().enumerate() {
        if items[..i].iter().any(|(k2, _)| k2 == key) {
            return Err(Error::ConfigKeys);
        }
        match *key {
            "path" => {
                c.path = ic::normalise_path(v.text(Error::ConfigType)?);
            }
            "port" => {
                port = true;
                listen.push((*key, *v));
            }
            "bind" => {
                c.bind = v.text(Error::ConfigType)?.to_string();
                listen.push((*key, *v));
            }
            key if LISTEN_KEYS.contains(&key) => listen.push((key, *v)),
            "buckets" => {
                defaults_p.push((*key, *v));
                mw.push((*key, *v));
            }
            key if MIDDLEWARE_KEYS.contains(&key) => mw.push((key, *v)),
            "naming" => c.naming = parse_naming(v.text(Error::ConfigType)?)?,
            "quantiles" | "maxAge" | "nativeHistograms" => defaults_p.push((*key, *v)),
            "handlers" => c.handlers = handlers(v)?,
            "limit" => {
                let n = v.count(Error::ConfigType)?;
                c.limit = Some(usize::try_from(n).ok().filter(|n| *n >= 1).ok_or(Error::InvalidSeriesLimit)?);
            }
            "defaults" => c.defaults = v.flag()?,
            "queueTopN" => {
                c.queue_top = usize::try_from(v.count(Error::ConfigType)?).ok().filter(|n| *n <= 1000).ok_or(Error::ConfigRange)?
            }
            "lagProbe" => {
                c.lag_interval = match v {
                    Item::Num(n) if *n == 0.0 => None,
                    Item::K(x) if k::ty(*x) != -16 && k::num(*x).ok() == Some(0.0) => None,
                    v => Some(v.seconds(Error::ConfigType, Error::ConfigRange, 86_400.0)?),
                }
            }
            "fileSd" => c.file_sd = Some(file_sd(v)?),
            _ => return Err(Error::ConfigKey),
        }
    }
    // Listener settings are checked even without `port`, so a wrong one never waits
    // for the day a port is added to be reported.
    let mut http = server::http_config_items(&listen)?;
    http.path = c.path.clone();
    c.http = port.then_some(http);
    c.middleware = helpers::config_from_items(&mw)?;
    c.default_params = defaults_p;
    Ok(c)
}


/// A symbol or symbol list, each among the ten handlers, none twice.
fn handlers(v: &Item) -> Result<Vec<&'static str>> {
    let names: Vec<&str> = match v {
        Item::Sym(s) => vec![s],
        Item::K(x) if k::ty(*x) == -11 => vec![k::text(*x, Error::HandlersList)?],
        Item::K(x) if k::ty(*x) == k::KS => k::syms(*x).iter().map(|s| k::sym_text(*s)).collect::<Result<_>>()?,
        _ => return Err(Error::HandlersList),
    };
    let mut out: Vec<&'static str> = Vec::with_capacity(names.len());
    for n in names {
        let h = HANDLERS[..ic::CHOOSABLE].iter().find(|h| **h == n).ok_or(Error::HandlersList)?;
        if out.contains(h) {
            return Err(Error::HandlersList);
        }
        out.push(h);
    }
    Ok(out)
}

/// `fileSd`: a directory (symbol or string), or `` `dir`labels!(dir;labelDict) ``.
fn file_sd<'a>(v: &Item<'a>) -> Result<(&'a str, Vec<(&'a str, &'a str)>)> {
    match v {
        Item::K(x) if k::ty(*x) == k::XD => {
            let (mut dir, mut labels) = (None, Vec::new());
            for (key, e) in k::dict_items(*x).map_err(|_| Error::SdConfig)? {
                match key {
                    "dir" => dir = Some(e.text(Error::SdConfig)?),
                    "labels" => {
                        let Item::K(d) = e else { return Err(Error::SdLabels) };
                        if k::ty(d) != k::XD {
                            return Err(Error::SdLabels);
                        }
                        if k::len(k::kids(d)[0]) > 0 {
                            for (n, l) in k::dict_items(d).map_err(|_| Error::SdLabels)? {
                                labels.push((n, l.text(Error::SdLabels)?));
                            }
                        }
                    }
                    _ => return Err(Error::SdConfig),
                }
            }
            Ok((dir.ok_or(Error::SdConfig)?, labels))
        }
        v => Ok((v.text(Error::SdConfig)?, Vec::new())),
    }
}

/// What q tells init about itself (`.prom.i.env[]` in prom.q).
struct Env<'a> {
    memory: Vec<(&'a str, f64)>,
    connections: f64,
    host: &'a str,
    qport: i64,
    script: &'a str,
    info: Info,
}

fn parse_env<'a>(env: K) -> Result<Env<'a>> {
    let mut e = Env { memory: Vec::new(), connections: 0.0, host: "", qport: 0, script: "", info: Info::default() };
    for (key, v) in k::dict_items(env).map_err(|_| Error::HandlerState)? {
        let x = match v {
            Item::K(x) => x,
            Item::Sym(s) if key == "host" => {
                e.host = s;
                continue;
            }
            Item::Sym(s) if key == "script" => {
                e.script = s;
                continue;
            }
            Item::Sym(s) if key == "o" => {
                e.info.os = s.to_string();
                continue;
            }
            _ => return Err(Error::HandlerState),
        };
        match key {
            "w" => e.memory = instrument::memory(x)?,
            "conns" => e.connections = k::num(x)?,
            "host" => e.host = k::text(x, Error::HandlerState)?,
            "script" => e.script = k::text(x, Error::HandlerState)?,
            "qport" => e.qport = k::whole(x)?,
            "k" => e.info.release = ic::q_date(k::date(x)?),
            "K" => e.info.version = format!("{:.1}", k::num(x)?),
            "o" => e.info.os = k::text(x, Error::HandlerState)?.to_string(),
            "c" => e.info.cores = k::whole(x)?.to_string(),
            // .z.l: license strings, the expiry date second; () without a licence.
            "l" => {
                e.info.licence_expiry = match k::ty(x) {
                    KG if k::len(x) > 1 => k::text(k::kids(x)[1], Error::HandlerState).unwrap_or("").to_string(),
                    _ => String::new(),
                }
            }
            _ => return Err(Error::HandlerState),
        }
    }
    Ok(e)
}

/// The effects made so far by an init, undone in reverse when a later one fails.
struct Undo {
    families: Vec<String>,
    limit: usize,
    listener: bool,
    probe: bool,
}

impl Undo {
    fn begin() -> Undo {
        let mut families = Vec::new();
        global().for_each_family(|f| families.push(f.name().to_string()));
        Undo { families, limit: global().default_series_limit(), listener: false, probe: false }
    }
    fn run(self) {
        if self.probe {
            super::probe::stop();
        }
        if self.listener {
            server::stop_listener();
        }
        let mut new = Vec::new();
        global().for_each_family(|f| {
            if !self.families.iter().any(|n| n == f.name()) {
                new.push(f.name().to_string());
            }
        });
        for n in new {
            let _ = global().unregister(&n);
        }
        let _ = global().set_default_series_limit(self.limit);
    }
}

const HOOK_ERRORS: &str = "qprom_hook_errors_total";

fn hook_errors_family() -> Result<std::sync::Arc<crate::registry::Family>> {
    global().register(&FamilyDesc::new(HOOK_ERRORS, MetricType::Counter, "Errors signalled by .prom hooks, by hook.", &["hook"]))
}

enum Failed {
    Arg(Error),
    Listener(crate::http::StartError),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed::Arg(e)
    }
}

fn krr_failed(f: Failed) -> Result<K> {
    match f {
        Failed::Arg(e) => Err(e),
        // SAFETY: krr keeps the pointer; StartError messages are 'static.
        Failed::Listener(e) => Ok(unsafe { super::qapi::native::krr(e.message().as_ptr()) }),
    }
}

/// `init[cfg;cur;wrappers;env;pollfn]` -> `` `port`z`f`inflight`sizes`mw!(…) ``.
/// cfg: `.prom.init`'s argument. cur: the 12 handlers' `(defined;value)` pairs, wrappers
/// the 12 wrappers prom.q built (both in [`HANDLERS`] order). env: `.prom.i.env[]`.
/// pollfn: what the listener's scrapes run on q's main thread. q assigns `f[i]` to
/// `z[i]`; port is the listener's or `::`. A second init while running changes nothing
/// and returns the same port and flags, with nothing to assign.
#[no_mangle]
pub extern "C" fn qprom_init(cfg: K, cur: K, wrappers: K, env: K, pollfn: K) -> K {
    guard(|| {
        let c = parse_config(cfg)?;
        if let Some(r) = STATE.lock().as_ref() {
            return Ok(init_result(r.port, r.flags, Vec::new(), Vec::new()));
        }
        let cur = current(cur)?;
        if k::ty(wrappers) != KG || k::len(wrappers) != HANDLERS.len() {
            return Err(Error::HandlerState);
        }
        let env = parse_env(env)?;
        let mut undo = Undo::begin();
        match effects(&c, &env, pollfn, &mut undo) {
            Ok(done) => {
                let flags = done.flags;
                instrument::use_defaults(done.defaults);
                instrument::use_subscribers(done.subscribers);
                helpers::use_middleware(Some(done.middleware));
                // Connections opened before init: all counted as IPC (q does not say
                // which are websockets). The values were checked when env was read.
                let _ = instrument::sample_into(&env.memory, None, Some((env.connections, 0.0)));
                *QPATH.write() = c.path.clone();
                let ws = k::kids(wrappers);
                let mut installed = Vec::new();
                for (i, h) in HANDLERS.iter().enumerate() {
                    let chosen = *h == "exit" || c.handlers.contains(h);
                    if chosen && (cur[i].is_some() || ic::wrap_when_undefined(h)) {
                        installed.push(Installed { index: i, original: cur[i].map(Held::keep), wrapper: Held::keep(ws[i]) });
                    }
                }
                let z = installed.iter().map(|s| Z_NAMES[s.index]).collect();
                let f = installed.iter().map(|s| s.wrapper.share()).collect();
                *STATE.lock() = Some(Running { port: done.port, flags, handlers: installed });
                Ok(init_result(done.port, flags, z, f))
            }
            Err(e) => {
                undo.run();
                krr_failed(e)
            }
        }
    })
}

struct Done {
    port: Option<u16>,
    flags: [bool; 3],
    defaults: Option<crate::defaults::Defaults>,
    subscribers: Option<crate::subscribers::Subscribers>,
    middleware: crate::middleware::Middleware,
}

/// Every effect of an init, in an order where each failure is undone by [`Undo`].
fn effects(c: &InitConfig, env: &Env, pollfn: K, undo: &mut Undo) -> std::result::Result<Done, Failed> {
    if let Some(n) = c.limit {
        global().set_default_series_limit(n)?;
    }
    let defaults = match c.defaults {
        true => Some(instrument::register_defaults(c.naming, &c.default_params, &env.info)?),
        false => None,
    };
    let subscribers = match c.defaults {
        true => crate::subscribers::Subscribers::register(global(), c.queue_top)?,
        false => None,
    };
    let lag = match (c.defaults, c.lag_interval) {
        (true, Some(i)) => Some((crate::lag::LagProbe::register(global())?, i)),
        _ => None,
    };
    hook_errors_family()?;
    let (middleware, flags) = helpers::register_middleware(&c.middleware)?;
    let port = match &c.http {
        Some(h) => {
            let p = server::start_listener(h.clone(), pollfn)?.map_err(Failed::Listener)?;
            undo.listener = true;
            Some(p)
        }
        None => None,
    };
    if let Some((probe, interval)) = lag {
        super::probe::start(probe, interval)?;
        undo.probe = true;
    }
    if let Some((dir, labels)) = &c.file_sd {
        let p = ic::sd_port(port, env.qport).ok_or(Error::SdTarget)?.to_string();
        let host = ic::sd_host(&c.bind, env.host);
        let mut l: Vec<(&str, &str)> =
            vec![("job", "kdb"), ("instance_name", ic::script_name(env.script)), ("host", host), ("port", &p)];
        for (n, v) in labels {
            match l.iter_mut().find(|(m, _)| m == n) {
                Some(e) => e.1 = v,
                None => l.push((n, v)),
            }
        }
        textfile::sd_register(dir, &format!("{host}:{p}"), &l)?;
    }
    Ok(Done { port, flags, defaults, subscribers, middleware })
}

fn init_result(port: Option<u16>, flags: [bool; 3], z: Vec<&str>, f: Vec<K>) -> K {
    let port = match port {
        Some(p) => k::long(p as i64),
        None => k::identity(),
    };
    let b = |x: bool| {
        // SAFETY: plain constructor; q owns the atom.
        unsafe { kb(x as i32) }
    };
    let keys = ["port", "z", "f", "inflight", "sizes", "mw"];
    let vals = vec![port, k::sym_list(z.into_iter()), k::list(f), b(flags[0]), b(flags[1]), b(flags[2])];
    k::dict(k::sym_list(keys.into_iter()), k::list(vals))
}

/// `restore[cur]` -> `` `set`to`expunge!(names;values;names) ``: stops the listener and
/// the poll bridge, removes the file_sd file, forgets the init. q assigns `to[i]` to
/// `set[i]` (originals) and expunges `expunge` (handlers undefined before init); a
/// handler that is no longer the wrapper init installed was replaced by the user since,
/// and is left alone. Nothing to do when not initialised.
#[no_mangle]
pub extern "C" fn qprom_restore(cur: K) -> K {
    guard(|| {
        let cur = current(cur)?;
        super::probe::stop();
        instrument::use_subscribers(None);
        server::stop_listener();
        textfile::sd_remove();
        *QPATH.write() = String::new();
        let (mut set, mut to, mut expunge) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(r) = STATE.lock().take() {
            for s in r.handlers {
                let ours = cur[s.index].is_some_and(|now| k::same(now, s.wrapper.0));
                match (ours, &s.original) {
                    (true, Some(o)) => {
                        set.push(Z_NAMES[s.index]);
                        to.push(o.share());
                    }
                    (true, None) => expunge.push(Z_NAMES[s.index]),
                    (false, _) => {}
                }
            }
        }
        let keys = ["set", "to", "expunge"];
        let vals = vec![k::sym_list(set.into_iter()), k::list(to), k::sym_list(expunge.into_iter())];
        Ok(k::dict(k::sym_list(keys.into_iter()), k::list(vals)))
    })
}

/// `hookerr[hook]`: one more error of a `.prom` hook or helper, counted in
/// `qprom_hook_errors_total{hook}` (created here when missing, so failures before
/// `.prom.init` are counted too).
#[no_mangle]
pub extern "C" fn qprom_hook_error(hook: K) -> K {
    guard(|| {
        count_hook_error(k::text(hook, Error::NameType)?)?;
        Ok(k::generic_null())
    })
}

/// One more failure of the hook or helper `name`.
pub(super) fn count_hook_error(name: &str) -> Result<()> {
    let fam = hook_errors_family()?;
    global().get_or_create_in(&fam, &[name], None)?.inc(1.0)
}

/// `ismetrics[requestText]` -> boolean: whether a `.z.ph` request is for the metrics
/// path (the text before any `?`, as .z.ph gives it, without the leading slash).
#[no_mangle]
pub extern "C" fn qprom_is_metrics(text: K) -> K {
    guard(|| {
        let request = k::text(text, Error::RequestType)?;
        let yes = with_metrics_path(|p| ic::is_metrics_request(request, p));
        // SAFETY: plain constructor; q owns the atom.
        Ok(unsafe { kb(yes as i32) })
    })
}

/// `path[::]` -> string: the metrics path as `.z.ph` sees it (for on_poll's message).
#[no_mangle]
pub extern "C" fn qprom_path(_unused: K) -> K {
    guard(|| Ok(with_metrics_path(|p| k::string(p[1..].as_bytes()))))
}

fn cli_value(kind: Cli, s: &str) -> Result<K> {
    let bad = Error::CliValue;
    let float = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or(bad);
    Ok(match kind {
        Cli::Long => k::long(s.trim().parse::<i64>().map_err(|_| bad)?),
        Cli::Float => k::float(float(s)?),
        Cli::Bool => {
            let v = ic::cli_bool(s).ok_or(bad)?;
            // SAFETY: plain constructor; q owns the atom.
            unsafe { kb(v as i32) }
        }
        Cli::Text => k::string(s.as_bytes()),
        Cli::Sym => k::sym(s.trim()),
        Cli::Syms => k::sym_list(s.split(',').map(str::trim).filter(|t| !t.is_empty()).collect::<Vec<_>>().into_iter()),
        Cli::Floats => {
            let v = s.split(',').map(float).collect::<Result<Vec<f64>>>()?;
            k::vector(k::KF, &v)
        }
        Cli::Htpasswd => htpasswd(s.trim())?,
    })
}

/// `user:hash` lines of an htpasswd file as `` user!hash `` (symbols to strings).
fn htpasswd(path: &str) -> Result<K> {
    let text = std::fs::read_to_string(path.strip_prefix(':').unwrap_or(path)).map_err(|_| Error::HtpasswdFile)?;
    let mut users = Vec::new();
    let mut hashes = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (u, h) = line.split_once(':').ok_or(Error::HtpasswdFile)?;
        users.push(u);
        hashes.push(k::string(h.as_bytes()));
    }
    if users.is_empty() {
        for h in hashes {
            // SAFETY: releases strings made above and not handed to q.
            unsafe { r0(h) };
        }
        return Err(Error::HtpasswdFile);
    }
    Ok(k::dict(k::sym_list(users.into_iter()), k::list(hashes)))
}

/// `cli[.Q.opt .z.x]` -> `` `cfg`unknown`noinit!(config;unknownKeys;bool) ``: the
/// `-prom.<key> value` options as a `.prom.init` configuration (other options ignored).
/// Unknown keys are returned, not signalled, so exporter.q can name the option.
#[no_mangle]
pub extern "C" fn qprom_cli(opts: K) -> K {
    guard(|| {
        let items = entries(opts).map_err(|_| Error::CliValue)?;
        let mut unknown = Vec::new();
        let mut noinit = false;
        let mut parsed: Vec<(&str, Cli, String)> = Vec::new();
        for (key, v) in &items {
            let Some(name) = key.strip_prefix("prom.") else { continue };
            // .Q.opt gives each option's words as a list of strings.
            let words: Vec<&str> = match v {
                Item::K(x) if k::ty(*x) == KG => {
                    k::kids(*x).iter().map(|w| k::text(*w, Error::CliValue)).collect::<Result<_>>()?
                }
                other => vec![other.text(Error::CliValue)?],
            };
            let text = words.join(" ");
            if name == "noinit" {
                noinit = ic::cli_bool(&text).ok_or(Error::CliValue)?;
                continue;
            }
            match ic::cli_kind(name) {
                Some(kind) => parsed.push((name, kind, text)),
                None => unknown.push(name),
            }
        }
        let mut keys = Vec::new();
        let mut vals = Vec::new();
        for (n, kind, text) in &parsed {
            match cli_value(*kind, text) {
                Ok(v) => {
                    keys.push(*n);
                    vals.push(v);
                }
                Err(e) => {
                    for v in vals {
                        // SAFETY: releases values made above and not handed to q.
                        unsafe { r0(v) };
                    }
                    return Err(e);
                }
            }
        }
        let cfg = k::dict(k::sym_list(keys.into_iter()), k::list(vals));
        // SAFETY: plain constructor; q owns the atom.
        let ni = unsafe { kb(noinit as i32) };
        let out = vec![cfg, k::sym_list(unknown.into_iter()), ni];
        Ok(k::dict(k::sym_list(["cfg", "unknown", "noinit"].into_iter()), k::list(out)))
    })
}
