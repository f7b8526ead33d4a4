//! What `.prom.init` accepts, as data: every configuration key by consumer, the
//! command-line parser of each (exporter.q's `-prom.<key>`), and the handler rules.
//! src/ffi/lifecycle.rs decodes q objects against these tables; keeping them here lets
//! the unit tests check them without q.

/// The handlers `.prom.init` can wrap, in the order prom.q passes them. All but the last
/// may be named in the `handlers` key; `exit` is always wrapped, so that exit stops the
/// listener and removes the file_sd file.
pub const HANDLERS: [&str; 12] = ["pg", "ps", "ph", "pp", "ws", "ts", "po", "pc", "wo", "wc", "pw", "exit"];
pub const Z_NAMES: [&str; 12] =
    [".z.pg", ".z.ps", ".z.ph", ".z.pp", ".z.ws", ".z.ts", ".z.po", ".z.pc", ".z.wo", ".z.wc", ".z.pw", ".z.exit"];
/// The handlers the `handlers` key may name (the default: all of them).
pub const CHOOSABLE: usize = 11;

/// Whether a handler the user has not defined is wrapped anyway (around q's default
/// behaviour, which prom.q supplies). Not `.z.pp`, `.z.ws` and `.z.pw`: defining them
/// changes what q accepts (POST, websockets, logins); not `.z.ts`: an undefined timer has
/// no call to observe.
pub fn wrap_when_undefined(h: &str) -> bool {
    !matches!(h, "pp" | "ws" | "ts" | "pw")
}

/// Keys the listener takes (`port` starts it; the others are checked without it too).
pub const LISTEN_KEYS: [&str; 16] = [
    "port", "bind", "path", "workers", "maxInFlight", "timeout", "maxRequestBytes", "pollTimeout", "gzip",
    "processMetrics", "maxConnections", "tlsCertFile", "tlsKeyFile", "tlsClientCAFile", "tlsMinVersion",
    "basicAuthUsers",
];
/// Handler middleware keys (`buckets` is shared with the default metrics).
pub const MIDDLEWARE_KEYS: [&str; 7] = ["inflight", "sizes", "sizeBuckets", "httpStatus", "user", "functions", "exemplars"];
pub const OTHER_KEYS: [&str; 11] = [
    "naming", "buckets", "quantiles", "maxAge", "handlers", "limit", "defaults", "fileSd", "queueTopN", "lagProbe",
    "nativeHistograms",
];

/// How one `-prom.<key>` option's text becomes a configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cli {
    /// a long
    Long,
    /// a float
    Float,
    /// 1 0 1b 0b true false yes no
    Bool,
    /// a string
    Text,
    /// a symbol
    Sym,
    /// symbols, comma separated
    Syms,
    /// floats, comma separated
    Floats,
    /// an htpasswd file (user:bcrypt lines), read into user!hash
    Htpasswd,
}

/// Every `.prom.init` key and its command-line parser.
pub const CLI: [(&str, Cli); 34] = [
    ("port", Cli::Long),
    ("bind", Cli::Text),
    ("path", Cli::Text),
    ("workers", Cli::Long),
    ("maxInFlight", Cli::Long),
    ("timeout", Cli::Float),
    ("maxRequestBytes", Cli::Long),
    ("pollTimeout", Cli::Float),
    ("gzip", Cli::Bool),
    ("processMetrics", Cli::Bool),
    ("maxConnections", Cli::Long),
    ("tlsCertFile", Cli::Text),
    ("tlsKeyFile", Cli::Text),
    ("tlsClientCAFile", Cli::Text),
    ("tlsMinVersion", Cli::Sym),
    ("basicAuthUsers", Cli::Htpasswd),
    ("inflight", Cli::Bool),
    ("sizes", Cli::Bool),
    ("sizeBuckets", Cli::Floats),
    ("httpStatus", Cli::Bool),
    ("user", Cli::Bool),
    ("functions", Cli::Syms),
    ("exemplars", Cli::Bool),
    ("naming", Cli::Sym),
    ("buckets", Cli::Floats),
    ("quantiles", Cli::Floats),
    ("maxAge", Cli::Float),
    ("handlers", Cli::Syms),
    ("limit", Cli::Long),
    ("defaults", Cli::Bool),
    ("fileSd", Cli::Text),
    ("queueTopN", Cli::Long),
    ("lagProbe", Cli::Float),
    ("nativeHistograms", Cli::Bool),
];

