//! Exports that serve scrapes: the dedicated listener (`qprom_start`, `qprom_stop`) and
//! the response for a scrape arriving on q's own port through `.z.ph` (`qprom_http`).

use super::exports::guard;
use super::k::{self, Item};
use super::poll;
use crate::error::{Error, Result};
use crate::http::{self, HttpConfig, PollHook, Server, TlsFiles, TlsMinVersion};
use crate::registry::global;
use super::qapi::K;
use parking_lot::Mutex;
use std::sync::Arc;

static SERVER: Mutex<Option<Server>> = Mutex::new(None);
static PROCESS: Mutex<Option<crate::process::ProcessMetrics>> = Mutex::new(None);

/// `start[config;pollfn] -> port`. config: a dictionary (or `::` for defaults) of
/// `port`bind`path`workers`maxInFlight`timeout`maxRequestBytes`pollTimeout`gzip
/// `processMetrics`maxConnections`tlsCertFile`tlsKeyFile`tlsClientCAFile`tlsMinVersion
/// `basicAuthUsers; pollfn: the unary q function run on q's main thread before each
/// scrape (`::` for none). `port` 0 picks a free port; the port in use is returned.
#[no_mangle]
pub extern "C" fn qprom_start(config: K, pollfn: K) -> K {
    guard(|| {
        let cfg = http_config(config)?;
        match start_listener(cfg, pollfn)? {
            Ok(port) => Ok(k::long(port as i64)),
            // SAFETY: krr keeps the pointer; StartError messages are 'static.
            Err(e) => Ok(unsafe { super::qapi::native::krr(e.message().as_ptr()) }),
        }
    })
}

/// Starts the listener (and the poll bridge when `pollfn` is a function); the port in
/// use. The outer error is a refused argument, the inner one the listener's own.
pub(super) fn start_listener(cfg: HttpConfig, pollfn: K) -> Result<std::result::Result<u16, http::StartError>> {
    let poll_wanted = match k::ty(pollfn) {
        k::NULL => false,
        100..=112 => true,
        _ => return Err(Error::PollFnType),
    };
    let mut server = SERVER.lock();
    if server.is_some() {
        return Err(Error::ListenerRunning);
    }
    let hook: Option<Arc<dyn PollHook>> = if poll_wanted { Some(poll::start(pollfn)?) } else { None };
    match Server::start(cfg, global().clone(), hook) {
        Ok(s) => {
            let port = s.local_port();
            *server = Some(s);
            Ok(Ok(port))
        }
        Err(e) => {
            poll::stop();
            Ok(Err(e))
        }
    }
}

/// Stops the listener and the poll bridge, if they run.
pub(super) fn stop_listener() {
    let server = SERVER.lock().take();
    if let Some(s) = server {
        // Server::stop cancels the poll hook first, so no worker waits on this thread.
        s.stop();
    }
    poll::stop();
}

/// `stop[]`: stops the listener (threads joined, port free) and the poll bridge.
/// Does nothing when nothing runs.
#[no_mangle]
pub extern "C" fn qprom_stop(_unused: K) -> K {
    guard(|| {
        stop_listener();
        Ok(k::generic_null())
    })
}

/// `http[(requestText;headers)] -> response`: the complete HTTP response to a metrics
/// request that reached q's own port (prom.q's `.z.ph` decides which paths are metrics).
/// Format and gzip follow the request's Accept and Accept-Encoding headers.
#[no_mangle]
pub extern "C" fn qprom_http(req: K) -> K {
    guard(|| {
        if k::ty(req) != k::KG || k::len(req) < 2 {
            return Err(Error::RequestType);
        }
        let parts = k::kids(req);
        k::text(parts[0], Error::RequestType)?;
        let (mut accept, mut encoding) = ("", "");
        if let Ok(items) = k::dict_items(parts[1]) {
            for (key, v) in items {
                let val = match v {
                    Item::K(x) => k::text(x, Error::RequestType).unwrap_or(""),
                    Item::Sym(s) => s,
                    Item::Num(_) => "",
                };
                if key.eq_ignore_ascii_case("accept") {
                    accept = val;
                } else if key.eq_ignore_ascii_case("accept-encoding") {
                    encoding = val;
                }
            }
        }
        {
            let mut p = PROCESS.lock();
            if p.is_none() {
                *p = crate::process::register(global()).ok();
            }
            if let Some(p) = p.as_ref() {
                p.update();
            }
        }
        Ok(k::string(&http::q_port_response(global(), accept, encoding, false)))
    })
}

