//! Exports behind the default `.z` handler hooks (q/prom.q): one call per event.

use super::exports::guard;
use super::k::{self, Item};
use crate::defaults::{parse_naming, seconds_since_q_timestamp, Conn, Defaults, Handler, Info, Naming};
use crate::error::{Error, Result};
use crate::registry::global;
use super::qapi::K;
use parking_lot::RwLock;

static DEFAULTS: RwLock<Option<Defaults>> = RwLock::new(None);
/// Whether the hooks record into DEFAULTS: off after an init with `defaults:0b`. The last
/// Defaults is kept even then, because it says which families are the defaults' own
/// (forgetting it would make a later init take them for the user's and skip them).
static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn active() -> bool {
    ACTIVE.load(std::sync::atomic::Ordering::Acquire)
}
/// Output queues per connection (`queueTopN`), with the default metrics.
static SUBSCRIBERS: RwLock<Option<crate::subscribers::Subscribers>> = RwLock::new(None);

/// The per-connection queue series from now on (`None`: off; the old ones' series go).
pub(super) fn use_subscribers(s: Option<crate::subscribers::Subscribers>) {
    let old = std::mem::replace(&mut *SUBSCRIBERS.write(), s);
    if let Some(old) = old {
        old.clear(global());
    }
}

/// `defaults[naming;params;info]`: registers the default families. naming `standard or
/// `kx; params a dictionary of optional `buckets (request-duration histogram bounds),
/// `quantiles and `maxAge (KX mode's summaries), or () for the defaults; info a
/// dictionary with `release`version`os`cores`licence_expiry strings (for kdb_info).
/// Returns the default families left to the user (a symbol list, usually empty): those
/// the user defined before, which the defaults neither register nor update (KX's
/// exporter.q defines all 38 of the `kx` naming, and `kdb_info` as a gauge).
#[no_mangle]
pub extern "C" fn qprom_defaults(naming: K, params: K, info: K) -> K {
    guard(|| {
        let naming = parse_naming(k::text(naming, Error::ConfigType)?)?;
        let params = if k::is_nothing(params) { Vec::new() } else { k::dict_items(params).map_err(|_| Error::ConfigType)? };
        let mut i = Info::default();
        for (key, v) in k::dict_items(info).map_err(|_| Error::ConfigType)? {
            let text = match v {
                Item::K(x) => k::text(x, Error::ConfigType)?.to_string(),
                Item::Sym(s) => s.to_string(),
                Item::Num(n) => n.to_string(),
            };
            match key {
                "release" => i.release = text,
                "version" => i.version = text,
                "os" => i.os = text,
                "cores" => i.cores = text,
                "licence_expiry" => i.licence_expiry = text,
                _ => return Err(Error::ConfigKey),
            }
        }
        let d = register_defaults(naming, &params, &i)?;
        let skipped = k::sym_list(d.skipped().iter().map(String::as_str));
        *DEFAULTS.write() = Some(d);
        ACTIVE.store(true, std::sync::atomic::Ordering::Release);
        Ok(skipped)
    })
}

/// Registers the default families (not yet used by the hooks: see [`use_defaults`]).
/// params: `buckets` (request-duration bounds), `quantiles` and `maxAge` (KX mode's
/// summaries); any other key is refused.
pub(super) fn register_defaults(naming: Naming, params: &[(&str, Item)], i: &Info) -> Result<Defaults> {
    let (mut b, mut quantiles, mut max_age, mut native) = (Vec::new(), None, None, None);
    for (key, v) in params {
        let mut xs = Vec::new();
        match (*key, v) {
            ("buckets", Item::K(x)) => k::nums(*x, &mut b, Error::ParamsType)?,
            ("quantiles", Item::K(x)) => {
                k::nums(*x, &mut xs, Error::ParamsType)?;
                quantiles = Some(xs);
            }
            ("nativeHistograms", v) => native = native_config(v)?,
            ("maxAge", _) => max_age = Some(v.seconds(Error::ConfigType, Error::InvalidWindow, 1e10)?),
            ("buckets" | "quantiles", _) => return Err(Error::ParamsType),
            _ => return Err(Error::ConfigKey),
        }
    }
    let summary = match (quantiles, max_age) {
        (None, None) => None,
        (q, a) => {
            let d = crate::metric::SummaryParams { quantiles: [0.25, 0.5, 0.75].as_slice().into(), ..Default::default() };
            Some(crate::metric::SummaryParams::new(q.as_deref().unwrap_or(&d.quantiles), a.unwrap_or(d.max_age), d.age_buckets)?)
        }
    };
    // The families the defaults registered before are theirs again (not the user's).
    let prev = DEFAULTS.read();
    Defaults::register(global(), naming, (!b.is_empty()).then_some(&b[..]), summary, native, i, prev.as_ref())
}

