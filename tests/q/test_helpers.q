/ q-level tests of the helpers for user code and the handler middleware: one boolean per
/ line; exits 1 on the first failure.  Run with: q tests/q/test_helpers.q -q  (from q/,
/ see tests/q/run.sh)
\l prom.q
.t.n:0;
.t.ok:{[name;b] .t.n+:1; if[not b~1b; -2 "FAIL ",name; exit 1]}
/ error text of f . args, or `noerr
.t.err:{[f;args] @[{x . y;`noerr}[f];args;{x}]}
.t.err1:{[f;x] @[{x y;`noerr}[f];x;{x}]}
/ the val of the series of metric m whose labels include dictionary d (a dict for histograms)
.t.val:{[m;d] first exec val from .prom.metrics[] where metric=m,{[d;l]d~(key d)#l}[d]each labels}
.t.hcount:{[m;d] .t.val[m;d]`count}
/ the number on the first exposition line starting with s
.t.line:{[fmt;s] "F"$last" "vs first l where(l:"\n"vs .prom.serve fmt)like s,"*"}

boom:{[x]'"boom"}
add:{x+y}
.prom.create`name`type`help!(`t_seconds;`histogram;"test durations");
.prom.create`name`type`help!(`t_sum_seconds;`summary;"test durations");
.prom.create`name`type`help!(`t_last_seconds;`gauge;"last duration");
.prom.create`name`type`help!(`t_errors_total;`counter;"test errors");
.prom.create`name`type`help!(`t_inprogress;`gauge;"test in progress");
.prom.create`name`type`help!(`t_now_seconds;`gauge;"a time");
.prom.create`name`type`help`labels!(`t_mirror_total;`counter;"mirrored";`src);
hc:{(first exec val from .prom.metrics[] where metric=x)`count}

/ time
.t.ok["time: result passes through"; 3~.prom.time[`t_seconds;();add;1 2]];
.t.ok["time: one observation"; 1=hc`t_seconds];
.t.ok["time: f's error re-signalled unchanged"; "boom"~.t.err[.prom.time;(`t_seconds;();boom;enlist 1)]];
.t.ok["time: observed also on error"; 2=hc`t_seconds];
.t.ok["time: summaries"; (til 3)~.prom.time[`t_sum_seconds;();til;enlist 3]];
.t.ok["time: summary observed"; 1=hc`t_sum_seconds];
.t.ok["time: a gauge is set to the duration"; 42~.prom.time[`t_last_seconds;();{system"sleep 0.01";42};enlist(::)]];
.t.ok["time: the gauge holds seconds"; .prom.getv[`t_last_seconds;()] within 0.005 5];
.t.ran:0;
.t.ok["time: a counter is refused"; "prom: operation not supported by this metric type"~.t.err[.prom.time;(`t_errors_total;();{.t.ran+:1};enlist(::))]];
.t.ok["time: an unknown metric is refused"; "prom: unknown metric"~.t.err[.prom.time;(`nope_seconds;();{.t.ran+:1};enlist(::))]];
.t.ok["time: ... before f runs"; 0=.t.ran];
.t.ok["countErrors: a histogram is refused before f runs"; ("prom: operation not supported by this metric type"~.t.err[.prom.countErrors;(`t_seconds;();{.t.ran+:1};enlist(::))])&0=.t.ran];
.t.ok["obsSince observes from a start time"; (::)~.prom.obsSince[`t_seconds;();.z.p-0D00:00:01]];
.t.ok["obsSince: one more observation, of about a second"; (3=hc`t_seconds)&.prom.getv[`t_seconds;()]>=1];
.t.ok["obsSince wants a timestamp"; "prom: start time must be a timestamp (.z.p)"~.t.err[.prom.obsSince;(`t_seconds;();.z.n)]];

/ countErrors, countErrorsLike
.t.ok["countErrors: result passes through"; 3~.prom.countErrors[`t_errors_total;();add;1 2]];
.t.ok["countErrors: no count on success"; 0f=.prom.getv[`t_errors_total;()]];
.t.ok["countErrors: error re-signalled unchanged"; "boom"~.t.err[.prom.countErrors;(`t_errors_total;();boom;enlist 1)]];
.t.ok["countErrors: counted"; 1f=.prom.getv[`t_errors_total;()]];
.t.ok["countErrorsLike: matching error re-signalled"; "boom"~.t.err[.prom.countErrorsLike;(`t_errors_total;();"bo*";boom;enlist 1)]];
.t.ok["countErrorsLike: matching error counted"; 2f=.prom.getv[`t_errors_total;()]];
.t.ok["countErrorsLike: other error re-signalled"; "type"~.t.err[.prom.countErrorsLike;(`t_errors_total;();"bo*";add;(1;`a))]];
.t.ok["countErrorsLike: other error not counted"; 2f=.prom.getv[`t_errors_total;()]];
.t.ok["countErrorsLike: a list of patterns"; "boom"~.t.err[.prom.countErrorsLike;(`t_errors_total;();("type";"boo?");boom;enlist 1)]];
.t.ok["countErrorsLike: symbols as patterns"; "boom"~.t.err[.prom.countErrorsLike;(`t_errors_total;();`x`boom;boom;enlist 1)]];
.t.ok["countErrorsLike: counted once each"; 4f=.prom.getv[`t_errors_total;()]];

/ trackInprogress
.t.ok["trackInprogress: 1 inside f"; 1f~.prom.trackInprogress[`t_inprogress;();{.prom.getv[`t_inprogress;()]};enlist(::)]];
.t.ok["trackInprogress: back to 0"; 0f=.prom.getv[`t_inprogress;()]];
.t.ok["trackInprogress: error re-signalled unchanged"; "boom"~.t.err[.prom.trackInprogress;(`t_inprogress;();boom;enlist 1)]];
.t.ok["trackInprogress: back to 0 after an error"; 0f=.prom.getv[`t_inprogress;()]];
.t.ok["trackInprogress: nested"; 2f~.prom.trackInprogress[`t_inprogress;();.prom.trackInprogress;(`t_inprogress;();{.prom.getv[`t_inprogress;()]};enlist(::))]];
.t.ran:0;
.t.ok["trackInprogress: a bad metric signals"; "prom: unknown metric"~.t.err[.prom.trackInprogress;(`nope;();{.t.ran+:1};enlist(::))]];
.t.ok["trackInprogress: ... before f runs"; 0=.t.ran];

/ setToCurrentTime
.prom.setToCurrentTime[`t_now_seconds;()];
.t.ok["setToCurrentTime: unix seconds"; 5>abs .prom.getv[`t_now_seconds;()]-1e-9*"j"$.z.p-1970.01.01D00:00:00];
.t.ok["setToCurrentTime: gauges only"; "prom: operation not supported by this metric type"~.t.err[.prom.setToCurrentTime;(`t_errors_total;())]];

/ mirror: a counter kept elsewhere, with its creation time
.prom.mirror[`t_mirror_total;`tp;100;2020.01.01D00:00:00];
.t.ok["mirror: value"; 100f=.prom.getv[`t_mirror_total;`tp]];
.t.ok["mirror: created as given"; 1577836800f=.t.line[`openmetrics;"t_mirror_created{src=\"tp\"}"]];
.prom.mirror[`t_mirror_total;`tp;150;(::)];
.t.ok["mirror: higher value, created kept"; (150f=.prom.getv[`t_mirror_total;`tp])&1577836800f=.t.line[`openmetrics;"t_mirror_created{src=\"tp\"}"]];
.prom.mirror[`t_mirror_total;`tp;7;(::)];
.t.ok["mirror: lower value is a reset, not a decrease"; 7f=.prom.getv[`t_mirror_total;`tp]];
.t.ok["mirror: reset moves created to now"; 5>abs .t.line[`openmetrics;"t_mirror_created{src=\"tp\"}"]-1e-9*"j"$.z.p-1970.01.01D00:00:00];
.prom.mirror[`t_mirror_total;`tp;3;2021.01.01D00:00:00];
.t.ok["mirror: reset with a given created"; 1609459200f=.t.line[`openmetrics;"t_mirror_created{src=\"tp\"}"]];
.prom.mirror[`t_mirror_total;`big;9007199254740993;(::)];
.t.ok["mirror: longs exact beyond 2^53"; 0<count ss[.prom.serve[];"t_mirror_total{src=\"big\"} 9007199254740993\n"]];
.t.ok["mirror: counters only"; "prom: operation not supported by this metric type"~.t.err[.prom.mirror;(`t_now_seconds;();1;(::))]];
.t.ok["mirror: created type"; "prom: created must be a timestamp or (::)"~.t.err[.prom.mirror;(`t_mirror_total;`tp;1;2020.01.01)]];
.t.ok["mirror: negative refused"; "prom: counter value must be >= 0"~.t.err[.prom.mirror;(`t_mirror_total;`tp;-1;(::))]];

/ middleware: off by default
.t.ok["middleware off before init"; not any .prom.i.inflight,.prom.i.mw];
.t.ok["unknown init key still refused"; "prom: unknown configuration key"~.t.err1[.prom.init;`inflite`port!(1b;0)]];
.t.ok["tls key without certificate"; "prom: tls needs both tlsCertFile and tlsKeyFile"~.t.err1[.prom.init;`port`tlsKeyFile!(0;`:k.pem)]];
.t.ok["tls files missing"; "prom: tls certificate file unreadable or without a PEM certificate"~.t.err1[.prom.init;`port`tlsCertFile`tlsKeyFile!(0;`:nofile.pem;"nofile.key")]];
.t.ok["basic auth hash checked"; "prom: basic auth password must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)"~.t.err1[.prom.init;`port`basicAuthUsers!(0;enlist[`prometheus]!enlist"plain")]];
.t.ok["failed init left nothing wrapped"; not .prom.i.defined`.z.pg];
.z.pg:{[x]$[x~"boom";'"boom";value x]};
.z.ph:{[x]"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"};
getTrades:{[n]til n}
.prom.init`inflight`sizes`httpStatus`user`functions!(1b;1b;1b;1b;`getTrades`other);
.t.ok["middleware on after init"; all .prom.i.inflight,.prom.i.szon,.prom.i.mw];
.t.ok["in flight inside .z.pg"; 1f=.z.pg".prom.getv[`kdb_requests_in_flight;`sync]"];
.t.ok["in flight back to 0"; 0f=.prom.getv[`kdb_requests_in_flight;`sync]];
.t.ok["error through .z.pg re-signalled"; "boom"~.t.err1[.z.pg;"boom"]];
.t.ok["in flight back to 0 after an error"; 0f=.prom.getv[`kdb_requests_in_flight;`sync]];
.t.ok["function call result"; (til 5)~.z.pg(`getTrades;5)];
.t.ok["function duration recorded"; 1=.t.hcount[`kdb_function_request_duration_seconds;`handler`function!`sync`getTrades]];
.t.ok["request sizes recorded (-22!)"; .prom.getv[`kdb_request_size_bytes;`sync]=sum -22!/:(".prom.getv[`kdb_requests_in_flight;`sync]";"boom";(`getTrades;5))];
.t.ok["response sizes: -22! of each result (none for the error)"; ((-22!1f)+-22!til 5)=.prom.getv[`kdb_response_size_bytes;`sync]];
.t.ok["user label from .z.u"; 3=.t.hcount[`kdb_user_request_duration_seconds;`handler`user!(`sync;.z.u)]];
.t.ok["user errors"; 1f=.t.val[`kdb_user_request_errors_total;`handler`user!(`sync;.z.u)]];
.t.ok[".z.ph result passes through"; (.z.ph("page";()!()))like"HTTP/1.1 404*"];
.t.ok["HTTP requests by code and method"; 1f=.prom.getv[`kdb_http_requests_total;`code`method!`404`GET]];
.t.ok["the metrics path is not counted as a request"; (.z.ph("metrics";()!()))like"HTTP/1.1 200*"];
.t.ok["still one HTTP request"; 1f=.prom.getv[`kdb_http_requests_total;`code`method!`404`GET]];
.prom.stop[];
.prom.init[];
.t.ok["init without middleware keys: off again"; not any .prom.i.inflight,.prom.i.szon,.prom.i.mw];
.prom.stop[];
-1 "tests/q/test_helpers.q: ",string[.t.n]," passed, 0 failed";
exit 0
