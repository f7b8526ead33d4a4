/ .z.pw: left alone while undefined; once defined, wrapped, each answer counted by user and
/ result, and restored by stop. One boolean per line; exits 1 on the first failure.
\l prom.q
.t.n:0;
.t.ok:{[name;b] .t.n+:1; if[not b~1b; -2 "FAIL ",name; exit 1]}
.prom.init[];
.t.ok["an undefined .z.pw is left alone"; not .prom.i.defined`.z.pw];
.prom.stop[];
.z.pw:{[u;p]$[p~"boom";'"boom";p~"pw"]};
orig:.z.pw;
.prom.init[];
.t.ok["a defined .z.pw is wrapped"; not orig~.z.pw];
.t.ok["accepted passes through"; 1b~.z.pw[`alice;"pw"]];
.t.ok["refused passes through"; 0b~.z.pw[`alice;"bad"]];
.t.ok["an error is re-signalled"; "boom"~@[.z.pw[`alice];"boom";{x}]];
.t.ok["accepted counted"; 1f=.prom.getv[`kdb_logins_total;`alice`accepted]];
.t.ok["refused and failed answers counted as refused"; 2f=.prom.getv[`kdb_logins_total;`alice`refused]];
.prom.stop[];
.t.ok["stop restores .z.pw"; orig~.z.pw];
-1 "tests/q/test_pw.q: ",string[.t.n]," passed, 0 failed";
exit 0