fn http_config(d: K) -> Result<HttpConfig> {
    if k::ty(d) == k::NULL {
        return Ok(HttpConfig::default());
    }
    http_config_items(&k::dict_items(d).map_err(|_| Error::ConfigType)?)
}

/// The listener settings from the entries of a configuration dictionary; any other key
/// is refused.
pub(super) fn http_config_items(items: &[(&str, Item)]) -> Result<HttpConfig> {
    let mut c = HttpConfig::default();
    for (key, v) in items {
        match *key {
            "port" => c.port = u16::try_from(v.count(Error::ConfigType)?).map_err(|_| Error::ConfigType)?,
            "bind" => c.bind = v.text(Error::ConfigType)?.to_string(),
            "path" => c.path = v.text(Error::ConfigType)?.to_string(),
            "workers" => c.workers = usize::try_from(v.count(Error::ConfigType)?).map_err(|_| Error::ConfigType)?,
            "maxInFlight" => c.max_in_flight = usize::try_from(v.count(Error::ConfigType)?).map_err(|_| Error::ConfigType)?,
            "maxRequestBytes" => c.max_request_bytes = usize::try_from(v.count(Error::ConfigType)?).map_err(|_| Error::ConfigType)?,
            "timeout" => c.timeout = v.seconds(Error::ConfigType, Error::ConfigType, 1e8)?,
            "pollTimeout" => c.poll_timeout = v.seconds(Error::ConfigType, Error::ConfigType, 1e8)?,
            "gzip" => c.gzip = v.flag()?,
            "processMetrics" => c.process_metrics = v.flag()?,
            "maxConnections" => c.max_connections = usize::try_from(v.count(Error::ConfigType)?).map_err(|_| Error::ConfigType)?,
            "tlsCertFile" => tls(&mut c).cert_file = path(v)?.into(),
            "tlsKeyFile" => tls(&mut c).key_file = path(v)?.into(),
            "tlsClientCAFile" => tls(&mut c).client_ca_file = Some(path(v)?.into()),
            "tlsMinVersion" => {
                tls(&mut c).min_version = match v.text(Error::ConfigType)? {
                    "TLS12" => TlsMinVersion::Tls12,
                    "TLS13" => TlsMinVersion::Tls13,
                    _ => return Err(Error::ConfigType),
                }
            }
            "basicAuthUsers" => c.basic_auth_users = users(v)?,
            _ => return Err(Error::ConfigKey),
        }
    }
    if let Some(t) = &c.tls {
        if t.cert_file.as_os_str().is_empty() || t.key_file.as_os_str().is_empty() {
            return Err(Error::TlsIncomplete);
        }
    }
    Ok(c)
}

/// The TLS settings, created empty by the first `tls*` key; `qprom_start` refuses a
/// certificate without a key and the reverse.
fn tls(c: &mut HttpConfig) -> &mut TlsFiles {
    c.tls.get_or_insert_with(|| TlsFiles {
        cert_file: Default::default(),
        key_file: Default::default(),
        client_ca_file: None,
        min_version: TlsMinVersion::Tls12,
    })
}

/// A file name as a string or symbol; a q file symbol's leading colon is dropped.
fn path<'a>(v: &Item<'a>) -> Result<&'a str> {
    let t = v.text(Error::ConfigType)?;
    let t = t.strip_prefix(':').unwrap_or(t);
    match t.is_empty() {
        true => Err(Error::ConfigType),
        false => Ok(t),
    }
}

/// `user!hash` as a dictionary from symbols to strings (or symbols); not empty.
fn users(v: &Item) -> Result<Vec<(String, String)>> {
    let Item::K(d) = v else { return Err(Error::ConfigType) };
    let items = k::dict_items(*d).map_err(|_| Error::ConfigType)?;
    if items.is_empty() {
        return Err(Error::ConfigType);
    }
    items.iter().map(|(u, h)| Ok((u.to_string(), h.text(Error::ConfigType)?.to_string()))).collect()
}

