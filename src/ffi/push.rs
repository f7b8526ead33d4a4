//! Pushgateway client: `.prom.push` / `.prom.pushDelete`, as the Python client's
//! `push_to_gateway` / `delete_from_gateway` do it. PUT (replace the group) or DELETE to
//! `<url>/metrics/job/<job>{/<label>/<value>}` with the text 0.0.4 exposition of the whole
//! registry. Synchronous on the calling thread, 10 s overall timeout, http:// only (ureq
//! without TLS), no proxy (http_proxy is ignored), no redirects followed.

use super::exports::guard;
use super::k;
use crate::error::{Error, Result};
use crate::expo::{Encoder, Format};
use crate::registry::global;
use base64::Engine;
use super::qapi::K;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `http://host:port[/prefix]`, trailing `/` dropped; no scheme means http (as the Python
/// client). Any other scheme, https included, is refused: this build has no TLS.
fn base_url(x: K) -> Result<String> {
    let u = match k::ty(x) {
        -11 | k::KC => k::text(x, Error::PushUrl)?,
        _ => return Err(Error::PushUrl),
    };
    let rest = match u.find("://") {
        Some(i) if u[..i].eq_ignore_ascii_case("http") => &u[i + 3..],
        Some(_) => return Err(Error::PushUrl),
        None => u,
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') {
        return Err(Error::PushUrl);
    }
    Ok(format!("http://{rest}"))
}

/// One `/<name>/<value>` path segment pair, escaped as the Python client's
/// `_escape_grouping_key`: an empty value or one with `/` goes as `<name>@base64/<urlsafe
/// base64>` (empty: `=`); others are percent-encoded (everything but `A-Za-z0-9_.-~`;
/// a space becomes `%20`, not quote_plus's ambiguous `+`).
fn push_segment(out: &mut String, name: &str, value: &str) {
    out.push('/');
    if value.is_empty() || value.contains('/') {
        percent(out, name);
        out.push_str("@base64/");
        if value.is_empty() {
            out.push('=');
        } else {
            base64::engine::general_purpose::URL_SAFE.encode_string(value, out);
        }
    } else {
        percent(out, name);
        out.push('/');
        percent(out, value);
    }
}

fn percent(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The group's URL: job, then the grouping labels sorted by name (as the Python client).
fn group_url(url: K, job: K, grouping: K) -> Result<String> {
    let mut out = base_url(url)?;
    let job = k::text(job, Error::PushJob)?;
    if job.is_empty() {
        return Err(Error::PushJob);
    }
    out.push_str("/metrics");
    push_segment(&mut out, "job", job);
    let mut labels: Vec<(&str, &str)> = if k::ty(grouping) == k::NULL
        || (k::ty(grouping) == k::XD && k::len(k::kids(grouping)[0]) == 0)
    {
        Vec::new()
    } else {
        let items = k::dict_items(grouping).map_err(|_| Error::PushGrouping)?;
        items.iter().map(|(n, v)| Ok((*n, v.text(Error::PushGrouping)?))).collect::<Result<_>>()?
    };
    labels.sort_by(|a, b| a.0.cmp(b.0));
    for (n, v) in labels {
        push_segment(&mut out, n, v);
    }
    Ok(out)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .build()
        .into()
}

fn transport(e: ureq::Error) -> Error {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(_) => Error::PushTimeout,
        ureq::Error::HostNotFound => Error::PushHost,
        ureq::Error::ConnectionFailed => Error::PushRefused,
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => Error::PushUrl,
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => Error::PushRefused,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => Error::PushTimeout,
            _ => Error::PushTransport,
        },
        _ => Error::PushTransport,
    }
}

fn status(code: u16) -> Result<K> {
    match code {
        200..=299 => Ok(k::generic_null()),
        400..=499 => Err(Error::PushStatus4xx),
        500..=599 => Err(Error::PushStatus5xx),
        _ => Err(Error::PushStatus),
    }
}

/// `.prom.push[url;job;grouping]` -> `::`: PUT the registry's text exposition, replacing
/// every metric of the group.
#[no_mangle]
pub extern "C" fn qprom_push(url: K, job: K, grouping: K) -> K {
    guard(|| {
        let target = group_url(url, job, grouping)?;
        let mut enc = Encoder::new();
        let body = enc.encode(global(), Format::Text);
        let resp = agent()
            .put(&target)
            .header("Content-Type", Format::Text.content_type())
            .send(body)
            .map_err(transport)?;
        status(resp.status().as_u16())
    })
}

/// `.prom.pushDelete[url;job;grouping]` -> `::`: DELETE the group from the gateway.
#[no_mangle]
pub extern "C" fn qprom_push_delete(url: K, job: K, grouping: K) -> K {
    guard(|| {
        let target = group_url(url, job, grouping)?;
        let resp = agent().delete(&target).call().map_err(transport)?;
        status(resp.status().as_u16())
    })
}