/// `nativeHistograms`: 1b (the defaults: schema 3, 160 buckets), 0b, or a dictionary of
/// `schema`factor`zeroThreshold`maxBuckets`minReset.
fn native_config(v: &Item) -> Result<Option<crate::metric::NativeParams>> {
    match v {
        Item::K(x) if k::ty(*x) == -1 => Ok(k::boolean(*x).then(Default::default)),
        Item::K(x) if k::ty(*x) == k::XD => {
            let mut n = super::exports::NativeKeys::default();
            for (key, e) in k::dict_items(*x).map_err(|_| Error::ConfigType)? {
                if !n.take(key, &e)? {
                    return Err(Error::ConfigKey);
                }
            }
            Ok(Some(n.params()?))
        }
        _ => Err(Error::ConfigType),
    }
}

/// The default metrics the hooks record into from now on (`None`: hooks do nothing, and
/// the last ones are kept only to recognise their families).
pub(super) fn use_defaults(d: Option<Defaults>) {
    let on = d.is_some();
    if let Some(d) = d {
        *DEFAULTS.write() = Some(d);
    }
    ACTIVE.store(on, std::sync::atomic::Ordering::Release);
}

/// The default on_poll's update: memory from `.Q.w[]` by key, output-queue bytes, and
/// the open connection counts (ipc, websocket) when known.
pub(super) fn sample_into(mem: &[(&str, f64)], queue: Option<f64>, open: Option<(f64, f64)>) -> Result<()> {
    with_defaults(|d| {
        if let Some((ipc, ws)) = open {
            d.set_open(ipc, ws);
        }
        d.sample(mem, queue)
    })
    .map(|_| ())
}

/// `.Q.w[]`'s entries as numbers.
pub(super) fn memory<'a>(w: K) -> Result<Vec<(&'a str, f64)>> {
    let mut mem = Vec::new();
    for (key, v) in k::dict_items(w).map_err(|_| Error::ValueType)? {
        let n = match v {
            Item::Num(n) => n,
            Item::K(x) => k::num(x)?,
            Item::Sym(_) => return Err(Error::ValueType),
        };
        mem.push((key, n));
    }
    Ok(mem)
}

/// Without default metrics (`.prom.init` with `defaults:0b`) the default hooks do nothing.
fn with_defaults(f: impl FnOnce(&Defaults) -> Result<()>) -> Result<K> {
    if !active() {
        return Ok(k::generic_null());
    }
    if let Some(d) = DEFAULTS.read().as_ref() {
        f(d)?;
    }
    Ok(k::generic_null())
}

/// `request[handler;t0;failed]`: handler `pg`ps`ph`pp`ws`ts, t0 the `.z.p` taken by the
/// before hook, failed a boolean.
#[no_mangle]
pub extern "C" fn qprom_request(handler: K, t0: K, failed: K) -> K {
    guard(|| {
        let h = Handler::parse(k::text(handler, Error::ConfigType)?).ok_or(Error::ConfigType)?;
        if k::ty(t0) != -12 || k::ty(failed) != -1 {
            return Err(Error::ValueType);
        }
        let secs = seconds_since_q_timestamp(k::whole_timespan(t0)?);
        record(h, secs, k::boolean(failed));
        Ok(k::generic_null())
    })
}

/// One finished handler call, for the default metrics (nothing without them).
pub(super) fn record(h: Handler, seconds: f64, failed: bool) {
    record_ex(h, seconds, failed, None)
}

/// [`record`], the duration observation carrying `ex` (the `exemplars` middleware).
pub(super) fn record_ex(h: Handler, seconds: f64, failed: bool, ex: Option<&std::sync::Arc<crate::metric::Exemplar>>) {
    if !active() {
        return;
    }
    if let Some(d) = DEFAULTS.read().as_ref() {
        d.request_ex(h, seconds, failed, ex);
    }
}

