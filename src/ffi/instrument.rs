//! Exports behind the default `.z` handler hooks (q/prom.q): one call per event.

use super::exports::guard;
use super::k::{self, Item};
use crate::defaults::{parse_naming, seconds_since_q_timestamp, Conn, Defaults, Handler, Info};
use crate::error::{Error, Result};
use crate::registry::global;
use super::qapi::K;
use parking_lot::RwLock;

static DEFAULTS: RwLock<Option<Defaults>> = RwLock::new(None);

/// `defaults[naming;params;info]`: registers the default families. naming `standard or
/// `kx; params a dictionary of optional `buckets (request-duration histogram bounds),
/// `quantiles and `maxAge (KX mode's summaries), or () for the defaults; info a
/// dictionary with `release`version`os`cores`licence_expiry strings (for kdb_info).
#[no_mangle]
pub extern "C" fn qprom_defaults(naming: K, params: K, info: K) -> K {
    guard(|| {
        let naming = parse_naming(k::text(naming, Error::ConfigType)?)?;
        let (mut b, mut quantiles, mut max_age) = (Vec::new(), None, None);
        if !k::is_nothing(params) {
            for (key, v) in k::dict_items(params).map_err(|_| Error::ConfigType)? {
                let mut xs = Vec::new();
                match (key, &v) {
                    ("buckets", Item::K(x)) => k::nums(*x, &mut b, Error::ParamsType)?,
                    ("quantiles", Item::K(x)) => {
                        k::nums(*x, &mut xs, Error::ParamsType)?;
                        quantiles = Some(xs);
                    }
                    ("maxAge", _) => max_age = Some(v.seconds(Error::ConfigType, Error::InvalidWindow, 1e10)?),
                    ("buckets" | "quantiles", _) => return Err(Error::ParamsType),
                    _ => return Err(Error::ConfigKey),
                }
            }
        }
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
        let summary = match (quantiles, max_age) {
            (None, None) => None,
            (q, a) => {
                let d = crate::metric::SummaryParams { quantiles: [0.25, 0.5, 0.75].as_slice().into(), ..Default::default() };
                Some(crate::metric::SummaryParams::new(q.as_deref().unwrap_or(&d.quantiles), a.unwrap_or(d.max_age), d.age_buckets)?)
            }
        };
        let d = Defaults::register(global(), naming, (!b.is_empty()).then_some(&b[..]), summary, &i)?;
        *DEFAULTS.write() = Some(d);
        Ok(k::generic_null())
    })
}

/// Without default metrics (`.prom.init` with `defaults:0b`) the default hooks do nothing.
fn with_defaults(f: impl FnOnce(&Defaults) -> Result<()>) -> Result<K> {
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
    if let Some(d) = DEFAULTS.read().as_ref() {
        d.request(h, seconds, failed);
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
        let mut mem = Vec::new();
        for (key, v) in k::dict_items(w).map_err(|_| Error::ValueType)? {
            let n = match v {
                Item::Num(n) => n,
                Item::K(x) => k::num(x)?,
                Item::Sym(_) => return Err(Error::ValueType),
            };
            mem.push((key, n));
        }
        let q = if k::ty(queue) == k::NULL { None } else { Some(k::num(queue)?) };
        let mut counts = Vec::new();
        k::nums(open, &mut counts, Error::ValueType)?;
        with_defaults(|d| {
            if let [ipc, ws] = counts[..] {
                d.set_open(ipc, ws);
            }
            d.sample(&mem, q)
        })
    })
}
