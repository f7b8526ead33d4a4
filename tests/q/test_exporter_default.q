/ exporter.q with its usual options starts the listener and wraps the handlers.
/ args: -prom.port 0 -prom.bind 127.0.0.1
\l exporter.q
.t.n:0;
.t.ok:{[name;b] .t.n+:1; if[not b~1b; -2 "FAIL ",name; exit 1]}
.t.ok["exporter.q wrapped .z.pg"; .prom.i.defined`.z.pg];
.t.ok["default metrics registered"; all`kdb_info`kdb_requests_total in exec metric from .prom.metricMeta[]];
.t.ok["scrapes answered on q's side too"; (.z.ph("metrics";()!()))like"HTTP/1.1 200*"];
.prom.stop[];
.t.ok["stopped"; not .prom.i.defined`.z.pg];
-1 "tests/q/test_exporter_default.q: ",string[.t.n]," passed, 0 failed";
exit 0
