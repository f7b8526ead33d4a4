//! Request heads (read by the front end, `front.rs`): parsing, and negotiating the
//! exposition format and compression.

use super::Format;
use std::mem::MaybeUninit;
use std::time::Duration;

/// End of `\n\r\n` or `\n\n` within `buf[..filled]`, searching from `from`.
pub(super) fn head_end(buf: &[u8], from: usize, filled: usize) -> Option<usize> {
    let b = &buf[..filled];
    (from..b.len()).find_map(|i| match (b[i], b.get(i + 1), b.get(i + 2)) {
        (b'\n', Some(b'\n'), _) => Some(i + 2),
        (b'\n', Some(b'\r'), Some(b'\n')) => Some(i + 3),
        _ => None,
    })
}

/// What routing needs from a request.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub(super) method: &'a [u8],
    /// The target up to `?` or `#`.
    pub(super) path: &'a [u8],
    pub(super) format: Format,
    pub(super) gzip: bool,
    pub(super) scrape_timeout: Option<Duration>,
    pub(super) has_body: bool,
    /// The `Authorization` header's value, if any (one; a second is a 400).
    pub(super) authorization: Option<&'a [u8]>,
}

/// Header fields read at most: one more is a 431, as in hyper (whose default is also 100).
/// `maxRequestBytes` bounds the head's bytes; this bounds the parser's table of fields.
pub(super) const MAX_HEADERS: usize = 100;

/// Parses a request head; `Err` is the status to answer. The request line and the fields
/// are httparse's (strict: single spaces, token methods and names, no obsolete folding,
/// no space before a colon, no control bytes in values); what they mean is ours.
pub(super) fn parse(head: &[u8], max_body: usize) -> Result<Request<'_>, u16> {
    let mut fields = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, &mut fields) {
        Ok(httparse::Status::Complete(_)) => {}
        // The front end found the blank line, httparse did not (a bare CR, say).
        Ok(httparse::Status::Partial) => return Err(400),
        Err(httparse::Error::TooManyHeaders) => return Err(431),
        Err(httparse::Error::Version) if names_another_version(head) => return Err(505),
        Err(_) => return Err(400),
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(400);
    };
    // httparse lets bytes above 0x7f through in a target; a URI is ASCII (RFC 3986).
    if !target.is_ascii() {
        return Err(400);
    }
    let mut neg = Negotiation::default();
    let mut gzip = GzipPref::default();
    let mut scrape_timeout = None;
    let mut has_body = false;
    let mut authorization = None;
    for field in req.headers.iter() {
        let name = field.name.as_bytes();
        let value = std::str::from_utf8(field.value).unwrap_or("").trim_matches([' ', '\t']);
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
        } else if name.eq_ignore_ascii_case(b"authorization") {
            // Two credentials would leave it to us which one counts: refuse instead.
            if authorization.replace(trim_ows(field.value)).is_some() {
                return Err(400);
            }
        }
    }
    Ok(Request {
        method: method.as_bytes(),
        path: origin_path(target.as_bytes()),
        format: neg.choose(),
        gzip: gzip.accepts(),
        scrape_timeout,
        has_body,
        authorization,
    })
}

/// Whether the request line ends in `HTTP/<digit>.<digit>` (httparse knows only 1.0 and
/// 1.1): another version is a 505, anything else a 400.
fn names_another_version(head: &[u8]) -> bool {
    // httparse skips empty lines before the request line; so do we.
    let start = head.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(head.len());
    let line = head[start..].split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some([b'H', b'T', b'T', b'P', b'/', a, b'.', b]), None) => {
            a.is_ascii_digit() && b.is_ascii_digit()
        }
        _ => false,
    }
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|&c| c != b' ' && c != b'\t').map_or(start, |e| e + 1);
    &v[start..end]
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

/// Content negotiation over the three formats we speak. Each text format takes the q-value
/// of the most specific Accept range matching it (RFC 9110 §12.5.1): `type/sub;version=v`
/// over `type/sub` over `type/*` over `*/*`. Protobuf only when asked for by name with
/// both parameters Prometheus sends (`proto=io.prometheus.client.MetricFamily`,
/// `encoding=delimited`; wildcards never pick a binary format), with a q > 0 and not below
/// either text format's; then OpenMetrics only when asked for by name, with a q > 0 and
/// not below text's; text 0.0.4 otherwise, also when nothing matches (as promhttp does,
/// rather than 406).
#[derive(Debug, Clone, Copy)]
pub(super) struct Negotiation {
    om: (f32, i8),
    text: (f32, i8),
    /// The highest q of a range naming the delimited MetricFamily protobuf, if any did.
    proto: Option<f32>,
}