/// `conn[event]`: `po`pc`wo`wc.
#[no_mangle]
pub extern "C" fn qprom_conn(event: K) -> K {
    guard(|| {
        let c = Conn::parse(k::text(event, Error::ConfigType)?).ok_or(Error::ConfigType)?;
        with_defaults(|d| {
            d.connection(c);
            Ok(())
        })
    })
}

/// `sample[.Q.w[];queueBytes;(ipc;ws)]`: the default on_poll update. The dictionary is
/// read by key; queue bytes and open counts may be `::`.
#[no_mangle]
pub extern "C" fn qprom_sample(w: K, queue: K, open: K) -> K {
    guard(|| {
        let mem = memory(w)?;
        let (q, per) = queues(queue)?;
        let mut counts = Vec::new();
        k::nums(open, &mut counts, Error::ValueType)?;
        let open = match counts[..] {
            [ipc, ws] => Some((ipc, ws)),
            _ => None,
        };
        sample_into(&mem, q, open)?;
        if let (Some(per), Some(s)) = (per, SUBSCRIBERS.read().as_ref()) {
            if active() {
                s.sample(global(), &per)?;
            }
        }
        Ok(k::generic_null())
    })
}

/// Output-queue bytes: `::`, a number (the total), or `sum each .z.W` (handle -> bytes):
/// the total and the bytes per handle.
fn queues(x: K) -> Result<(Option<f64>, Option<Vec<(i64, f64)>>)> {
    match k::ty(x) {
        k::NULL => Ok((None, None)),
        k::XD => {
            let kv = k::kids(x);
            let mut hs = Vec::new();
            k::nums(kv[0], &mut hs, Error::ValueType)?;
            let mut bs = Vec::new();
            k::nums(kv[1], &mut bs, Error::ValueType)?;
            if hs.len() != bs.len() {
                return Err(Error::ValueType);
            }
            let per: Vec<(i64, f64)> = hs.iter().zip(&bs).map(|(h, b)| (*h as i64, *b)).collect();
            Ok((Some(bs.iter().sum()), Some(per)))
        }
        _ => Ok((Some(k::num(x)?), None)),
    }
}

/// `peer[event;handle;user;address]`: a connection opened (`po`wo) or closed (`pc`wc),
/// as `conn` counts it, and who it is: `.z.u` and `.z.a` (an int) at open, for the
/// per-connection queue series.
#[no_mangle]
pub extern "C" fn qprom_peer(event: K, handle: K, user: K, address: K) -> K {
    guard(|| {
        let c = Conn::parse(k::text(event, Error::ConfigType)?).ok_or(Error::ConfigType)?;
        let h = k::whole(handle)?;
        let user = match k::ty(user) {
            k::NULL => "",
            _ => k::text(user, Error::ValueType)?,
        };
        let addr = match k::ty(address) {
            -6 => crate::subscribers::ipv4(k::whole(address)? as i32),
            k::NULL => String::new(),
            _ => return Err(Error::ValueType),
        };
        with_defaults(|d| {
            d.connection(c);
            if let Some(s) = SUBSCRIBERS.read().as_ref() {
                match c {
                    Conn::Po | Conn::Wo => s.open(h, user, &addr),
                    Conn::Pc | Conn::Wc => s.close(global(), h),
                }
            }
            Ok(())
        })
    })
}

const LOGINS: &str = "kdb_logins_total";

/// `login[user;accepted]`: one `.z.pw` answer, counted by user and result (with the
/// default metrics; the user label is bounded by the family's series limit).
#[no_mangle]
pub extern "C" fn qprom_login(user: K, accepted: K) -> K {
    guard(|| {
        let user = k::text(user, Error::ValueType)?;
        if k::ty(accepted) != -1 {
            return Err(Error::ValueType);
        }
        let result = if k::boolean(accepted) { "accepted" } else { "refused" };
        with_defaults(|_| {
            let fam = global().register(&crate::registry::FamilyDesc::new(
                LOGINS,
                crate::metric::MetricType::Counter,
                "Logins checked by .z.pw, by user and result (accepted, refused).",
                &["user", "result"],
            ))?;
            match global().get_or_create_in(&fam, &[user, result], None) {
                Ok(s) => s.inc(1.0),
                // beyond the family's series limit: counted by the registry, not an error
                Err(Error::SeriesLimit) => Ok(()),
                Err(e) => Err(e),
            }
        })
    })
}