pub fn cli_kind(key: &str) -> Option<Cli> {
    CLI.iter().find(|(n, _)| *n == key).map(|(_, c)| *c)
}

pub fn cli_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "1b" | "true" | "yes" => Some(true),
        "0" | "0b" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// The metrics path as the listener serves it: a leading `/` added when missing.
pub fn normalise_path(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// Whether a `.z.ph` request text (no leading slash, maybe a query) asks for `path`
/// (as [`normalise_path`] gives it).
pub fn is_metrics_request(request: &str, path: &str) -> bool {
    request.split('?').next() == Some(path.strip_prefix('/').unwrap_or(path))
}

/// The host part of the file_sd target: the bind address unless it is a wildcard.
pub fn sd_host<'a>(bind: &'a str, hostname: &'a str) -> &'a str {
    match bind {
        "" | "0.0.0.0" | "::" | "*" => hostname,
        b => b,
    }
}

/// The port file_sd registers: the listener's, else q's own (`system"p"`: negative in
/// multithreaded input mode, where the port is its absolute value); None if neither.
pub fn sd_port(listener: Option<u16>, q_port: i64) -> Option<u16> {
    match listener {
        Some(p) => Some(p),
        None => u16::try_from(q_port.unsigned_abs()).ok().filter(|p| *p > 0),
    }
}

/// `instance_name`: the script q runs without its directory (`.z.f`), else "q".
pub fn script_name(f: &str) -> &str {
    f.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("q")
}

/// A q date (days since 2000.01.01) as q prints it, yyyy.mm.dd.
pub fn q_date(days: i64) -> String {
    // Civil-from-days (proleptic Gregorian), shifted from the unix epoch.
    let z = days + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}.{m:02}.{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_init_key_has_one_command_line_parser() {
        let keys: Vec<&str> = LISTEN_KEYS.iter().chain(&MIDDLEWARE_KEYS).chain(&OTHER_KEYS).copied().collect();
        for k in &keys {
            assert!(cli_kind(k).is_some(), "{k} has no -prom.{k} parser");
        }
        let mut names: Vec<&str> = CLI.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CLI.len(), "a key twice in CLI");
        assert_eq!(CLI.len(), keys.len(), "CLI has a key init does not accept");
    }

    #[test]
    fn q_dates_print_as_q_does() {
        assert_eq!(q_date(0), "2000.01.01");
        assert_eq!(q_date(-1), "1999.12.31");
        assert_eq!(q_date(59), "2000.02.29");
        assert_eq!(q_date(60), "2000.03.01");
        assert_eq!(q_date(8917), "2024.05.31");
    }

    #[test]
    fn paths_and_requests() {
        assert_eq!(normalise_path("metrics"), "/metrics");
        assert_eq!(normalise_path("/m"), "/m");
        assert!(is_metrics_request("metrics", "/metrics"));
        assert!(is_metrics_request("metrics?x=1", "/metrics"));
        assert!(!is_metrics_request("metricsx", "/metrics"));
        assert!(!is_metrics_request("other", "/metrics"));
    }

    #[test]
    fn file_sd_target() {
        assert_eq!(sd_port(None, -5000), Some(5000));
        assert_eq!(sd_port(None, 0), None);
        assert_eq!(sd_port(Some(9612), 5000), Some(9612));
        assert_eq!(sd_host("0.0.0.0", "h"), "h");
        assert_eq!(sd_host("10.1.2.3", "h"), "10.1.2.3");
        assert_eq!(script_name("/opt/tp/tick.q"), "tick.q");
        assert_eq!(script_name(""), "q");
    }

    #[test]
    fn handler_rules() {
        assert!(HANDLERS.iter().zip(Z_NAMES).all(|(h, z)| z == format!(".z.{h}")));
        assert!(["pp", "ws", "ts", "pw"].iter().all(|h| !wrap_when_undefined(h)));
        assert_eq!(HANDLERS[CHOOSABLE], "exit");
        assert!(["pg", "ps", "ph", "po", "pc", "wo", "wc", "exit"].iter().all(|h| wrap_when_undefined(h)));
        assert_eq!(cli_bool("1b"), Some(true));
        assert_eq!(cli_bool("x"), None);
    }
}