impl Default for Negotiation {
    fn default() -> Self {
        Negotiation { om: (0.0, -1), text: (0.0, -1), proto: None }
    }
}

impl Negotiation {
    pub(super) fn feed(&mut self, header: &str) {
        for range in header.split(',') {
            let mut params = range.split(';');
            let mt = params.next().unwrap_or("").trim();
            let (mut q, mut version, mut proto, mut encoding) = (1.0f32, None, None, None);
            for p in params {
                let Some((k, v)) = p.split_once('=') else { continue };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("q") {
                    q = parse_q(v);
                } else if k.eq_ignore_ascii_case("version") {
                    version = Some(v);
                } else if k.eq_ignore_ascii_case("proto") {
                    proto = Some(v);
                } else if k.eq_ignore_ascii_case("encoding") {
                    encoding = Some(v);
                }
            }
            if mt.eq_ignore_ascii_case("application/vnd.google.protobuf") {
                // Message names are case-sensitive; `encoding=text` and `compact-text` are
                // other formats, which we do not produce.
                if proto == Some("io.prometheus.client.MetricFamily") && encoding == Some("delimited") {
                    self.proto = Some(self.proto.map_or(q, |p| p.max(q)));
                }
                continue;
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

    pub(super) fn choose(&self) -> Format {
        let (om_q, om_spec) = self.om;
        if let Some(pq) = self.proto {
            if pq > 0.0 && pq >= self.text.0 && (om_spec < 2 || pq >= om_q) {
                return Format::Protobuf;
            }
        }
        if om_spec >= 2 && om_q > 0.0 && om_q >= self.text.0 {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Accept-Encoding: gzip (or x-gzip) with q > 0, or `*` with q > 0 when gzip is not named.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct GzipPref {
    gzip: Option<f32>,
    any: Option<f32>,
}

impl GzipPref {
    pub(super) fn feed(&mut self, header: &str) {
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

    pub(super) fn accepts(&self) -> bool {
        self.gzip.or(self.any).is_some_and(|q| q > 0.0)
    }
}

/// A malformed q-value makes its range unacceptable rather than preferred.
fn parse_q(v: &str) -> f32 {
    v.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0)
}


#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS_2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

    /// Prometheus 2.42 with `--enable-feature=native-histograms` (scrape/scrape.go,
    /// scrapeAcceptHeaderWithProtobuf): protobuf first, without a q-value.
    const PROMETHEUS_2_42_NATIVE: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// Prometheus 3 with scrape_native_histograms (DefaultProtoFirstScrapeProtocols, q-values
    /// from config.ScrapeProtocolsHeaders' count down).
    const PROMETHEUS_3_PROTO_FIRST: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
    /// scrape_protocols: [PrometheusProto, PrometheusText0.0.4] (the header the issue quotes).
    const PROTO_THEN_TEXT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
    const PB: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

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
    fn negotiation_protobuf() {
        assert_eq!(fmt_for(&[PROMETHEUS_2_42_NATIVE]), Format::Protobuf);
        assert_eq!(fmt_for(&[PROMETHEUS_3_PROTO_FIRST]), Format::Protobuf);
        assert_eq!(fmt_for(&[PROTO_THEN_TEXT]), Format::Protobuf);
        assert_eq!(fmt_for(&[PB]), Format::Protobuf);
        assert_eq!(fmt_for(&[&PB.to_ascii_uppercase().replace("IO.PROMETHEUS.CLIENT.METRICFAMILY", "io.prometheus.client.MetricFamily").replace("DELIMITED", "delimited")]), Format::Protobuf, "type and parameter names in any case");
        assert_eq!(fmt_for(&["application/vnd.google.protobuf; proto=\"io.prometheus.client.MetricFamily\"; encoding=delimited"]), Format::Protobuf);
        assert_eq!(fmt_for(&["text/plain", PB]), Format::Protobuf, "over several Accept fields");
        // Both parameters must name what we produce.
        assert_eq!(fmt_for(&["application/vnd.google.protobuf"]), Format::Text);
        assert_eq!(fmt_for(&["application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily"]), Format::Text);
        assert_eq!(fmt_for(&["application/vnd.google.protobuf;encoding=delimited"]), Format::Text);
        assert_eq!(fmt_for(&["application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"]), Format::Text);
        assert_eq!(fmt_for(&["application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=compact-text"]), Format::Text);
        assert_eq!(fmt_for(&["application/vnd.google.protobuf;proto=other.Message;encoding=delimited"]), Format::Text);
        assert_eq!(fmt_for(&["application/vnd.google.protobuf;proto=io.prometheus.client.metricfamily;encoding=delimited"]), Format::Text);
        // q-values: refused, below text, below OpenMetrics, a tie (protobuf), malformed.
        assert_eq!(fmt_for(&[&format!("{PB};q=0,text/plain;q=0.1")]), Format::Text);
        assert_eq!(fmt_for(&[&format!("{PB};q=0.4,text/plain;version=0.0.4;q=0.5")]), Format::Text);
        assert_eq!(fmt_for(&[&format!("{PB};q=0.4,application/openmetrics-text;q=0.5,text/plain;q=0.1")]), Format::OpenMetrics);
        assert_eq!(fmt_for(&[&format!("{PB};q=0.5,application/openmetrics-text;q=0.5")]), Format::Protobuf);
        assert_eq!(fmt_for(&[&format!("{PB};q=bogus,text/plain;q=0.1")]), Format::Text);
        assert_eq!(fmt_for(&[&format!("{PB};q=0.2,{PB};q=0.9,text/plain;q=0.5")]), Format::Protobuf, "the best q of two ranges");
        // Wildcards never choose a binary format; a wildcard's q does count against it.
        assert_eq!(fmt_for(&["application/*"]), Format::Text);
        assert_eq!(fmt_for(&[&format!("{PB};q=0.5,*/*")]), Format::Text);
        // Without protobuf in the header, today's choices are unchanged.
        assert_eq!(fmt_for(&[PROMETHEUS_2]), Format::OpenMetrics);
        let head = format!("GET /metrics HTTP/1.1\r\naccept: {PROMETHEUS_2_42_NATIVE}\r\nAccept-Encoding: gzip\r\n\r\n");
        let r = parse(head.as_bytes(), 8192).unwrap();
        assert_eq!((r.format, r.gzip), (Format::Protobuf, true));
        assert_eq!(
            Format::Protobuf.content_type(),
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        );
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
        // What the hand-made parser checked, httparse must check too.
        assert_eq!(parse(b"GET / HTTP/1.1x\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / http/1.1\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 8192).unwrap_err(), 505);
        assert_eq!(parse(b"GET /m\xc3\xa9trics HTTP/1.1\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET /a b HTTP/1.1\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"G(T / HTTP/1.1\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET\t/ HTTP/1.1\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n: x\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 8192).unwrap_err(), 400);
        assert_eq!(parse(b"GET / HTTP/1.1\rHost: x\r\r", 8192).unwrap_err(), 400);
        let two = b"GET / HTTP/1.1\r\nAuthorization: Basic a\r\nauthorization: Basic b\r\n\r\n";
        assert_eq!(parse(two, 8192).unwrap_err(), 400);
        let one = parse(b"GET / HTTP/1.1\r\nAuthorization:  Basic a \r\n\r\n", 8192).unwrap();
        assert_eq!(one.authorization, Some(&b"Basic a"[..]));
        assert!(parse(b"\r\nGET / HTTP/1.0\nHost: x\n\n", 8192).is_ok(), "lone LFs, a leading empty line");
        let om = parse(b"GET / HTTP/1.1\r\nACCEPT: application/openmetrics-text\r\n\r\n", 8192).unwrap();
        assert_eq!(om.format, Format::OpenMetrics, "field names in any case");
    }

    fn with_fields(n: usize) -> Vec<u8> {
        let mut h = b"GET /metrics HTTP/1.1\r\n".to_vec();
        (0..n).for_each(|i| h.extend_from_slice(format!("X-{i}: v\r\n").as_bytes()));
        h.extend_from_slice(b"\r\n");
        h
    }

    #[test]
    fn header_field_count_is_bounded() {
        assert!(parse(&with_fields(MAX_HEADERS), 8192).is_ok());
        assert_eq!(parse(&with_fields(MAX_HEADERS + 1), 8192).unwrap_err(), 431);
    }

}
