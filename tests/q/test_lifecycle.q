/ .prom.init and .prom.stop on a fresh q (nothing but q.k's .z.ph defined): one boolean
/ per line; exits 1 on the first failure. Run by tests/q/run.sh (from q/, -s 2).
\l prom.q
.t.n:0;
.t.ok:{[name;b] .t.n+:1; if[not b~1b; -2 "FAIL ",name; exit 1]}
.t.err:{[f;x] @[{x y;`noerr}[f];x;{x}]}
/ every handler's value, or the error text get gives for an undefined one
.t.snap:{@[get;;::]each .prom.i.zs}
/ wo wc: undefined again, or q's default's equivalent where \x does not take (prom.q)
.t.k:(til 8),10 11             / all but wo wc (.prom.i.zs order)
.t.back:{[s](s .t.k)~(.t.snap[]).t.k}
.t.wowc:{all{(not .prom.i.defined x)|{[x]}~get x}each`.z.wo`.z.wc}
s0:.t.snap[];

.t.ok["fresh q: pg ps ts po pc undefined"; not any .prom.i.defined each`.z.pg`.z.ps`.z.ts`.z.po`.z.pc];
.t.ok[".z.ph defined by q.k"; .prom.i.defined`.z.ph];
.t.ok["init[] on a fresh q returns (::)"; (::)~.prom.init[]];
.t.ok["pg ps ph po pc wo wc exit wrapped"; all .prom.i.defined each`.z.pg`.z.ps`.z.ph`.z.po`.z.pc`.z.wo`.z.wc`.z.exit];
.t.ok["pp ws ts left undefined"; not any .prom.i.defined each`.z.pp`.z.ws`.z.ts];
.t.ok["wrapped .z.pg evaluates as q's default (value)"; 3~.z.pg"1+2"];
.t.ok["wrapped .z.ps too"; 3~.z.ps"1+2"];
.t.ok["one sync request counted"; 1f=.prom.getv[`kdb_requests_total;`sync]];
.t.ok["errors re-signalled"; "type"~.t.err[.z.pg;"1+`a"]];
.t.ok["one sync error counted"; 1f=.prom.getv[`kdb_request_errors_total;`sync]];
w:.z.pg;
.t.ok["a second init returns the same"; (::)~.prom.init[]];
.t.ok["a second init does not wrap again"; w~.z.pg];
.prom.stop[];
.t.ok["stop restores every handler"; .t.back s0];
.t.ok["stop: wo wc back to q's behaviour"; .t.wowc[]];
.t.ok["stop expunges .z.pg"; not .prom.i.defined`.z.pg];
.prom.stop[];
.t.ok["a second stop does nothing"; .t.back s0];

/ init/stop cycles
.prom.init[];.prom.stop[];.prom.init[];.prom.stop[];
.t.ok["init/stop cycles leave q as it was"; .t.back s0];
.prom.init[];
.t.ok["init after cycles wraps again"; .prom.i.defined`.z.pg];
.prom.stop[];

/ refused configurations change nothing
.t.ok["non-dictionary"; "prom: configuration must be a dictionary"~.t.err[.prom.init;42]];
.t.ok["duplicate handlers"; "prom: handlers must be distinct symbols among pg ps ph pp ws ts po pc wo wc pw"~.t.err[.prom.init;enlist[`handlers]!enlist`pg`pg]];
.t.ok["unknown handler"; "prom: handlers must be distinct symbols among pg ps ph pp ws ts po pc wo wc pw"~.t.err[.prom.init;enlist[`handlers]!enlist`pg`xx]];
.t.ok["unknown key"; "prom: unknown configuration key"~.t.err[.prom.init;enlist[`nope]!enlist 1]];
.t.ok["refusals left nothing wrapped"; .t.back s0];
.t.ok["handlers pg ps only"; (::)~.prom.init enlist[`handlers]!enlist`pg`ps];
.t.ok["only pg ps (and exit) wrapped"; (not .prom.i.defined`.z.po)&all .prom.i.defined each`.z.pg`.z.ps`.z.exit];
.prom.stop[];

/ a failing listener leaves nothing behind: q's own port taken, then asked for
system"p 0W";
qp:system"p";
.t.ok["port in use"; "prom: port in use"~.t.err[.prom.init;`port`bind!(qp;"0.0.0.0")]];
.t.ok["after a failed start nothing is wrapped"; .t.back s0];
system"p 0";
/ a failing file_sd (after the listener started) stops the listener again
.t.ok["file_sd into a missing directory"; "prom: directory does not exist"~.t.err[.prom.init;`port`bind`fileSd!(0;"127.0.0.1";"/nonexistent/qprom")]];
.t.ok["after a failed file_sd nothing is wrapped"; .t.back s0];
p:.prom.init`port`bind!(0;"127.0.0.1");
.t.ok["then init works and returns the port"; (-7h=type p)&p>0];
.prom.stop[];

/ path and bind as symbols (a dictionary whose values are all symbols)
.t.ok["symbol path and bind, q's port"; (::)~.prom.init`path`bind!`$("/m";"127.0.0.1")];
.t.ok["the path is served by .z.ph"; (.z.ph("m";()!()))like"HTTP/1.1 200*"];
.prom.stop[];
p:.prom.init`port`bind`path!(0;`127.0.0.1;`m);
.t.ok["symbol path with a port"; p>0];
.prom.stop[];
.t.ok["all restored at the end"; .t.back s0];
-1 "tests/q/test_lifecycle.q: ",string[.t.n]," passed, 0 failed";
exit 0
