/ KX's examples/kdb_user_example.q (1.0.1; "Example: resource utilization" in KX's
/ docs/examples.md, the example invocations that KX's event-handlers.md points to),
/ unchanged, against KX's exporter.q 1.0.1 on prom.q. The example is a client: it opens
/ port 8080 (hard-coded) and, from a 1-second timer, sends sync, async, HTTP and failing
/ requests chosen by the second of the minute. So KX's exporter runs as a child q on 8080
/ (target/kx, prepared by tests/q/kx_fetch.sh: needs port 8080 free), this process loads
/ the example verbatim and runs its timer function once a second for 62 seconds (every
/ second of a minute, so every kind of request), then asks the exporter for its metrics.
/ The loop stands in for the example's \t 1000: the runner's stdin is at EOF, so q would
/ exit at the end of this script before any timer fired.
.t.n:0;
.t.h:0Ni;
.t.fail:{[msg] -2 "FAIL ",msg; -2 @[{read0 hsym`$x};.t.log;{enlist"(no exporter log)"}]; @[.t.h;"exit 0";{}]; exit 1}
.t.ok:{[name;b] .t.n+:1; if[not b~1b; .t.fail name]}
.t.has:{[text;s]0<count text ss s};
.t.p:"/"vs string .z.f;
.t.root:$[3<.t.np:count .t.p;"/"sv -3_.t.p;3=.t.np;".";2=.t.np;"..";"../.."];
.t.kx:.t.root,"/target/kx";
.t.log:.t.kx,"/exporter.log";
if[any()~/:key each hsym`$.t.kx,/:("/exporter.q";"/kdb_user_example.q";"/extract.q"); .t.fail .t.kx," incomplete: run tests/q/kx_fetch.sh"];
if[not null @[hopen;(`::8080;500);{0Ni}]; .t.fail"port 8080 is in use (the example's port)"];

/ the exporter: q exporter.q -p 8080 in target/kx, stdin held open (q exits at its EOF)
system"(cd ",.t.kx," && sleep 180 | q exporter.q -p 8080) >",.t.log," 2>&1 </dev/null &";
.t.wait:{[n] h:@[hopen;(`::8080;1000);{0Ni}]; $[not null h;h;n=0;0Ni;[system"sleep 0.2";.t.wait n-1]]};
.t.h:.t.wait 50;
if[null .t.h; .t.fail"KX's exporter did not open port 8080 within 10 s"];
.t.ok["KX's exporter initialised on prom.q"; not -11h=.t.h"type @[get;`.z.pg;{[e]`undefined}]"];

/ the example, verbatim (it changes to \d .prom for its own globals, as in KX's repository)
.t.cwd:first system"pwd";
system"cd ",.t.kx;
@[system;"l kdb_user_example.q";{.t.fail"loading KX's kdb_user_example.q: ",x}];
system"cd ",.t.cwd;
system"t 0";
.t.errs:();
.t.tick:{[i] @[.z.ts;.z.p;{.t.errs,:enlist x}]; system"sleep 1"};
.t.tick each til 62;
.t.ok["the example's only failures are its deliberate 1+`a"; all .t.errs~\:"type"];

/ what the exporter recorded: KX's families, moved by KX's hooks through qprom
/ sync messages the exporter evaluates with value: (lambda;arg), or a global's name
.t.v:{[id] .t.h({.prom.getv[x;::]};id)};
.t.id:{[v] .t.h v};
.t.count:{[m] .t.h({(first exec val from .prom.metrics[] where metric=x)`count};m)};
.t.ok["sync requests counted"; 1<=.t.v .t.id`qry_sync];
.t.ok["async requests counted"; 1<=.t.v .t.id`qry_async];
.t.ok["HTTP GET requests counted"; 1<=.t.v .t.id`qry_http];
.t.ok["the deliberate errors counted"; 1<=sum .t.v each .t.id each`err_sync`err_async];
.t.ok["durations observed"; all 1<=.t.count each`kdb_sync_histogram_seconds`kdb_http_get_histogram_seconds];
.t.ok["no hook failed"; 0=.t.h"count select from .prom.metrics[] where metric=`qprom_hook_errors_total"];
.t.r:.Q.hg"http://127.0.0.1:8080/metrics";
.t.ok["KX's families served at /metrics"; all .t.has[.t.r]each("# TYPE kdb_info gauge";"# TYPE kdb_sync_total counter";"# TYPE kdb_sync_summary_seconds summary";"kdb_sync_histogram_seconds_bucket{le=\"0.25\"}")];
@[.t.h;"exit 0";{}];
-1 "tests/q/test_kx_user_example.q: ",string[.t.n]," passed, 0 failed";
exit 0
