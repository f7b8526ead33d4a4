/ q-level tests of handler wrapping: one boolean per line; exits 1 on the first failure.
/ Run with: q tests/q/test_handlers.q -q  (from q/, see tests/q/run.sh)
\l prom.q
.t.n:0;
.t.ok:{[name;b] .t.n+:1; if[not b~1b; -2 "FAIL ",name; exit 1]}
.t.err:{[f;x] @[{x y;`noerr}[f];x;{x}]}

/ originals: .z.pg defined, .z.ps undefined
.z.pg:{[x] $[x~"boom";'"boom";x~"big";til 3;value x]};
@[system;"x .z.ps";::];
orig:.z.pg;
.t.log:();
.prom.before_pg:{[msg] .t.log,:`before; .z.p};
.prom.after_pg:{[tmp;msg;res] .t.log,:`after;};
.prom.error_pg:{[tmp;msg;err] .t.log,:`error; .t.lasterr:err;};
.prom.init[];
wrapped:.z.pg;
.t.ok["init wraps .z.pg"; not orig~.z.pg];
.t.ok["result passes through"; (til 3)~.z.pg "big"];
.t.ok["before then after"; `before`after~-2#.t.log];
.t.ok["error passes through unchanged"; "boom"~.t.err[.z.pg;"boom"]];
.t.ok["before then error"; `before`error~-2#.t.log];
.t.ok["error hook sees the error"; "boom"~.t.lasterr];
.prom.init[];
.t.ok["init is idempotent"; wrapped~.z.pg];
.prom.after_pg:{[tmp;msg;res] '"hook failed"};
.t.ok["a failing hook never breaks the request"; 42~.z.pg "42"];
.t.ok["hook failures are counted"; 1f=.prom.getv[`qprom_hook_errors_total;`after_pg]];
.t.ok["default metrics exist"; all`kdb_requests_total`kdb_request_duration_seconds`kdb_info in exec metric from .prom.metricMeta[]];
.prom.after_pg:{[tmp;msg;res] .prom.i.request[`pg;tmp;0b];};
before:.prom.getv[`kdb_requests_total;`sync];
.z.pg "1+1";
.t.ok["default metrics move"; (before+1)=.prom.getv[`kdb_requests_total;`sync]];
r:.z.ph ("metrics";()!());
.t.ok[".z.ph answers the metrics path"; r like "HTTP/1.1 200 OK*"];
.t.ok[".z.ph metrics with a query string"; (.z.ph ("metrics?x=1";()!())) like "HTTP/1.1 200 OK*"];
.prom.stop[];
.t.ok["stop restores .z.pg"; orig~.z.pg];
.t.ok["stop expunges what was undefined"; ".z.ps"~@[get;`.z.ps;{x}]];
.t.ok["no root-namespace leftovers from prom.q"; not any (key `.) like "prom*"];
-1 "tests/q/test_handlers.q: ",string[.t.n]," passed, 0 failed";
exit 0
