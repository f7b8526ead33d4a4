//! Every error the store can report. Each carries one static, NUL-terminated message,
//! because q's `krr` keeps only the pointer: the text must outlive the call.

use std::ffi::CStr;
use std::fmt;

macro_rules! errors {
    ($($variant:ident => $msg:literal,)*) => {
        /// A failed store operation; `message()` is what q users see after `'`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Error { $($variant,)* }
        impl Error {
            /// The static `prom: …` message, suitable for `krr`.
            pub fn cstr(self) -> &'static CStr {
                match self { $(Error::$variant => $msg,)* }
            }
            /// Every variant, for tests that check each message once.
            pub const ALL: &'static [Error] = &[$(Error::$variant,)*];
        }
    };
}

errors! {
    InvalidMetricName => c"prom: invalid metric name",
    ReservedMetricName => c"prom: reserved metric name (names beginning with _ are reserved)",
    InvalidLabelName => c"prom: invalid label name",
    ReservedLabelName => c"prom: reserved label name",
    DuplicateLabelName => c"prom: duplicate label name",
    InvalidUnit => c"prom: metric name must end with _<unit>, unit [a-zA-Z0-9_]+",
    InfoUnit => c"prom: an info metric takes no unit",
    LabelCount => c"prom: label count mismatch",
    TypeConflict => c"prom: metric exists with another type",
    LabelConflict => c"prom: metric exists with other label names",
    NameCollision => c"prom: metric name collides with another metric's samples",
    UnknownMetric => c"prom: unknown metric",
    UnknownSeries => c"prom: unknown series",
    SeriesLimit => c"prom: too many series",
    NanValue => c"prom: value is NaN",
    NotFinite => c"prom: value must be finite",
    NegativeIncrement => c"prom: counter increment must be >= 0",
    NegativeCounter => c"prom: counter value must be >= 0",
    CounterDecrease => c"prom: counter cannot decrease",
    InvalidBuckets => c"prom: buckets must be finite, sorted and unique",
    InvalidQuantiles => c"prom: quantiles must be in [0,1], sorted and unique",
    InvalidWindow => c"prom: summary window must be > 0 with 1 to 1024 age buckets",
    InvalidNative => c"prom: native histogram needs nativeSchema -4 to 8 or nativeFactor > 1, nativeZeroThreshold >= 0, nativeMaxBuckets 1 to 32768, nativeMinReset >= 0",
    ExemplarLabels => c"prom: exemplar must be a non-empty dictionary of distinct label names to strings",
    ExemplarTooLong => c"prom: exemplar labels exceed 128 characters",
    InvalidParams => c"prom: params not valid for this metric type",
    WrongType => c"prom: operation not supported by this metric type",
    UpdvalOp => c"prom: updval operation must be `set`add`sub`obs",
    ParamsFixed => c"prom: series exists with other params (it holds observations or is in use)",
    InvalidSeriesLimit => c"prom: series limit must be >= 1",
    // Decoding q arguments (src/ffi/).
    NameType => c"prom: metric name must be a symbol or string",
    TargetType => c"prom: expected a metric name (symbol or string) or a series id (long)",
    LabelsType => c"prom: labels must be a symbol, string, list of them, or a dictionary",
    LabelNames => c"prom: label names do not match the metric's",
    HandleWithLabels => c"prom: a series id takes no labels",
    TextEncoding => c"prom: text must be UTF-8 without NUL bytes",
    ValueType => c"prom: value must be a number (short, int, long, real or float)",
    NullValue => c"prom: value is null",
    ParamsType => c"prom: params must be a list of numbers",
    UnknownType => c"prom: metric type must be one of counter gauge histogram summary info",
    DefinitionType => c"prom: metric definition must be a dictionary with symbol keys",
    UnknownOption => c"prom: unknown key in metric definition",
    MissingOption => c"prom: metric definition needs `name and `type",
    OptionType => c"prom: wrong type for a key of the metric definition",
    FormatType => c"prom: format must be `text, `openmetrics or `protobuf",
    Internal => c"prom: internal error",
    ConfigKey => c"prom: unknown configuration key",
    ConfigType => c"prom: wrong type for a configuration key",
    ConfigNotDict => c"prom: configuration must be a dictionary",
    ConfigKeys => c"prom: configuration keys must be distinct symbols",
    HandlersList => c"prom: handlers must be distinct symbols among pg ps ph pp ws ts po pc wo wc pw",
    ConfigRange => c"prom: queueTopN must be 0 to 1000, lagProbe 0 (off) or seconds below a day",
    HandlerState => c"prom: internal: prom.q passed malformed handler state (reload prom.q)",
    SdConfig => c"prom: fileSd must be a directory, or a dictionary with `dir and optional `labels",
    CliValue => c"prom: bad value for a -prom.<key> option (see exporter.q's header)",
    HtpasswdFile => c"prom: basicAuthUsers file unreadable or without user:hash lines",
    TlsIncomplete => c"prom: tls needs both tlsCertFile and tlsKeyFile",
    ListenerRunning => c"prom: listener already running: .prom.stop[] first",
    PollFnType => c"prom: poll callback must be a q function or (::)",
    RequestType => c"prom: expected .z.ph's (requestText;headerDictionary)",
    WholeNumber => c"prom: expected a whole number (short, int or long)",
    PollSetup => c"prom: could not put the poll eventfd on q's event loop",
    // Helpers for user code and handler middleware (src/ffi/helpers.rs).
    TimestampType => c"prom: start time must be a timestamp (.z.p)",
    CreatedType => c"prom: created must be a timestamp or (::)",
    HelperKind => c"prom: helper must be `time, `countErrors or `trackInprogress",
    // Files for other readers: textfile collector and file_sd (src/textfile.rs).
    PathType => c"prom: path must be a symbol or string",
    TextfileSuffix => c"prom: file name must end in .prom (node_exporter reads only *.prom)",
    DirMissing => c"prom: directory does not exist",
    DirNotWritable => c"prom: directory is not writable",
    WriteFailed => c"prom: could not write the file",
    SdTarget => c"prom: file_sd target must be host:port (port 1-65535)",
    SdLabels => c"prom: file_sd labels must be a dictionary of symbols or strings",
    // Pushgateway client (src/ffi/push.rs).
    PushUrl => c"prom: push url must be a string or symbol like \"http://host:port\" (http only)",
    PushJob => c"prom: push job must be a non-empty symbol or string",
    PushGrouping => c"prom: push grouping must be a dictionary of symbols or strings, or (::)",
    PushHost => c"prom: push failed: host not found",
    PushRefused => c"prom: push failed: connection refused",
    PushTimeout => c"prom: push failed: timed out (10 s)",
    PushTransport => c"prom: push failed: network or protocol error",
    PushStatus4xx => c"prom: push failed: gateway answered 4xx (rejected: check job, grouping and metrics)",
    PushStatus5xx => c"prom: push failed: gateway answered 5xx",
    PushStatus => c"prom: push failed: gateway answered a status other than 2xx",
    // Basic auth for the listener (src/auth.rs).
    AuthNoUsers => c"prom: basic auth needs at least one user",
    AuthUser => c"prom: basic auth user name must be non-empty, without ':'",
    AuthDuplicateUser => c"prom: basic auth user name given twice",
    AuthHash => c"prom: basic auth password must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)",
    AuthCost => c"prom: basic auth bcrypt cost must be 04 to 31",
    AuthRandom => c"prom: basic auth: could not read the OS random source",
}

impl Error {
    pub fn message(self) -> &'static str {
        // The literals above are ASCII; to_str cannot fail.
        self.cstr().to_str().unwrap_or("prom: error")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn every_message_is_prefixed_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for e in Error::ALL {
            assert!(e.message().starts_with("prom: "), "{e:?}");
            assert!(seen.insert(e.message()), "duplicate message {e:?}");
        }
    }
}
