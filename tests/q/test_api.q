/ q-level API tests: one boolean per line; the runner exits non-zero on the first false.
\l prom.q
.t.n:0;
.t.ok:{[name;b] .t.n+:1; if[not b~1b; -2 "FAIL ",name; exit 1]}
/ error text of a call, or `noerr
.t.err:{[f;args] @[{x . y;`noerr}[f];args;{x}]}

/ KX-compatible API
.prom.newmetric[`number_tables;`gauge;`region;"number of tables"];
.t.ok["addmetric returns a long id"; -7h=type id1:.prom.addmetric[`number_tables;`amer;();0f]];
.t.ok["addmetric is idempotent"; id1=.prom.addmetric[`number_tables;`amer;();5f]];
id2:.prom.addmetric[`number_tables;`emea;();3f];
.prom.updval[id1;:;7]; .prom.updval[id2;+;1]; .prom.updval[id2;-;2];
.t.ok["updval :"; 7f=.prom.getv[id1;::]];
.t.ok["updval + and -"; 2f=.prom.getv[id2;::]];
.prom.updval[id1;{x*y};3];
.t.ok["updval with any function"; 21f=.prom.getv[id1;::]];
.prom.newmetric[`size_updates;`summary;();"size of updates"];
ids:.prom.addmetric[`size_updates;();0.25 0.5 0.75;`float$()];
.prom.updval[ids;,;10 15 20f];
.t.ok["updval , observes a list"; 45f=.prom.getv[ids;::]];
.t.ok["addmetric's quantiles are the series' (#19)"; 0.25 0.5 0.75~key(first exec val from .prom.metrics[] where metric=`size_updates)`quantiles];
.t.ok["type conflict"; "prom: metric exists with another type"~.t.err[.prom.newmetric;(`number_tables;`counter;`region;"x")]];

/ modern API
.prom.create`name`type`help`labels!(`req_total;`counter;"Requests.";`handler`code);
.prom.inc[`req_total;`pg`200];
.prom.incr[`req_total;`code`handler!("200";"pg");2];
.t.ok["dict and positional labels hit one series"; 3f=.prom.getv[`req_total;`pg`200]];
.t.ok["counters refuse decrease"; "prom: counter cannot decrease"~.t.err[.prom.dec;(`req_total;`pg`200)]];
.t.ok["negative increment"; "prom: counter increment must be >= 0"~.t.err[.prom.incr;(`req_total;`pg`200;-1)]];
.t.ok["null value"; "prom: value is null"~.t.err[.prom.incr;(`req_total;`pg`200;0N)]];
.t.ok["label count"; "prom: label count mismatch"~.t.err[.prom.inc;(`req_total;`pg)]];
.t.ok["unknown metric"; "prom: unknown metric"~.t.err[.prom.inc;(`nope;`a)]];
.t.ok["wrong value type"; "prom: value must be a number (short, int, long, real or float)"~.t.err[.prom.incr;(`req_total;`pg`200;`x)]];
.t.ok["errors change nothing"; 3f=.prom.getv[`req_total;`pg`200]];
.prom.create`name`type`buckets!(`lat_seconds;`histogram;0.1 1 10f);
.prom.obs[`lat_seconds;();0.05 0.5 5 50f];
m:select from .prom.metrics[] where metric=`lat_seconds;
.t.ok["histogram in metrics[]"; 1 2 3 4~value (first m`val)`buckets];
.t.ok["serve has the bucket line"; 0<count ss[.prom.serve[];"lat_seconds_bucket{le=\"+Inf\"} 4"]];
.t.ok["openmetrics ends with # EOF"; "# EOF\n"~-6#.prom.serve`openmetrics];
.t.ok["metricMeta lists families"; all `number_tables`size_updates`req_total`lat_seconds in exec metric from .prom.metricMeta[]];
.prom.del[`req_total;`pg`200];
.t.ok["del removes a series"; "prom: unknown series"~.t.err[.prom.getv;(`req_total;`pg`200)]];
.prom.del[`req_total;::];
.t.ok["del removes a metric"; not `req_total in exec metric from .prom.metricMeta[]];
/ native histograms and exemplars (#15)
.prom.create`name`type`help`nativeSchema!(`nat_seconds;`histogram;"Native.";3);
.prom.obs[`nat_seconds;();0.001 0.5 300f];
.t.ok["native histogram: text has +Inf only"; 0<count ss[.prom.serve[];"nat_seconds_bucket{le=\"+Inf\"} 3"]];
.t.ok["native key out of range"; "prom: native histogram needs nativeSchema -4 to 8 or nativeFactor > 1, nativeZeroThreshold >= 0, nativeMaxBuckets 1 to 32768, nativeMinReset >= 0"~.t.err[.prom.create;enlist`name`type`nativeSchema!(`bad_seconds;`histogram;9)]];
.t.ok["native keys for histograms only"; "prom: params not valid for this metric type"~.t.err[.prom.create;enlist`name`type`nativeFactor!(`bad_total;`counter;1.1)]];
.prom.obsEx[`nat_seconds;();0.25;enlist[`trace_id]!enlist"abc"];
.t.ok["obsEx observes"; 300.751=.prom.getv[`nat_seconds;()]];
.t.ok["exemplar in openmetrics"; 0<count ss[.prom.serve`openmetrics;"# {trace_id=\"abc\"} 0.25"]];
.t.ok["no exemplar in text"; 0=count ss[.prom.serve[];"trace_id"]];
.t.ok["serve`protobuf gives bytes"; 4h=type .prom.serve`protobuf];
.t.ok["unknown format"; "prom: format must be `text, `openmetrics or `protobuf"~.t.err[.prom.serve;enlist`xml]];
.prom.create`name`type`help!(`ex_total;`counter;"With exemplars.");
.prom.incEx[`ex_total;();2;`user`fn!`alice`getTrades];
.t.ok["incEx increments"; 2f=.prom.getv[`ex_total;()]];
.t.ok["exemplar too long"; "prom: exemplar labels exceed 128 characters"~.t.err[.prom.incEx;(`ex_total;();1;enlist[`a]!enlist 130#"x")]];
.t.ok["exemplar not a dictionary"; "prom: exemplar must be a non-empty dictionary of distinct label names to strings"~.t.err[.prom.incEx;(`ex_total;();1;"abc")]];
.t.ok["incEx on a histogram"; "prom: operation not supported by this metric type"~.t.err[.prom.incEx;(`nat_seconds;();1;enlist[`a]!enlist"x")]];
.t.ok["exemplar errors change nothing"; 2f=.prom.getv[`ex_total;()]];
/ peach: updates from secondary threads are exact. Without secondaries peach is each
/ (docs/ref/peach.md) and this would prove nothing: run.sh starts q with -s 2.
.t.ok["secondary threads for peach"; 1<system"s"];
.prom.create`name`type!(`par_total;`counter);
{.prom.incr[`par_total;();1]} peach til 10000;
.t.ok["peach updates are exact"; 10000f=.prom.getv[`par_total;()]];
-1 "tests/q/test_api.q: ",string[.t.n]," passed, 0 failed";
exit 0
